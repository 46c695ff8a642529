"""Attempts that timed out after they were sent: the provider may have read the prompt (and billed it)
though no answer came back, and a retry or a fallback then answered, or the request failed.

Each such attempt is recorded once, as a spend record of its own beside the request's: request id
``<request id>~t<attempt number>``, the deployment that was called, status 408, the prompt's tokens
estimated as a reservation counts them (no output: none was delivered), ``estimated`` true. Its cost is
settled against the request's budgets with the request's own.

The router tells :func:`note_timeout` (its ``on_timeout`` hook) in the request's task; the request is
found through a context variable that :meth:`~llmswitch.server.accounting.Accounting.admit` sets, so an
answered request with no timed-out attempt costs nothing here.
"""

from __future__ import annotations

import contextvars
import logging
from typing import TYPE_CHECKING, Any

import msgspec

from llmswitch import ir
from llmswitch.router.outcomes import Route
from llmswitch.server.estimates import estimate_embedding_tokens, estimate_prompt_tokens
from llmswitch.server.pricing import cost_of_usage, deployment_of
from llmswitch.server.spend_records import spend_record
from llmswitch.spend.framing import encode_line
from llmswitch.store.records import CallType, SpendRecord

if TYPE_CHECKING:
    from llmswitch.router.attempts import Attempt
    from llmswitch.server.http import Request

log = logging.getLogger("llmswitch.accounting")

#: the request being admitted and routed in this task, with its IR (for the prompt's estimate)
current: contextvars.ContextVar[tuple[Request, Any] | None] = contextvars.ContextVar("llmswitch_request", default=None)


def note_timeout(router: Any) -> Any:
    """The ``on_timeout`` hook for ``router``: keeps each timed-out attempt on its request's state."""

    def hook(attempt: Attempt) -> None:
        here = current.get()
        if here is None:  # not a gateway request (a health check, the SDK in the same process)
            return
        request, req = here
        target = next((t for t in router.deployments(attempt.group) if t.id == attempt.deployment), None)
        if target is None:
            return
        lost = request.state.get("lost_attempts")
        if lost is None:
            lost = request.state["lost_attempts"] = []
        # as the router names what served (a Route), so the record reads as an answered one's
        lost.append((attempt, Route(target, attempt.group, attempt.number, attempt.group), _prompt_tokens(req)))

    return hook


def lost_records(request: Request, started: float, stream: bool, call_type: CallType) -> list[SpendRecord]:
    """The records of the request's timed-out attempts (each once: they are taken off its state)."""
    lost = request.state.pop("lost_attempts", None)
    if not lost:
        return []
    base = spend_record(request, 408, None, None, None, None, stream, started, True, call_type)
    out = []
    for attempt, route, tokens in lost:
        served = deployment_of(route)
        usage = ir.Usage(input_tokens=tokens, output_tokens=0)
        cost = cost_of_usage(served.price, usage) if served.price is not None else None
        out.append(
            msgspec.structs.replace(
                base,
                request_id=f"{base.request_id}~t{attempt.number}",
                deployment_id=served.id,
                provider=served.provider,
                model=served.model,
                input_tokens=tokens,
                cost=cost,
                latency_ms=round(attempt.elapsed * 1000, 3),
                ttft_ms=None,
                error_class=attempt.error or "APITimeoutError",
            )
        )
    return out


def journal_lost(
    journal: Any, request: Request, started: float, stream: bool, call_type: CallType
) -> tuple[float, int, list[bytes]]:
    """Journal the request's timed-out attempts: their cost and tokens, for the request's settlement, and
    the lines still to commit (``journal`` could not take them at once)."""
    cost, tokens, pending = 0.0, 0, list[bytes]()
    try:
        records = lost_records(request, started, stream, call_type)
    except Exception as exc:
        log.error("could not price the timed-out attempts of %s: %s", request.state.get("spend_id"), exc)
        return cost, tokens, pending
    for rec in records:
        cost += rec.cost or 0.0
        tokens += rec.input_tokens
        if journal is None:
            continue
        try:
            line = encode_line(rec)
            if not journal.append_nowait(line):
                pending.append(line)
        except Exception as exc:
            log.error("could not journal spend record %s: %s", rec.request_id, exc)
    return cost, tokens, pending


def _prompt_tokens(req: Any) -> int:
    if type(req) is ir.EmbeddingRequest:
        return estimate_embedding_tokens(req)
    if type(req) is ir.Request:
        return estimate_prompt_tokens(req)
    return 0
