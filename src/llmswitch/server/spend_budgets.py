"""``GET /spend/budgets``: the keys, users and teams whose spend is near (or past) their budget; and
``GET /spend/top``: the biggest spenders among them.

    curl "localhost:4000/spend/budgets?threshold=0.8" -H "Authorization: Bearer $MASTER_KEY"
    {"threshold": 0.8, "data": [{"kind": "key", "id": "<token>", "name": "ci-bot", "spend": 9.1,
                                 "max_budget": 10.0, "used": 0.91, "budget_reset_at": "..."}]}

``threshold`` (0 to 10, 0.8 by default) is the share of ``max_budget`` spent from which a record is
listed; the most used come first, at most ``limit`` (100 by default, up to 1000). Read from the
gateway's memory of keys, users and teams (refreshed every second), so it costs no database query.
A team admin (team_scope.py) sees its team's keys, its team and the team's members only.

    curl "localhost:4000/spend/top?group_by=key&limit=10" -H "Authorization: Bearer $MASTER_KEY"
    {"group_by": "key", "data": [{"kind": "key", "id": "<token>", "name": "ci-bot", "spend": 41.2, ...}]}

``/spend/top`` ranks keys, users or teams (``group_by``) by their ``spend``: what their budget counts,
so since the start of the current budget period for those with a ``budget_duration``, else all time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmswitch.dialects._json import dumps, invalid
from llmswitch.server import http
from llmswitch.server.amounts import render_cost
from llmswitch.server.team_scope import admin_scope

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway


def _number(text: str | None, field: str, default: float, low: float, high: float) -> float:
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise invalid(field, f"must be a number from {low:g} to {high:g}")
    return value


def _row(kind: str, ident: str, name: str | None, rec: Any) -> dict[str, Any]:
    reset = rec.budget_reset_at
    return {
        "kind": kind,
        "id": ident,
        "name": name or ident,
        "spend": render_cost(rec.spend),
        "max_budget": render_cost(rec.max_budget),
        "used": None if rec.max_budget is None else round(rec.spend / rec.max_budget, 4) if rec.max_budget else 1.0,
        "budget_reset_at": reset.isoformat() if reset is not None else None,
    }


async def spend_budgets(gw: Gateway, request: http.Request, send: http.Send) -> None:
    scope = admin_scope(gw, request)
    q = request.query
    threshold = _number(q.get("threshold"), "threshold", 0.8, 0.0, 10.0)
    limit = int(_number(q.get("limit"), "limit", 100, 1, 1000))

    def near(rec: Any) -> bool:
        return rec.max_budget is not None and rec.spend >= threshold * rec.max_budget

    rows = [
        _row("key", k.token_hash, k.key_alias or k.key_name, k)
        for k in gw.keys.records()
        if near(k) and (scope.is_master or k.team_id == scope.team_id)
    ]
    members: set[str] | None = None
    if not scope.is_master:
        team = gw.subjects.get("team", scope.team_id)
        members = {m["user_id"] for m in team.members_with_roles} if team is not None else set()
    for s in gw.subjects.records():
        if not near(s):
            continue
        if (
            members is not None
            and not (s.kind == "team" and s.id == scope.team_id)
            and not (s.kind == "user" and s.id in members)
        ):
            continue
        rows.append(_row(s.kind, s.id, s.alias, s))
    rows.sort(key=lambda r: (-r["used"], r["kind"], r["id"]))
    await http.send_bytes(send, 200, dumps({"threshold": threshold, "data": rows[:limit]}))


async def spend_top(gw: Gateway, request: http.Request, send: http.Send) -> None:
    scope = admin_scope(gw, request)
    q = request.query
    group_by = q.get("group_by", "key")
    if group_by not in ("key", "user", "team"):
        raise invalid("group_by", "must be one of key, user, team")
    limit = int(_number(q.get("limit"), "limit", 10, 1, 1000))
    rows: list[dict[str, Any]]
    if group_by == "key":
        keys = gw.keys.records()
        if not scope.is_master:
            keys = [k for k in keys if k.team_id == scope.team_id]
        keys.sort(key=lambda k: -k.spend)
        rows = [_row("key", k.token_hash, k.key_alias or k.key_name, k) for k in keys[:limit]]
    else:
        subjects = [s for s in gw.subjects.records() if s.kind == group_by]
        if not scope.is_master:
            team = gw.subjects.get("team", scope.team_id)
            members = {m["user_id"] for m in team.members_with_roles} if team is not None else set()
            subjects = [s for s in subjects if s.id in members or (s.kind == "team" and s.id == scope.team_id)]
        subjects.sort(key=lambda s: -s.spend)
        rows = [_row(s.kind, s.id, s.alias, s) for s in subjects[:limit]]
    await http.send_bytes(send, 200, dumps({"group_by": group_by, "data": rows}))


ROUTES: dict[tuple[str, str], http.Handler] = {
    ("GET", "/spend/budgets"): spend_budgets,
    ("GET", "/spend/top"): spend_top,
}
