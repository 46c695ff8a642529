"""The spend record of one request, as the gateway journals it: who asked, what answered, what it used
and cost, and the metadata LiteLLM's spend logs show (the client's own request id, the key's tags)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.errors import APIError
from llmswitch.store.records import CallType, SpendRecord

if TYPE_CHECKING:
    from llmswitch.server.http import Request

NO_METADATA: dict[str, Any] = {}


def spend_record(
    request: Request,
    status: int,
    route: Any,
    usage: ir.Usage | None,
    cost: float | None,
    error: BaseException | None,
    stream: bool,
    started: float,
    estimated: bool = False,
    call_type: CallType = "chat",
    cache_saved_cost: float | None = None,
) -> SpendRecord:
    """The request's record for :func:`encode_line`, which checks every value."""
    principal = request.state.get("principal")
    rec = getattr(principal, "record", None)
    u = usage or ir.Usage()
    metadata = record_metadata(
        rec, request.state.get("request_id"), request.state["spend_id"], request.state.get("guardrails")
    )
    if (auto := getattr(route, "auto", None)) is not None:  # an auto group's decision (llmswitch.router.auto)
        metadata = {**metadata, "route": auto.log()}
    model_group = request.state.get("model")
    if type(model_group) is str and "\x00" in model_group:
        # the one text taken from the request's body (headers cannot hold a NUL): PostgreSQL refuses a NUL
        # in a binary COPY, and a batch holding one takes the slower INSERT (PostgresStore.insert_spend_logs)
        model_group = model_group.replace("\x00", "\ufffd")
    return SpendRecord(
        request_id=request.state["spend_id"],
        key_hash=getattr(principal, "key_hash", None) or None,
        key_alias=getattr(rec, "key_alias", None),
        user_id=getattr(rec, "user_id", None),
        team_id=getattr(rec, "team_id", None),
        model_group=model_group,
        deployment_id=getattr(route, "id", None),
        provider=str(getattr(route, "provider", "")) or None,
        model=getattr(route, "model", None),
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        reasoning_tokens=u.reasoning_tokens,
        cost=cost,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        ttft_ms=request.state.get("ttft_ms"),
        status=status,
        error_class=type(error).__name__ if error is not None else None,
        cache_hit=request.state.get("cache_hit") is True,
        cache_saved_cost=cache_saved_cost,
        stream=stream,
        metadata=metadata,
        call_type=call_type,
        estimated=estimated,
    )


def failure_status(exc: BaseException, disconnected: bool) -> int:
    """The status a failed request's record carries: the one its client was answered with (an upstream that
    could not be reached or timed out is a 502, as the error encoders answer it), 499 for a client gone."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status:
        return status
    if disconnected:
        return 499
    return 502 if isinstance(exc, APIError) else 500


def record_metadata(rec: Any, rid: Any, spend_id: str, guardrails: Any = None) -> dict[str, Any]:
    return metadata_of(getattr(rec, "tags", None), rid, spend_id, guardrails)


def metadata_of(tags: Any, rid: Any, spend_id: str, guardrails: Any = None) -> dict[str, Any]:
    # the client's own request id when it differs from ours, the key's tags (LiteLLM's request_tags), and
    # the guardrails' decisions (names, actions and kinds found with counts: never a value)
    if not tags and (rid is None or rid == spend_id) and not guardrails:
        return NO_METADATA
    out: dict[str, Any] = {}
    if rid is not None and rid != spend_id:
        out["client_request_id"] = rid
    if tags:
        out["tags"] = tags
    if guardrails:
        out["guardrails"] = guardrails
    return out
