"""The weak tier's call of an ``auto`` group's cascade that was escalated: paid for, though not given.

A cascade (llmswitch.router.auto) asks the weak tier first; when its answer fails a check the strong
tier answers. The weak call was made and billed: it is recorded once, as a spend record of its own
beside the request's — request id ``<request id>~c1``, the weak deployment, its usage as the provider
reported it (or the prompt estimated, when it did not), status 200 — and its cost is settled against
the request's budgets with the request's own.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec

from llmswitch import ir
from llmswitch.server.estimates import estimate_prompt_tokens
from llmswitch.server.pricing import cost_of_usage, deployment_of
from llmswitch.server.spend_records import spend_record
from llmswitch.spend.framing import encode_line
from llmswitch.store.records import CallType

if TYPE_CHECKING:
    from llmswitch.server.http import Request

log = logging.getLogger("llmswitch.accounting")


def journal_weak_call(
    journal: Any, request: Request, route: Any, req: Any, started: float, stream: bool, call_type: CallType
) -> tuple[float, int, list[bytes]]:
    """Journal the escalated cascade's weak call, if ``route`` says there was one: its cost and tokens,
    for the request's settlement, and the line still to commit."""
    decision = getattr(route, "auto", None)
    weak = getattr(decision, "weak_call", None)
    if weak is None:
        return 0.0, 0, []
    weak_route, usage = weak
    estimated = usage is None
    try:
        if usage is None:
            usage = ir.Usage(input_tokens=estimate_prompt_tokens(req) if type(req) is ir.Request else 0)
        served = deployment_of(weak_route)
        cost = cost_of_usage(served.price, usage) if served.price is not None else None
        base = spend_record(request, 200, weak_route, usage, cost, None, stream, started, estimated, call_type)
        rec = msgspec.structs.replace(base, request_id=f"{base.request_id}~c1")
        line = encode_line(rec)
    except Exception as exc:
        log.error("could not record the cascade's weak call of %s: %s", request.state.get("spend_id"), exc)
        return 0.0, 0, []
    pending: list[bytes] = []
    if journal is not None and not journal.append_nowait(line):
        pending.append(line)
    return cost or 0.0, usage.total_tokens, pending
