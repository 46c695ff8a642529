"""LiteLLM's key-management API, unchanged: ``/key/generate``, ``/key/info``, ``/key/update``,
``/key/delete``, ``/key/list``.

Admin routes need the master key, or a team admin's key for its own team's keys (see team_scope.py);
``/key/info`` also answers a virtual key about itself. Keys are
returned in clear exactly once, by ``/key/generate``; everywhere else they are named by their hash
(``token``) and a masked form (``key_name``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from llmswitch.dialects._json import dumps, invalid
from llmswitch.errors import APIStatusError, NotFoundError, PermissionDeniedError
from llmswitch.guardrails.assign import assign_guardrails
from llmswitch.server import http
from llmswitch.server.amounts import render_cost
from llmswitch.server.budget_resets import apply_spend, period_over
from llmswitch.server.chat import parse_json
from llmswitch.server.key_search import search_keys
from llmswitch.server.soft_budgets import soft_budget_exceeded
from llmswitch.server.subject_fields import refuse_unsupported
from llmswitch.server.team_scope import admin_scope, scope_key_fields, team_admin_of

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway
    from llmswitch.server.auth import Principal

_HASH = re.compile(r"[0-9a-f]{64}")
_INT64_MAX = 2**63 - 1
_SETTABLE = (
    "models",
    "max_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "user_id",
    "team_id",
    "key_alias",
    "metadata",
    "blocked",
    "spend",
    "aliases",
    "tags",
    "soft_budget",
    "model_rpm_limit",
    "model_tpm_limit",
    "model_max_budget",
)
_MAX_TAGS, _MAX_TAG_CHARS = 64, 256  # every spend record carries them: kept small
# Everything /key/generate and /key/update act on; any other field (a LiteLLM one not implemented here,
# or a typo) is refused by name before anything is written, never answered 200 and ignored.
_ACCEPTED = frozenset({*_SETTABLE, "key", "duration", "guardrails"})


def _store_required(gw: Gateway) -> Any:
    if gw.store is None:
        raise APIStatusError(
            "virtual keys need a master_key and a store (general_settings.master_key; database_url or the "
            "embedded SQLite store)",
            status_code=400,
            provider="llmswitch",
            error_type="invalid_request_error",
        )
    return gw.store


def _require_master(gw: Gateway, request: http.Request) -> Principal:
    principal = gw.keys.authenticate(gw.key_of(request))
    request.state["principal"] = principal
    if not principal.is_master:
        raise PermissionDeniedError(
            "this route needs the master key", status_code=403, provider="llmswitch", error_type="permission_error"
        )
    return principal


def _token_of(value: Any, field: str) -> str:
    from llmswitch.store import hash_key

    if not isinstance(value, str) or not value:
        raise invalid(field, "a key (sk-…) or its token hash is required")
    return value if _HASH.fullmatch(value) else hash_key(value)


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    """The key fields a request sets, type-checked, with LiteLLM's ``duration`` turned into ``expires``."""
    from llmswitch.store import add_duration, parse_duration

    refuse_unsupported(body, _ACCEPTED)
    out: dict[str, Any] = {}
    for name in _SETTABLE:
        if name in body:
            out[name] = body[name]
    if "models" in out and out["models"] is not None:
        if not isinstance(out["models"], list) or not all(isinstance(m, str) for m in out["models"]):
            raise invalid("models", "must be a list of model names")
    elif "models" in out:
        out["models"] = []
    for name in ("max_budget", "spend", "soft_budget"):
        v = out.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf):
            raise invalid(name, "must be a non-negative number")
    if "spend" in out and out["spend"] is None:
        raise invalid("spend", "must be a non-negative number")
    for name in ("rpm_limit", "tpm_limit", "max_parallel_requests"):
        v = out.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _INT64_MAX):
            raise invalid(name, f"must be an integer between 0 and {_INT64_MAX}")
    for name in ("user_id", "team_id", "key_alias"):
        v = out.get(name)
        if v is not None and not isinstance(v, str):
            raise invalid(name, "must be a string")
        if isinstance(v, str) and "\x00" in v:
            raise invalid(name, "must not contain NUL characters")
    if "models" in out and any("\x00" in m for m in out["models"]):
        raise invalid("models", "model names must not contain NUL characters")
    if "metadata" in out:
        if out["metadata"] is None:
            out["metadata"] = {}
        elif not isinstance(out["metadata"], dict):
            raise invalid("metadata", "must be an object")
        elif "\\u0000" in dumps(out["metadata"]).decode():
            raise invalid("metadata", "must not contain NUL characters")
    if "aliases" in out:
        out["aliases"] = _aliases(out["aliases"])
    if "tags" in out:
        out["tags"] = _tags(out["tags"])
    for name in ("model_rpm_limit", "model_tpm_limit"):
        if name in out:
            out[name] = _per_model(out[name], name, _limit_value)
    if "model_max_budget" in out:
        out["model_max_budget"] = _per_model(out["model_max_budget"], "model_max_budget", _model_budget)
    if "blocked" in out and not isinstance(out["blocked"], bool):
        raise invalid("blocked", "must be true or false")
    now = datetime.now(UTC)
    if out.get("budget_duration") is not None:
        try:
            parse_duration(out["budget_duration"])
            out["budget_reset_at"] = add_duration(now, out["budget_duration"])
        except (ValueError, OverflowError) as exc:
            raise invalid("budget_duration", f"{out['budget_duration']!r} is not a usable duration ({exc})") from exc
    duration = body.get("duration")
    if duration is not None:
        try:
            out["expires"] = add_duration(now, str(duration))
        except (ValueError, OverflowError) as exc:
            raise invalid("duration", f"{duration!r} is not a usable duration ({exc})") from exc
    return out


