"""A request's spend record as its journal line, built on the request path without the full check.

:func:`spend_line` writes the line straight from values it checks are plainly of their types (the key's
once per key record, in its :class:`~llmswitch.server.key_plans.KeyPlan`); anything else returns ``None``
for :func:`~llmswitch.spend.framing.encode_line` to judge, loudly.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.server.key_plans import OPTIONAL_STR, KeyPlan
from llmswitch.server.pricing import Deployment
from llmswitch.server.spend_records import NO_METADATA, metadata_of
from llmswitch.spend.framing import SpendLine, encode_spend_line
from llmswitch.store.records import CallType

if TYPE_CHECKING:
    from llmswitch.server.http import Request

_MAX_COUNT = 2**63 - 1


def spend_line(
    request: Request,
    principal: Any,
    plan: KeyPlan | None,
    status: int,
    served: Deployment | None,
    usage: ir.Usage | None,
    cost: float | None,
    error: BaseException | None,
    stream: bool,
    started: float,
    estimated: bool,
    call_type: CallType,
    saved: float | None = None,
) -> bytes | None:
    """The request's journal line, built straight from its values; ``None`` when one of them is not
    plainly of its type (values from outside: the upstream's usage, an exception's status, request
    state), for :func:`encode_line` to judge. Values of the key (``plan``, None for the master key) and
    the deployment are checked once."""
    state = request.state
    key_hash = getattr(principal, "key_hash", None) or None
    if plan is not None:
        who = plan.spend_fields
        if who is None:
            return None
        key_alias, user_id, team_id = who
        tags = plan.tags
    else:
        key_alias = user_id = team_id = tags = None
    if served is not None:
        if not served.plain:
            return None
        deployment_id, provider, model = served.id, served.provider, served.model
    else:
        deployment_id = provider = model = None
    if usage is not None:
        counts = (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
        )
        for n in counts:
            if type(n) is not int or not 0 <= n <= _MAX_COUNT:
                return None
    else:
        counts = (0, 0, 0, 0, 0)
    model_group = state.get("model")
    ttft_ms = state.get("ttft_ms")
    rid = state.get("request_id")
    guardrails = state.get("guardrails")
    spend_id = state["spend_id"]
    if (
        (model_group is not None and (type(model_group) is not str or "\x00" in model_group))  # see spend_record
        or (rid is not None and type(rid) is not str)
        or (cost is not None and (type(cost) is not float or cost - cost != 0.0))  # NaN or infinite
        or (saved is not None and (type(saved) is not float or saved - saved != 0.0))
        or (ttft_ms is not None and type(ttft_ms) is not float)
        or type(status) is not int
        or not 0 <= status <= 999
        or type(stream) is not bool
        or type(spend_id) is not str
        or not spend_id
        or type(key_hash) not in OPTIONAL_STR
    ):
        return None
    # positional, in SpendRecord's field order (SpendLine is checked against it at import)
    return encode_spend_line(
        SpendLine(
            spend_id,
            datetime.now(UTC),
            key_hash,
            key_alias,
            user_id,
            team_id,
            model_group,
            deployment_id,
            provider,
            model,
            *counts,
            cost,
            round((time.perf_counter() - started) * 1_000_000) / 1000,  # ms to the µs, as round(x, 3)
            ttft_ms,
            status,
            None if error is None else type(error).__name__,
            state.get("cache_hit") is True,
            stream,
            metadata_of(tags, rid, spend_id, guardrails)
            if tags or guardrails or (rid is not None and rid != spend_id)
            else NO_METADATA,
            call_type,
            estimated,
            saved,
        )
    )
