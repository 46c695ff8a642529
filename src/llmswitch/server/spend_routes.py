"""Reading spend back: LiteLLM's ``GET /spend/logs`` and daily totals by key, user, team or model.

Both need the master key, or a team admin's key, which reads its own team's spend only (team_scope.py). Amounts are exact to ``amounts.COST_PLACES`` decimal places (see amounts.py);
the daily totals are summed exactly by the store, so they equal the sum of the logs' rounded costs. Records reach the store from the journal within a fraction of a second
(the shipper's batch interval), so a request's record is readable shortly after its answer.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from llmswitch.dialects._json import dumps, invalid
from llmswitch.server import http
from llmswitch.server.admin import _store_required
from llmswitch.server.amounts import render_cost
from llmswitch.server.team_scope import admin_scope

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway

_HASH = re.compile(r"[0-9a-f]{64}")


def _when(value: str | None, field: str, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` (a whole UTC day; an end date includes its day) or an ISO-8601 time."""
    if not value:
        return None
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            t = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return t + timedelta(days=1) if end else t
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid(field, f"{value!r} is not a date (YYYY-MM-DD) or an ISO-8601 time") from exc
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _log_out(r: Any) -> dict[str, Any]:
    return {
        "request_id": r.request_id,
        "api_key": r.key_hash,
        "key_alias": r.key_alias,
        "user": r.user_id,
        "team_id": r.team_id,
        "model_group": r.model_group,
        "model": r.model,
        "model_id": r.deployment_id,
        "custom_llm_provider": r.provider,
        "spend": render_cost(r.cost or 0.0),
        "cost_known": r.cost is not None,
        "prompt_tokens": r.input_tokens,
        "completion_tokens": r.output_tokens,
        "total_tokens": r.input_tokens + r.output_tokens,
        "cache_read_input_tokens": r.cache_read_tokens,
        "cache_creation_input_tokens": r.cache_write_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "startTime": r.time.isoformat(),
        "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms,
        "status": r.status,
        "error_class": r.error_class,
        "cache_hit": r.cache_hit,
        "cache_saved_cost": r.cache_saved_cost,
        "stream": r.stream,
        # LiteLLM's names for the two kinds of call
        "call_type": "aembedding" if r.call_type == "embeddings" else "acompletion",
        "estimated": r.estimated,
        "request_tags": r.metadata.get("tags", []),
        "guardrails": r.metadata.get("guardrails", []),
        # an auto group's decision (llmswitch.router.auto): tier, score, threshold, reason; else null
        "route": r.metadata.get("route"),
    }


def _max_age(text: str | None) -> float:
    if not text:
        return 0.0
    if not (text.isascii() and text.isdigit() and int(text) <= 3600):
        raise invalid("max_age", "must be a number of seconds from 0 to 3600")
    return float(text)


def _status(text: str | None) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) == 3):
        raise invalid("status", "must be an HTTP status code, e.g. 429")
    return int(text)


async def spend_logs(gw: Gateway, request: http.Request, send: http.Send) -> None:
    from llmswitch.store import hash_key

    scope = admin_scope(gw, request)
    store = _store_required(gw)
    q = request.query
    key = q.get("api_key") or None
    key_hash = key if key is None or _HASH.fullmatch(key) else hash_key(key)
    try:
        limit = min(max(int(q.get("limit", "100")), 1), 10_000)
        offset = max(int(q.get("offset", "0")), 0)
    except ValueError as exc:
        raise invalid("limit", "limit and offset must be integers") from exc
    rows = await store.list_spend_logs(
        key_hash=key_hash,
        user_id=q.get("user_id") or None,
        team_id=scope.team_filter(q.get("team_id") or None),
        start=_when(q.get("start_date"), "start_date"),
        end=_when(q.get("end_date"), "end_date", end=True),
        limit=limit,
        offset=offset,
        request_id=q.get("request_id") or None,
        model_group=q.get("model") or None,
        status=_status(q.get("status")),
    )
    await http.send_bytes(send, 200, dumps([_log_out(r) for r in rows]))


async def spend_daily(gw: Gateway, request: http.Request, send: http.Send) -> None:
    scope = admin_scope(gw, request)
    store = _store_required(gw)
    q = request.query
    team_id = scope.team_filter(q.get("team_id") or None)
    group_by = q.get("group_by", "key")
    if group_by not in ("key", "user", "team", "model"):
        raise invalid("group_by", "must be one of key, user, team, model")
    start, end = _when(q.get("start_date"), "start_date"), _when(q.get("end_date"), "end_date", end=True)
    max_age = _max_age(q.get("max_age"))

    async def fetch(start: datetime | None, end: datetime | None) -> list[Any]:
        return list(await store.daily_spend(group_by, start=start, end=end, team_id=team_id))

    if max_age:  # the days already over may come from a recent copy (spend_day_cache.py)
        rows = await gw.spend_days.daily((group_by, team_id), start, end, max_age, fetch)
    else:
        rows = await fetch(start, end)
    out = [
        {
            "day": r.day.isoformat(),
            group_by: r.group,
            "requests": r.requests,
            "prompt_tokens": r.input_tokens,
            "completion_tokens": r.output_tokens,
            "spend": render_cost(r.cost),
            "cache_hits": r.cache_hits,
            "cache_saved_cost": render_cost(r.cache_saved_cost),
        }
        for r in rows
    ]
    await http.send_bytes(send, 200, dumps({"group_by": group_by, "days": out}))


ROUTES: dict[tuple[str, str], http.Handler] = {
    ("GET", "/spend/logs"): spend_logs,
    ("GET", "/spend/daily"): spend_daily,
}