def _aliases(value: Any) -> dict[str, str]:
    """LiteLLM's ``aliases``: ``{"name a client sends": "model group it is served by"}``."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
        raise invalid("aliases", "must be an object mapping model names to model names")
    if any("\x00" in name or "\x00" in target for name, target in value.items()):
        raise invalid("aliases", "must not contain NUL characters")
    return value


def _per_model(value: Any, field: str, check: Callable[[Any, str], Any]) -> dict[str, Any]:
    """LiteLLM's ``{"model group": value}`` maps, each value checked (``None`` clears the map)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(field, "must be an object keyed by model name")
    if any(not name or "\x00" in name for name in value):
        raise invalid(field, "model names must be non-empty, without NUL characters")
    return {name: check(v, field) for name, v in value.items()}


def _limit_value(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT64_MAX:
        raise invalid(field, f"each limit must be an integer between 0 and {_INT64_MAX}")
    return value


def _model_budget(value: Any, field: str) -> dict[str, Any]:
    """``{"budget_limit": 0.5, "time_period": "1d"}``; LiteLLM's documents write the limit as a string."""
    from llmswitch.errors import ConfigError
    from llmswitch.limits.periods import BudgetPeriod

    if not isinstance(value, dict) or "budget_limit" not in value or not set(value) <= {"budget_limit", "time_period"}:
        raise invalid(field, 'each budget must be {"budget_limit": <USD>, "time_period": <duration or null>}')
    limit = value["budget_limit"]
    if isinstance(limit, str):
        try:
            limit = float(limit)
        except ValueError:
            limit = None
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 <= limit < math.inf:
        raise invalid(field, "budget_limit must be a non-negative number")
    period = value.get("time_period")
    if period is not None:
        try:
            # the limiter's own reading of it: a period it cannot use must fail here, not on a request
            BudgetPeriod(period).end_at(datetime.now(UTC))
        except (ConfigError, ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise invalid(field, f"time_period {period!r} is not a usable duration") from exc
    return {"budget_limit": float(limit), "time_period": period}


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if (
        not isinstance(value, list)
        or len(value) > _MAX_TAGS
        or not all(isinstance(t, str) and 0 < len(t) <= _MAX_TAG_CHARS and "\x00" not in t for t in value)
    ):
        raise invalid("tags", f"must be a list of at most {_MAX_TAGS} non-empty strings of {_MAX_TAG_CHARS} characters")
    return list(dict.fromkeys(value))


def _info(rec: Any) -> dict[str, Any]:
    def iso(v: datetime | None) -> str | None:
        return v.isoformat() if v is not None else None

    return {
        "token": rec.token_hash,
        "key_name": rec.key_name,
        "key_alias": rec.key_alias,
        "models": rec.models,
        "max_budget": render_cost(rec.max_budget),
        "budget_duration": rec.budget_duration,
        "budget_reset_at": iso(rec.budget_reset_at),
        "rpm_limit": rec.rpm_limit,
        "tpm_limit": rec.tpm_limit,
        "max_parallel_requests": rec.max_parallel_requests,
        "user_id": rec.user_id,
        "team_id": rec.team_id,
        "metadata": rec.metadata,
        "aliases": rec.aliases,
        "tags": rec.tags,
        "soft_budget": render_cost(rec.soft_budget),
        "soft_budget_exceeded": soft_budget_exceeded(rec),
        "model_rpm_limit": rec.model_rpm_limit,
        "model_tpm_limit": rec.model_tpm_limit,
        "model_max_budget": {
            m: {"budget_limit": render_cost(b["budget_limit"]), "time_period": b["time_period"]}
            for m, b in rec.model_max_budget.items()
        },
        "expires": iso(rec.expires),
        "blocked": rec.blocked,
        "spend": render_cost(rec.spend),
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
    }


def _object(request: http.Request) -> dict[str, Any]:
    body = parse_json(request.body)
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    return body


async def key_generate(gw: Gateway, request: http.Request, send: http.Send) -> None:
    from llmswitch.store import KeyRecord, generate_key

    scope = admin_scope(gw, request)
    store = _store_required(gw)
    body = _object(request) if request.body else {}
    fields = _fields(body)
    scope_key_fields(gw, scope, fields)
    assign_guardrails(gw, body, fields)  # LiteLLM keeps a key's guardrails in its metadata
    key = body.get("key") or generate_key()
    if not isinstance(key, str) or len(key) < 8:
        raise invalid("key", "a custom key must be a string of at least 8 characters")
    try:
        rec = KeyRecord.for_key(key, **fields)
    except ValueError as exc:
        raise invalid("body", str(exc)) from exc
    rec = await store.create_key(rec)
    gw.keys.put(rec)
    out = _info(rec) | {"key": key}
    await http.send_bytes(send, 200, dumps(out))


async def key_info(gw: Gateway, request: http.Request, send: http.Send) -> None:
    principal = gw.keys.authenticate(gw.key_of(request))
    request.state["principal"] = principal
    store = _store_required(gw)
    asked = request.query.get("key")
    token = _token_of(asked, "key") if asked else principal.key_hash
    team_admin = None if principal.is_master or token == principal.key_hash else team_admin_of(gw, principal)
    if not principal.is_master and token != principal.key_hash and team_admin is None:
        raise PermissionDeniedError("a virtual key may only read its own info", status_code=403, provider="llmswitch")
    rec = await store.get_key(token)
    if team_admin is not None and rec is not None and rec.team_id != team_admin:
        raise PermissionDeniedError(
            f"this key is an admin of team {team_admin!r} only; that key is not of this team",
            status_code=403,
            provider="llmswitch",
            param="key",
        )
    if rec is not None and period_over(rec):
        # the budget period ended since the background reset last ran: show the current one
        await gw.budget_resets.run_once()
        rec = await store.get_key(token)
    if rec is None:
        raise NotFoundError("no such key", status_code=404, provider="llmswitch", param="key")
    await http.send_bytes(send, 200, dumps({"key": token, "info": _info(rec)}))


async def key_update(gw: Gateway, request: http.Request, send: http.Send) -> None:
    scope = admin_scope(gw, request)
    store = _store_required(gw)
    body = _object(request)
    token = _token_of(body.get("key"), "key")
    fields = _fields(body)
    if not scope.is_master:
        current = await store.get_key(token)
        if current is None:
            raise NotFoundError("no such key", status_code=404, provider="llmswitch", param="key")
        scope.check_key(current)
        scope_key_fields(gw, scope, fields)
    if "guardrails" in body and "metadata" not in fields:
        current = await store.get_key(token)
        assign_guardrails(gw, body, fields, current.metadata if current is not None else None)
    else:
        assign_guardrails(gw, body, fields)
    try:
        rec = await store.update_key(token, **fields)
    except (TypeError, ValueError) as exc:
        raise invalid("body", str(exc)) from exc
    if rec is None:
        raise NotFoundError("no such key", status_code=404, provider="llmswitch", param="key")
    gw.keys.put(rec)
    if "spend" in fields:  # an admin reset: the limiter counts from it at once
        await apply_spend(gw, f"key:{token}", rec)
    await http.send_bytes(send, 200, dumps(_info(rec) | {"key": token}))


async def key_delete(gw: Gateway, request: http.Request, send: http.Send) -> None:
    scope = admin_scope(gw, request)
    store = _store_required(gw)
    body = _object(request)
    keys = body.get("keys")
    aliases = body.get("key_aliases")
    tokens: list[str] = []
    if keys is not None:
        if not isinstance(keys, list):
            raise invalid("keys", "must be a list of keys")
        tokens = [_token_of(k, "keys") for k in keys]
    if aliases is not None:
        if not isinstance(aliases, list):
            raise invalid("key_aliases", "must be a list of key aliases")
        wanted = set(aliases)
        offset = 0
        while True:
            page = await store.list_keys(team_id=scope.team_id, limit=500, offset=offset)
            tokens += [r.token_hash for r in page if r.key_alias in wanted]
            if len(page) < 500:
                break
            offset += 500
    if not tokens:
        raise invalid("keys", "name the keys to delete ('keys' or 'key_aliases')")
    if not scope.is_master:
        for token in tokens:
            rec = await store.get_key(token)
            if rec is not None:
                scope.check_key(rec, "keys")
    await store.delete_keys(tokens)
    for t in tokens:
        gw.keys.remove(t)
    await http.send_bytes(send, 200, dumps({"deleted_keys": keys if keys is not None else tokens}))


async def key_list(gw: Gateway, request: http.Request, send: http.Send) -> None:
    scope = admin_scope(gw, request)
    store = _store_required(gw)
    q = request.query
    try:
        page = max(int(q.get("page", "1")), 1)
        size = min(max(int(q.get("size", "10")), 1), 1000)
    except ValueError as exc:
        raise invalid("page", "page and size must be integers") from exc
    user_id, team_id = q.get("user_id") or None, scope.team_filter(q.get("team_id") or None)
    full = q.get("return_full_object", "false").lower() == "true"
    search = q.get("search") or None
    if search is not None:  # from the keys held in memory (key_search.py)
        found = search_keys(gw, search, user_id=user_id, team_id=team_id)
        rows, total = found[(page - 1) * size : page * size], len(found)
    else:
        rows = await store.list_keys(user_id=user_id, team_id=team_id, limit=size, offset=(page - 1) * size)
        total = await store.count_keys(user_id=user_id, team_id=team_id)
    out = {
        "keys": [_info(r) for r in rows] if full else [r.token_hash for r in rows],
        "total_count": total,
        "current_page": page,
        "total_pages": max(1, math.ceil(total / size)),
    }
    await http.send_bytes(send, 200, dumps(out))


ROUTES: dict[tuple[str, str], http.Handler] = {
    ("POST", "/key/generate"): key_generate,
    ("GET", "/key/info"): key_info,
    ("POST", "/key/update"): key_update,
    ("POST", "/key/delete"): key_delete,
    ("GET", "/key/list"): key_list,
}
