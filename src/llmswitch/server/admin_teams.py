"""LiteLLM's user and team API, unchanged: ``/team/new``, ``/team/info``, ``/team/update``, ``/team/delete``,
``/team/list`` and ``/user/new``, ``/user/info``, ``/user/update``, ``/user/delete``, ``/user/list``.

A user or a team holds the budget and limits that all of its keys share (the ``user_id`` and ``team_id``
of a key). Every route needs the master key, except that a team admin's key (see team_scope.py) reads
its own team (``/team/info``, ``/team/list``) and that team's members (``/user/info``, ``/user/list``).
What a route writes goes to the store and, at once, to this gateway's memory
(:class:`~llmswitch.server.subjects.SubjectCache`); other instances see it at their next refresh. As in LiteLLM, ``/user/new`` also makes a key for the user unless
``"auto_create_key": false``, and deleting a user or team deletes its keys.

    curl -X POST localhost:4000/team/new -H "Authorization: Bearer $MASTER_KEY" \\
         -d '{"team_alias": "research", "max_budget": 100, "budget_duration": "30d", "rpm_limit": 600}'
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from llmswitch.dialects._json import dumps, invalid
from llmswitch.errors import APIStatusError, NotFoundError
from llmswitch.guardrails.assign import assign_guardrails
from llmswitch.server import http
from llmswitch.server.admin import _info as key_info
from llmswitch.server.admin import _object, _require_master, _store_required
from llmswitch.server.budget_resets import apply_spend, period_over
from llmswitch.server.subject_fields import (
    TEAM,
    USER,
    SubjectAPI,
    query_id,
    refuse_unsupported,
    subject_fields,
    subject_id,
    subject_info,
)
from llmswitch.server.team_scope import AdminScope, admin_scope, refused
from llmswitch.store import KeyRecord, Store, SubjectExistsError, SubjectRecord, add_duration, generate_key

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway
    from llmswitch.server.subjects import SubjectCache

_PAGE = 500


def _cache(gw: Gateway) -> SubjectCache | None:
    # the gateway's in-memory users and teams (gw.subjects), when it has them
    cache: SubjectCache | None = getattr(gw, "subjects", None)
    return cache


def _not_found(api: SubjectAPI, sid: str) -> NotFoundError:
    return NotFoundError(
        f"no {api.kind} with {api.id_field} {sid!r}", status_code=404, provider="llmswitch", param=api.id_field
    )


def _exists(api: SubjectAPI, sid: str) -> APIStatusError:
    message = f"{api.kind} {api.id_field}={sid!r} already exists; use a different {api.id_field}"
    if api is TEAM:  # LiteLLM answers 400 for a team, 409 for a user
        return invalid(api.id_field, message)
    return APIStatusError(
        message, status_code=409, provider="llmswitch", error_type="invalid_request_error", param=api.id_field
    )


async def _keys_of(store: Store, api: SubjectAPI, sid: str | None = None) -> list[KeyRecord]:
    """The keys of one user or team (every key when ``sid`` is ``None``), page by page."""
    user_id, team_id = (sid, None) if api is USER else (None, sid)
    found: list[KeyRecord] = []
    while True:
        page = await store.list_keys(user_id=user_id, team_id=team_id, limit=_PAGE, offset=len(found))
        found += page
        if len(page) < _PAGE:
            return found


async def _all_teams(store: Store) -> list[SubjectRecord]:
    found: list[SubjectRecord] = []
    while True:
        page = await store.list_subjects("team", limit=_PAGE, offset=len(found))
        found += page
        if len(page) < _PAGE:
            return found


def _new_record(gw: Gateway, request: http.Request, api: SubjectAPI) -> tuple[Store, dict[str, Any], SubjectRecord]:
    """The store, the request body, and the record a ``/team/new`` or ``/user/new`` asks for, checked."""
    _require_master(gw, request)
    store: Store = _store_required(gw)
    body = _object(request) if request.body else {}
    refuse_unsupported(body, api.accepted(new=True))
    raw_id = body.get(api.id_field)
    sid = str(uuid.uuid4()) if raw_id is None else subject_id(raw_id, api.id_field)
    fields = subject_fields(body, api)
    assign_guardrails(gw, body, fields)
    try:
        rec = SubjectRecord(kind=api.kind, id=sid, **fields)
    except ValueError as exc:
        raise invalid("body", str(exc)) from exc
    return store, body, rec


async def _store_new(gw: Gateway, store: Store, api: SubjectAPI, rec: SubjectRecord) -> SubjectRecord:
    try:
        rec = await store.create_subject(rec)
    except SubjectExistsError as exc:
        raise _exists(api, rec.id) from exc
    except ValueError as exc:
        raise invalid("body", str(exc)) from exc
    cache = _cache(gw)
    if cache is not None:
        cache.put(rec)
    return rec


async def team_new(gw: Gateway, request: http.Request, send: http.Send) -> None:
    store, body, rec = _new_record(gw, request, TEAM)
    if body.get("auto_create_key", False) is not False:
        raise invalid("auto_create_key", "a team has no key of its own; make keys with /key/generate and team_id")
    rec = await _store_new(gw, store, TEAM, rec)
    await http.send_bytes(send, 200, dumps(subject_info(rec, TEAM)))


async def user_new(gw: Gateway, request: http.Request, send: http.Send) -> None:
    store, body, rec = _new_record(gw, request, USER)
    # checked before anything is written, so a bad key field leaves no user behind
    key_fields = _user_key_fields(body)
    rec = await _store_new(gw, store, USER, rec)
    out = subject_info(rec, USER) | {"key": None, "key_alias": None, "expires": None}
    if key_fields is not None:
        key = generate_key()
        key_rec = await store.create_key(KeyRecord.for_key(key, user_id=rec.id, models=rec.models, **key_fields))
        gw.keys.put(key_rec)
        expires = key_rec.expires.isoformat() if key_rec.expires is not None else None
        out |= {"key": key, "key_alias": key_rec.key_alias, "expires": expires}
    await http.send_bytes(send, 200, dumps(out))


def _user_key_fields(body: dict[str, Any]) -> dict[str, Any] | None:
    """The fields of the key ``/user/new`` makes (``key_alias``, ``duration``), or ``None`` for no key."""
    auto = body.get("auto_create_key", True)
    if not isinstance(auto, bool):
        raise invalid("auto_create_key", "must be true or false")
    if not auto:
        return None
    fields: dict[str, Any] = {}
    alias = body.get("key_alias")
    if alias is not None:
        if not isinstance(alias, str) or "\x00" in alias:
            raise invalid("key_alias", "must be a string without NUL characters")
        fields["key_alias"] = alias
    duration = body.get("duration")
    if duration is not None:
        try:
            fields["expires"] = add_duration(datetime.now(UTC), duration)
        except (ValueError, OverflowError) as exc:
            raise invalid("duration", f"{duration!r} is not a usable duration ({exc})") from exc
    return fields


def _member_of(gw: Gateway, scope: AdminScope, user_id: str) -> bool:
    team = gw.subjects.get("team", scope.team_id)
    return team is not None and any(m.get("user_id") == user_id for m in team.members_with_roles)


async def _info(gw: Gateway, request: http.Request, send: http.Send, api: SubjectAPI) -> None:
    scope = admin_scope(gw, request)
    store: Store = _store_required(gw)
    sid = query_id(request, api.id_field)
    if api is TEAM:
        scope.team_filter(sid)
    elif not scope.is_master and not _member_of(gw, scope, sid):
        raise refused(f"user {sid!r} is not a member of team {scope.team_id!r}", param="user_id")
    rec = await store.get_subject(api.kind, sid)
    if rec is not None and period_over(rec):
        # the budget period ended since the background reset last ran: show the current one
        await gw.budget_resets.run_once()
        rec = await store.get_subject(api.kind, sid)
    if rec is None:
        raise _not_found(api, sid)
    keys = await _keys_of(store, api, sid)
    if not scope.is_master:  # a member's keys in other teams are not this team admin's to see
        keys = [k for k in keys if k.team_id == scope.team_id]
    out: dict[str, Any] = {
        api.id_field: sid,
        f"{api.kind}_info": subject_info(rec, api),
        "keys": [key_info(k) for k in keys],
    }
    # team membership is not modelled (yet): LiteLLM's lists are there, empty
    out["team_memberships" if api is TEAM else "teams"] = []
    await http.send_bytes(send, 200, dumps(out))


async def team_info(gw: Gateway, request: http.Request, send: http.Send) -> None:
    await _info(gw, request, send, TEAM)


async def user_info(gw: Gateway, request: http.Request, send: http.Send) -> None:
    await _info(gw, request, send, USER)


async def _update(gw: Gateway, request: http.Request, send: http.Send, api: SubjectAPI) -> None:
    _require_master(gw, request)
    store: Store = _store_required(gw)
    body = _object(request)
    refuse_unsupported(body, api.accepted(new=False))
    sid = subject_id(body.get(api.id_field), api.id_field)
    fields = subject_fields(body, api)
    if "guardrails" in body and "metadata" not in fields:
        current = await store.get_subject(api.kind, sid)
        assign_guardrails(gw, body, fields, current.metadata if current is not None else None)
    try:
        rec = await store.update_subject(api.kind, sid, **fields)
    except (TypeError, ValueError) as exc:
        raise invalid("body", str(exc)) from exc
    if rec is None:
        raise _not_found(api, sid)
    cache = _cache(gw)
    if cache is not None:
        cache.put(rec)
    if "spend" in fields:  # an admin reset: the limiter counts from it at once
        await apply_spend(gw, f"{api.kind}:{sid}", rec)
    await http.send_bytes(send, 200, dumps({api.id_field: sid, "data": subject_info(rec, api)}))


async def team_update(gw: Gateway, request: http.Request, send: http.Send) -> None:
    await _update(gw, request, send, TEAM)


async def user_update(gw: Gateway, request: http.Request, send: http.Send) -> None:
    await _update(gw, request, send, USER)


async def _delete(gw: Gateway, request: http.Request, api: SubjectAPI) -> tuple[list[str], int]:
    """Delete the subjects a request names, and their keys; every one must exist, or nothing is deleted."""
    _require_master(gw, request)
    store: Store = _store_required(gw)
    raw = _object(request).get(api.ids_field)
    if not isinstance(raw, list) or not raw:
        raise invalid(api.ids_field, f"a non-empty list of {api.id_field}s is required")
    ids = list(dict.fromkeys(subject_id(v, api.ids_field) for v in raw))
    for sid in ids:
        if await store.get_subject(api.kind, sid) is None:
            raise NotFoundError(
                f"no {api.kind} with {api.id_field} {sid!r}; nothing was deleted",
                status_code=404,
                provider="llmswitch",
                param=api.ids_field,
            )
    # keys first: no key outlives its user or team, even for a moment
    tokens = [k.token_hash for sid in ids for k in await _keys_of(store, api, sid)]
    await store.delete_keys(tokens)
    for token in tokens:
        gw.keys.remove(token)
    count = await store.delete_subjects(api.kind, ids)
    cache = _cache(gw)
    if cache is not None:
        for sid in ids:
            cache.remove(api.kind, sid)
    return ids, count


async def team_delete(gw: Gateway, request: http.Request, send: http.Send) -> None:
    ids, _ = await _delete(gw, request, TEAM)
    await http.send_bytes(send, 200, dumps({"deleted_teams": ids}))


async def user_delete(gw: Gateway, request: http.Request, send: http.Send) -> None:
    _, count = await _delete(gw, request, USER)
    # LiteLLM answers with the number of users deleted, a bare JSON number
    await http.send_bytes(send, 200, dumps(count))


async def team_list(gw: Gateway, request: http.Request, send: http.Send) -> None:
    """Every team, by alias, each with its keys (LiteLLM's ``/team/list`` is not paginated); a team admin's: its own.

    ``?include_keys=false`` gives each team's ``key_count`` instead of its keys (what the dashboard shows)."""
    scope = admin_scope(gw, request)
    store: Store = _store_required(gw)
    teams = await _all_teams(store)
    if not scope.is_master:
        teams = [t for t in teams if t.id == scope.team_id]
    if request.query.get("include_keys", "true").lower() == "false":
        teams.sort(key=lambda t: (t.alias or "", t.id))
        counts = Counter(k.team_id for k in gw.keys.records())  # every key is held in memory (auth.py)
        counted = [subject_info(t, TEAM) | {"key_count": counts[t.id]} for t in teams]
        await http.send_bytes(send, 200, dumps(counted))
        return
    keys: dict[str, list[dict[str, Any]]] = {t.id: [] for t in teams}
    # one pass over all keys rather than one query per team
    for k in (
        (await _keys_of(store, TEAM) if scope.is_master else await _keys_of(store, TEAM, scope.team_id))
        if teams
        else []
    ):
        if k.team_id in keys:
            keys[k.team_id].append(key_info(k))
    teams.sort(key=lambda t: (t.alias or "", t.id))
    out = [subject_info(t, TEAM) | {"keys": keys[t.id], "team_memberships": []} for t in teams]
    await http.send_bytes(send, 200, dumps(out))


async def user_list(gw: Gateway, request: http.Request, send: http.Send) -> None:
    """One page of users, oldest first, each with its number of keys; a team admin's: the team's members."""
    scope = admin_scope(gw, request)
    store: Store = _store_required(gw)
    page = _positive_int(request.query.get("page", "1"), "page", 2**31)
    size = _positive_int(request.query.get("page_size", "25"), "page_size", 100)
    if scope.is_master:
        users = await store.list_subjects("user", limit=size, offset=(page - 1) * size)
        total = await store.count_subjects("user")
    else:
        team = gw.subjects.get("team", scope.team_id)
        members = [m["user_id"] for m in team.members_with_roles] if team is not None else []
        found = [gw.subjects.get("user", m) for m in members]
        known = [u for u in found if u is not None]
        users, total = known[(page - 1) * size : page * size], len(known)
    # every key is held in memory (auth.py): counting there spares a query per user
    counts = Counter(k.user_id for k in gw.keys.records() if scope.is_master or k.team_id == scope.team_id)
    out = {
        "users": [subject_info(u, USER) | {"key_count": counts[u.id]} for u in users],
        "total": total,
        "page": page,
        "page_size": size,
        "total_pages": math.ceil(total / size),
    }
    await http.send_bytes(send, 200, dumps(out))


def _positive_int(text: str, field: str, most: int) -> int:
    # ASCII digits only, and few of them: int() refuses very long digit strings with a ValueError of its own
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else 0
    if not 1 <= value <= most:
        raise invalid(field, f"must be an integer between 1 and {most}")
    return value


ROUTES: dict[tuple[str, str], http.Handler] = {
    ("POST", "/team/new"): team_new,
    ("GET", "/team/info"): team_info,
    ("POST", "/team/update"): team_update,
    ("POST", "/team/delete"): team_delete,
    ("GET", "/team/list"): team_list,
    ("POST", "/user/new"): user_new,
    ("GET", "/user/info"): user_info,
    ("POST", "/user/update"): user_update,
    ("POST", "/user/delete"): user_delete,
    ("GET", "/user/list"): user_list,
}
