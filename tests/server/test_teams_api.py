"""LiteLLM's user and team API on the gateway (/team/new|info|update|delete|list, /user/new|info|update|delete|list),
through a real gateway over loopback with the master key, the same tests on SQLite and on PostgreSQL."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gateway_harness import GROUPS, ServedGateway, chat_request, dialect_error, gateway_config

from llmswitch.server import admin_teams, faces
from llmswitch.server.app import Gateway
from llmswitch.server.subjects import SubjectCache
from llmswitch.testing import FakeUpstream, Reply

SUBJECT_FIELDS = {
    "models", "max_budget", "budget_duration", "budget_reset_at", "rpm_limit", "tpm_limit", "max_parallel_requests",
    "metadata", "blocked", "spend", "created_at", "updated_at",
}  # fmt: skip
TEAM_FIELDS = SUBJECT_FIELDS | {"team_id", "team_alias", "members_with_roles"}
USER_FIELDS = SUBJECT_FIELDS | {"user_id", "user_alias"}
EVERY_FIELD: dict[str, Any] = {
    "models": ["m-openai", "m-gemini"],
    "max_budget": 250.5,
    "budget_duration": "30d",
    "rpm_limit": 600,
    "tpm_limit": 2**63 - 1,
    "max_parallel_requests": 8,
    "metadata": {"cost_center": "r&d", "tags": ["eu"], "nested": {"n": 1}},
    "blocked": False,
}


def mount_teams_api(gw: Gateway) -> SubjectCache:
    """What app.py will do: the routes, and the cache started and stopped with the gateway (a no-op once it does)."""
    for route, handler in admin_teams.ROUTES.items():
        gw._routes.setdefault(route, (handler, faces.OPENAI))
    cache: SubjectCache | None = getattr(gw, "subjects", None)
    if cache is None:
        cache = SubjectCache(gw.store)
        gw.subjects = cache  # type: ignore[attr-defined]
        gw._on_startup.append(cache.start)
        gw._on_shutdown.append(cache.stop)
    return cache


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(
    request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedGateway]:
    if request.param == "sqlite":
        store = str(tmp_path_factory.mktemp("teams") / "teams.db")
    else:
        store = request.getfixturevalue("postgres_url")
    served = ServedGateway(gateway_config(upstream, store, num_retries=0))
    mount_teams_api(served.gateway)
    with served:
        yield served


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def when(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def cached(api: ServedGateway, kind: str, sid: str) -> Any:
    cache: SubjectCache = api.gateway.subjects  # type: ignore[attr-defined]
    return cache.get(kind, sid)  # type: ignore[arg-type]


def ok(r: Any) -> Any:
    assert r.status == 200, r.body
    return r.json()


# ---------------------------------------------------------------- teams


def test_team_new_with_every_field(api: ServedGateway) -> None:
    team_id = unique("team")
    before = datetime.now(UTC)
    out = ok(api.call("POST", "/team/new", {"team_id": team_id, "team_alias": "Research", **EVERY_FIELD}))
    after = datetime.now(UTC)
    assert set(out) == TEAM_FIELDS
    assert (out["team_id"], out["team_alias"], out["spend"]) == (team_id, "Research", 0.0)
    for name, value in EVERY_FIELD.items():
        assert out[name] == value, name
    assert before + timedelta(days=30) <= when(out["budget_reset_at"]) <= after + timedelta(days=30)
    # held in memory at once, for the request path to read
    held = cached(api, "team", team_id)
    assert held is not None and (held.rpm_limit, held.max_budget, held.alias) == (600, 250.5, "Research")


def test_team_new_generates_an_id(api: ServedGateway) -> None:
    for body in ({"team_alias": "anonymous"}, None):
        out = ok(api.call("POST", "/team/new", body))
        assert uuid.UUID(out["team_id"]).version == 4
        assert (out["models"], out["max_budget"], out["metadata"], out["blocked"]) == ([], None, {}, False)


def test_creating_an_id_twice_is_refused_as_litellm_does(api: ServedGateway) -> None:
    team_id, user_id = unique("team"), unique("user")
    ok(api.call("POST", "/team/new", {"team_id": team_id, "team_alias": "first"}))
    again = api.call("POST", "/team/new", {"team_id": team_id, "team_alias": "second"})
    assert again.status == 400 and again.json()["error"]["param"] == "team_id"
    assert "already exists" in dialect_error("openai", again)[1]
    assert ok(api.call("GET", f"/team/info?team_id={team_id}"))["team_info"]["team_alias"] == "first"
    ok(api.call("POST", "/user/new", {"user_id": user_id}))
    again = api.call("POST", "/user/new", {"user_id": user_id})
    assert again.status == 409 and again.json()["error"]["param"] == "user_id"


def test_team_info_lists_the_team_keys(api: ServedGateway) -> None:
    team_id = unique("team")
    created = ok(api.call("POST", "/team/new", {"team_id": team_id, "max_budget": 5}))
    key = api.new_key(team_id=team_id, key_alias="ci")
    api.new_key(team_id=unique("other-team"))
    out = ok(api.call("GET", f"/team/info?team_id={team_id}"))
    assert set(out) == {"team_id", "team_info", "keys", "team_memberships"}
    assert out["team_id"] == team_id and out["team_info"] == created and out["team_memberships"] == []
    assert [(k["key_name"], k["key_alias"], k["team_id"]) for k in out["keys"]] == [
        (f"sk-...{key[-4:]}", "ci", team_id)
    ]
    assert key not in str(out)


def test_team_update_changes_only_the_fields_sent(api: ServedGateway) -> None:
    team_id = unique("team")
    created = ok(api.call("POST", "/team/new", {"team_id": team_id, "team_alias": "A", **EVERY_FIELD}))
    out = ok(
        api.call("POST", "/team/update", {"team_id": team_id, "tpm_limit": 100, "metadata": {"v": 2}, "blocked": True})
    )
    assert set(out) == {"team_id", "data"} and out["team_id"] == team_id
    data = out["data"]
    assert (data["tpm_limit"], data["metadata"], data["blocked"]) == (100, {"v": 2}, True)
    for same in ("team_alias", "models", "max_budget", "budget_duration", "budget_reset_at", "rpm_limit", "created_at"):
        assert data[same] == created[same], same
    assert when(data["updated_at"]) > when(created["updated_at"])
    held = cached(api, "team", team_id)
    assert held is not None and (held.tpm_limit, held.blocked) == (100, True)
    # back to "no budget, no reset"
    cleared = ok(api.call("POST", "/team/update", {"team_id": team_id, "max_budget": None, "budget_duration": None}))
    assert (cleared["data"]["max_budget"], cleared["data"]["budget_duration"], cleared["data"]["budget_reset_at"]) == (
        None,
        None,
        None,
    )
    assert ok(api.call("GET", f"/team/info?team_id={team_id}"))["team_info"] == cleared["data"]


def test_team_delete_deletes_the_team_and_its_keys(api: ServedGateway, up: FakeUpstream) -> None:
    doomed, kept = unique("team"), unique("team")
    for team_id in (doomed, kept):
        ok(api.call("POST", "/team/new", {"team_id": team_id}))
    doomed_key, kept_key = api.new_key(team_id=doomed), api.new_key(team_id=kept)
    assert api.call("POST", *chat_request("openai", GROUPS["openai"]), key=doomed_key).status == 200

    # one unknown id: nothing is deleted
    r = api.call("POST", "/team/delete", {"team_ids": [doomed, unique("never")]})
    assert r.status == 404 and r.json()["error"]["param"] == "team_ids"
    assert api.call("GET", f"/team/info?team_id={doomed}").status == 200

    assert ok(api.call("POST", "/team/delete", {"team_ids": [doomed]})) == {"deleted_teams": [doomed]}
    assert api.call("GET", f"/team/info?team_id={doomed}").status == 404
    assert cached(api, "team", doomed) is None
    assert api.call("GET", f"/key/info?key={doomed_key}").status == 404
    assert api.call("POST", *chat_request("openai", GROUPS["openai"]), key=doomed_key).status == 401
    assert api.call("GET", f"/key/info?key={kept_key}").status == 200 and cached(api, "team", kept) is not None


def test_team_list_is_every_team_by_alias_with_its_keys(api: ServedGateway) -> None:
    first, second = unique("team"), unique("team")
    ok(api.call("POST", "/team/new", {"team_id": first, "team_alias": f"zz-{first}"}))
    ok(api.call("POST", "/team/new", {"team_id": second, "team_alias": f"zz-{first}-a"}))
    api.new_key(team_id=second)
    teams = ok(api.call("GET", "/team/list"))
    assert isinstance(teams, list)
    ids = [t["team_id"] for t in teams]
    assert ids.index(first) < ids.index(second)
    aliases = [t["team_alias"] or "" for t in teams]
    assert aliases == sorted(aliases)
    by_id = {t["team_id"]: t for t in teams}
    assert set(by_id[second]) == TEAM_FIELDS | {"keys", "team_memberships"}
    assert [k["team_id"] for k in by_id[second]["keys"]] == [second] and by_id[first]["keys"] == []


# ---------------------------------------------------------------- users


def test_user_new_makes_a_key_for_the_user(api: ServedGateway, up: FakeUpstream) -> None:
    user_id = unique("user")
    before = datetime.now(UTC)
    body = {"user_id": user_id, "user_alias": "Alice", "key_alias": "laptop", "duration": "1h", **EVERY_FIELD}
    out = ok(api.call("POST", "/user/new", body))
    assert set(out) == USER_FIELDS | {"key", "key_alias", "expires"}
    assert (out["user_id"], out["user_alias"], out["rpm_limit"], out["key_alias"]) == (user_id, "Alice", 600, "laptop")
    assert before + timedelta(hours=1) <= when(out["expires"]) <= datetime.now(UTC) + timedelta(hours=1)
    key = out["key"]
    info = ok(api.call("GET", "/key/info", key=key))["info"]
    assert (info["user_id"], info["models"], info["key_alias"]) == (user_id, EVERY_FIELD["models"], "laptop")
    assert api.call("POST", *chat_request("openai", GROUPS["openai"]), key=key).status == 200
    assert api.call("POST", *chat_request("anthropic", GROUPS["anthropic"]), key=key).status == 403
    held = cached(api, "user", user_id)
    assert held is not None and held.alias == "Alice"


def test_user_new_without_a_key(api: ServedGateway) -> None:
    out = ok(api.call("POST", "/user/new", {"auto_create_key": False}))
    assert uuid.UUID(out["user_id"]).version == 4
    assert (out["key"], out["key_alias"], out["expires"]) == (None, None, None)
    assert ok(api.call("GET", f"/user/info?user_id={out['user_id']}"))["keys"] == []


def test_user_info_update_and_delete(api: ServedGateway) -> None:
    user_id = unique("user")
    key = ok(api.call("POST", "/user/new", {"user_id": user_id, "max_budget": 10}))["key"]
    second = api.new_key(user_id=user_id)
    info = ok(api.call("GET", f"/user/info?user_id={user_id}"))
    assert set(info) == {"user_id", "user_info", "keys", "teams"}
    assert set(info["user_info"]) == USER_FIELDS and info["teams"] == []
    assert sorted(k["key_name"] for k in info["keys"]) == sorted(f"sk-...{k[-4:]}" for k in (key, second))

    out = ok(api.call("POST", "/user/update", {"user_id": user_id, "max_budget": 20, "user_alias": "Bob", "spend": 0}))
    assert set(out) == {"user_id", "data"}
    assert (out["data"]["max_budget"], out["data"]["user_alias"]) == (20.0, "Bob")
    assert cached(api, "user", user_id).max_budget == 20.0
    assert api.call("POST", "/user/update", {"user_id": unique("nobody"), "max_budget": 1}).status == 404

    # LiteLLM answers /user/delete with the number of users deleted
    assert ok(api.call("POST", "/user/delete", {"user_ids": [user_id, user_id]})) == 1
    assert api.call("GET", f"/user/info?user_id={user_id}").status == 404
    assert [api.call("GET", f"/key/info?key={k}").status for k in (key, second)] == [404, 404]
    assert cached(api, "user", user_id) is None


def test_user_list_pages(api: ServedGateway) -> None:
    mine = [unique("user") for _ in range(3)]
    for user_id in mine:
        ok(api.call("POST", "/user/new", {"user_id": user_id}))
    first = ok(api.call("GET", "/user/list?page_size=2"))
    assert set(first) == {"users", "total", "page", "page_size", "total_pages"}
    total = first["total"]
    assert total >= 3 and (first["page"], first["page_size"], first["total_pages"]) == (1, 2, math.ceil(total / 2))
    seen = [
        u
        for page in range(1, first["total_pages"] + 1)
        for u in ok(api.call("GET", f"/user/list?page={page}&page_size=2"))["users"]
    ]
    assert len(seen) == total and len({u["user_id"] for u in seen}) == total
    listed = {u["user_id"]: u for u in seen}
    assert all(set(listed[u]) == USER_FIELDS | {"key_count"} and listed[u]["key_count"] == 1 for u in mine)
    assert ok(api.call("GET", f"/user/list?page={first['total_pages'] + 1}&page_size=2"))["users"] == []
    assert ok(api.call("GET", "/user/list"))["page_size"] == 25


def test_ids_with_plus_signs_and_other_characters(api: ServedGateway) -> None:
    user_id = f"{unique('a')}+tag@example.com"
    ok(api.call("POST", "/user/new", {"user_id": user_id, "auto_create_key": False}))
    # as LiteLLM reads it: an unencoded '+' in the query is a '+', not a space
    assert ok(api.call("GET", f"/user/info?user_id={user_id}"))["user_id"] == user_id
    assert ok(api.call("GET", f"/user/info?user_id={user_id.replace('+', '%2B')}"))["user_id"] == user_id
    team_id = unique("Zoë's team / 🚀")
    ok(api.call("POST", "/team/new", {"team_id": team_id}))
    from urllib.parse import quote

    assert ok(api.call("GET", f"/team/info?team_id={quote(team_id)}"))["team_id"] == team_id


# ---------------------------------------------------------------- validation and access

TEAM_BAD: list[tuple[str, Any]] = [
    ("team_id", ""),
    ("team_id", 5),
    ("team_id", "a\x00b"),
    ("team_alias", 5),
    ("team_alias", "a\x00b"),
    ("models", "m-openai"),
    ("models", [1]),
    ("models", ["m\x00"]),
    ("max_budget", -1),
    ("max_budget", "10"),
    ("max_budget", True),
    ("spend", -0.5),
    ("spend", None),
    ("rpm_limit", 1.5),
    ("rpm_limit", -1),
    ("rpm_limit", 2**63),
    ("rpm_limit", True),
    ("tpm_limit", "1000"),
    ("tpm_limit", 2**70),
    ("max_parallel_requests", -2),
    ("budget_duration", "30days"),
    ("budget_duration", 30),
    ("budget_duration", "99999999999999d"),
    ("budget_duration", "99999999999999mo"),
    ("metadata", ["not", "an", "object"]),
    ("metadata", "text"),
    ("metadata", {"note": "a\x00b"}),
    ("metadata", {"a\x00": 1}),
    ("blocked", "yes"),
    ("blocked", None),
]
USER_BAD: list[tuple[str, Any]] = [
    ("user_id", ""),
    ("user_id", ["u"]),
    ("user_alias", {"a": 1}),
    ("auto_create_key", "no"),
    ("key_alias", 5),
    ("key_alias", "a\x00"),
    ("duration", "forever"),
    ("duration", "99999999999999d"),
    ("max_budget", -3),
    ("metadata", 7),
]


def _case(route: str, field: str, value: Any) -> Any:
    return pytest.param(route, field, value, id=f"{route}-{field}-{value!r}")


@pytest.mark.parametrize(
    ("route", "field", "value"),
    [
        _case(r, f, v)
        for r in ("/team/new", "/team/update")
        for f, v in TEAM_BAD
        if (r, f) != ("/team/update", "team_id")
    ]
    + [
        _case(r, f, v)
        for r in ("/user/new", "/user/update")
        for f, v in USER_BAD
        if r == "/user/new" or f in ("user_id", "user_alias", "max_budget", "metadata")
    ],
)
def test_a_bad_field_is_400_naming_it(api: ServedGateway, route: str, field: str, value: Any) -> None:
    kind = route.split("/")[1]
    body: dict[str, Any] = {field: value}
    if route.endswith("/update") and field != f"{kind}_id":
        body[f"{kind}_id"] = ok(api.call("POST", f"/{kind}/new", {"auto_create_key": False}))[f"{kind}_id"]
    before = ok(api.call("GET", f"/{kind}/list" if kind == "team" else "/user/list?page_size=1"))
    r = api.call("POST", route, body)
    assert r.status == 400, r.body
    error_type, message = dialect_error("openai", r)
    assert error_type == "invalid_request_error"
    assert r.json()["error"]["param"] == field and field in message
    after = ok(api.call("GET", f"/{kind}/list" if kind == "team" else "/user/list?page_size=1"))
    assert (len(after) if kind == "team" else after["total"]) == (len(before) if kind == "team" else before["total"])


def test_an_infinite_budget_is_400(api: ServedGateway) -> None:
    # JSON has no Infinity; a decoder may read 1e999 as one, or refuse the body
    r = api.call("POST", "/team/new", raw=b'{"max_budget": 1e999}')
    assert r.status == 400 and r.json()["error"]["param"] in ("max_budget", "body")


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/team/info", None, "team_id"),
        ("GET", "/team/info?team_id=", None, "team_id"),
        ("GET", "/team/info?team_id=a%00b", None, "team_id"),
        ("GET", "/user/info", None, "user_id"),
        ("GET", "/user/info?user_id=%00", None, "user_id"),
        ("POST", "/team/update", {"max_budget": 1}, "team_id"),
        ("POST", "/user/update", {"user_id": None}, "user_id"),
        ("POST", "/team/delete", {}, "team_ids"),
        ("POST", "/team/delete", {"team_ids": []}, "team_ids"),
        ("POST", "/team/delete", {"team_ids": "t"}, "team_ids"),
        ("POST", "/team/delete", {"team_ids": [""]}, "team_ids"),
        ("POST", "/user/delete", {"user_ids": [5]}, "user_ids"),
        ("POST", "/user/delete", {"user_ids": ["a\x00"]}, "user_ids"),
        ("GET", "/user/list?page=0", None, "page"),
        ("GET", "/user/list?page=first", None, "page"),
        ("GET", "/user/list?page=" + "9" * 5000, None, "page"),
        ("GET", "/user/list?page=%C2%B2", None, "page"),
        ("GET", "/user/list?page_size=101", None, "page_size"),
        ("GET", "/user/list?page_size=-1", None, "page_size"),
        ("POST", "/team/new", "not an object", "body"),
        ("POST", "/user/update", ["list"], "body"),
    ],
    ids=lambda x: x if isinstance(x, str) and len(x) < 60 else None,
)
def test_a_bad_id_page_or_body_is_400_naming_it(
    api: ServedGateway, method: str, path: str, body: Any, field: str
) -> None:
    r = api.call(method, path, body)
    assert r.status == 400, r.body
    assert r.json()["error"]["param"] == field


def test_unknown_ids_are_404(api: ServedGateway) -> None:
    nobody = unique("nobody")
    for method, path, body, param in [
        ("GET", f"/team/info?team_id={nobody}", None, "team_id"),
        ("GET", f"/user/info?user_id={nobody}", None, "user_id"),
        ("POST", "/team/update", {"team_id": nobody, "rpm_limit": 1}, "team_id"),
        ("POST", "/user/update", {"user_id": nobody}, "user_id"),
        ("POST", "/team/delete", {"team_ids": [nobody]}, "team_ids"),
        ("POST", "/user/delete", {"user_ids": [nobody]}, "user_ids"),
    ]:
        r = api.call(method, path, body)
        assert r.status == 404, (path, r.body)
        assert dialect_error("openai", r)[0] == "not_found_error" and r.json()["error"]["param"] == param


ROUTES = [(method, path) for method, path in admin_teams.ROUTES]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[p for _, p in ROUTES])
def test_only_the_master_key_may_call(api: ServedGateway, method: str, path: str) -> None:
    virtual = api.new_key()
    team_id = unique("team")
    ok(api.call("POST", "/team/new", {"team_id": team_id}))
    body = {"team_id": team_id, "team_ids": [team_id], "user_ids": [team_id]} if method == "POST" else None
    query = f"?team_id={team_id}&user_id={team_id}" if method == "GET" else ""
    denied = api.call(method, path + query, body, key=virtual)
    assert denied.status == 403, denied.body
    assert dialect_error("openai", denied)[0] == "permission_error"
    assert api.call(method, path + query, body, key=None).status == 401
    assert api.call(method, path + query, body, key="sk-wrong-master-key").status == 401
    assert api.call("GET", f"/team/info?team_id={team_id}").status == 200  # nothing was changed


# ---------------------------------------------------------------- a key's team and user bind it


def test_a_teams_models_and_block_bind_its_keys(api: ServedGateway) -> None:
    team_id = unique("team")
    ok(api.call("POST", "/team/new", {"team_id": team_id, "models": ["m-openai"]}))
    key = ok(api.call("POST", "/key/generate", {"team_id": team_id}))["key"]
    assert api.call("POST", *chat_request("openai", GROUPS["openai"]), key=key).status == 200
    refused = api.call("POST", *chat_request("openai", GROUPS["gemini"]), key=key)
    assert refused.status == 403
    assert team_id in dialect_error("openai", refused)[1]
    ok(api.call("POST", "/team/update", {"team_id": team_id, "blocked": True}))
    blocked = api.call("POST", *chat_request("anthropic", GROUPS["openai"]), key=key)
    assert blocked.status == 403
    assert "blocked" in dialect_error("anthropic", blocked)[1]


def test_a_teams_budget_refuses_its_keys_once_spent(api: ServedGateway, up: FakeUpstream) -> None:
    team_id = unique("team")
    # one answer of 1,000 + 1,000 tokens on gpt-4o-mini costs more than this budget
    ok(api.call("POST", "/team/new", {"team_id": team_id, "max_budget": 0.0001}))
    key = ok(api.call("POST", "/key/generate", {"team_id": team_id}))["key"]
    up.script(Reply(text="x", usage=(1000, 1000)))
    assert api.call("POST", *chat_request("openai", GROUPS["openai"]), key=key).status == 200
    calls = len(up.requests)
    refused = api.call("POST", *chat_request("openai", GROUPS["openai"]), key=key)
    assert refused.status == 400
    kind, message = dialect_error("openai", refused)
    assert kind == "budget_exceeded" and team_id in message
    assert len(up.requests) == calls  # refused before any upstream call
