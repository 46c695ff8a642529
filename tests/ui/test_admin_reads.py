"""The admin endpoints the dashboard added: /key/regenerate, /spend/budgets, /model_group/info, and the
/spend/logs filters by model and status; over real HTTP, with the openai SDK making the traffic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from gateway_harness import GROUPS, ServedGateway, dialect_error, gateway_config

from llmswitch.testing import FakeUpstream


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    store = str(tmp_path_factory.mktemp("reads") / "store.db")
    with ServedGateway(gateway_config(upstream, store, num_retries=0)) as served:
        yield served


def _chat(gw: ServedGateway, key: str) -> None:
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    try:
        client.chat.completions.create(model=GROUPS["openai"], messages=[{"role": "user", "content": "hi"}])
    finally:
        client.close()


def _until(probe: Any, what: str) -> Any:
    deadline = time.monotonic() + 30
    while not (found := probe()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


def test_regenerate_replaces_the_secret_and_keeps_the_rest(gw: ServedGateway) -> None:
    old = gw.new_key(key_alias="rotating", max_budget=12.5, models=[GROUPS["openai"]], metadata={"owner": "ops"})
    _chat(gw, old)
    r = gw.call("POST", "/key/regenerate", {"key": old})
    assert r.status == 200, r.body
    out = r.json()
    new = out["key"]
    assert new != old and new.startswith("sk-")
    assert (out["key_alias"], out["max_budget"], out["models"], out["metadata"]) == (
        "rotating", 12.5, [GROUPS["openai"]], {"owner": "ops"},
    )  # fmt: skip
    with pytest.raises(openai.AuthenticationError):
        _chat(gw, old)
    _chat(gw, new)
    assert gw.call("GET", f"/key/info?key={old}").status == 404
    assert gw.call("POST", "/key/regenerate", {"key": old}).status == 404
    bad = gw.call("POST", "/key/regenerate", {"key": new, "key_alias": "x"})
    assert bad.status == 400 and dialect_error("openai", bad)[0] == "invalid_request_error"


def test_a_team_admin_regenerates_only_its_teams_keys(gw: ServedGateway) -> None:
    assert (
        gw.call(
            "POST", "/team/new", {"team_id": "blue", "members_with_roles": [{"user_id": "ines", "role": "admin"}]}
        ).status
        == 200
    )
    admin = gw.new_key(team_id="blue", user_id="ines")
    theirs = gw.new_key(team_id="blue", key_alias="blue-bot")
    elsewhere = gw.new_key(key_alias="no-team")
    assert gw.call("POST", "/key/regenerate", {"key": theirs}, key=admin).json()["team_id"] == "blue"
    r = gw.call("POST", "/key/regenerate", {"key": elsewhere}, key=admin)
    assert r.status == 403 and "not of this team" in dialect_error("openai", r)[1]
    _chat(gw, elsewhere)  # untouched


def test_budgets_near_their_limit_are_listed(gw: ServedGateway) -> None:
    near = gw.new_key(key_alias="nearly-spent", max_budget=0.0000001)
    gw.new_key(key_alias="plenty-left", max_budget=1000)
    _chat(gw, near)

    def listed() -> list[dict[str, Any]]:
        r = gw.call("GET", "/spend/budgets?threshold=0.8")
        assert r.status == 200, r.body
        return [row for row in r.json()["data"] if row["name"] == "nearly-spent"]

    row = _until(listed, "the nearly spent key on /spend/budgets")[0]
    assert row["kind"] == "key" and row["used"] >= 0.8 and row["max_budget"] == 0.0000001
    names = {row["name"] for row in gw.call("GET", "/spend/budgets?threshold=0").json()["data"]}
    assert "plenty-left" in names
    assert "plenty-left" not in {row["name"] for row in gw.call("GET", "/spend/budgets").json()["data"]}
    for bad in ("-1", "abc", "11", "nan"):
        r = gw.call("GET", f"/spend/budgets?threshold={bad}")
        assert r.status == 400 and dialect_error("openai", r)[0] == "invalid_request_error", bad


def test_model_groups_are_listed_with_their_fallbacks(gw: ServedGateway) -> None:
    r = gw.call("GET", "/model_group/info")
    assert r.status == 200, r.body
    groups = {g["model_group"]: g for g in r.json()["data"]}
    assert set(GROUPS.values()) <= set(groups)
    assert groups[GROUPS["openai"]]["deployments"] == 1 and groups[GROUPS["openai"]]["providers"] == ["openai"]
    assert groups[GROUPS["openai"]]["fallbacks"] == []
    assert gw.call("GET", "/model_group/info", key=None).status == 401


def test_spend_logs_filter_by_model_and_status(gw: ServedGateway) -> None:
    key = gw.new_key(key_alias="filtered")
    _chat(gw, key)
    rows = _until(lambda: gw.call("GET", f"/spend/logs?api_key={key}").json(), "the request's spend record")
    assert gw.call("GET", f"/spend/logs?api_key={key}&model={GROUPS['openai']}").json() == rows
    assert gw.call("GET", f"/spend/logs?api_key={key}&model={GROUPS['gemini']}").json() == []
    assert gw.call("GET", f"/spend/logs?api_key={key}&status=200").json() == rows
    assert gw.call("GET", f"/spend/logs?api_key={key}&status=429").json() == []
    assert gw.call("GET", "/spend/logs?status=abc").status == 400


def test_top_spenders_come_from_the_keys_spend(gw: ServedGateway) -> None:
    big = gw.new_key(key_alias="big-spender")
    for _ in range(3):
        _chat(gw, big)

    def first() -> dict[str, Any] | None:
        r = gw.call("GET", "/spend/top?group_by=key&limit=1")
        assert r.status == 200, r.body
        rows = r.json()["data"]
        return rows[0] if rows and rows[0]["name"] == "big-spender" else None

    row = _until(first, "the key with the most spend first")
    assert row["spend"] > 0 and row["kind"] == "key"
    assert gw.call("GET", "/spend/top?group_by=team").json()["group_by"] == "team"
    assert gw.call("GET", "/spend/top?group_by=model").status == 400


def test_team_list_can_count_keys_instead_of_listing_them(gw: ServedGateway) -> None:
    assert gw.call("POST", "/team/new", {"team_id": "counted"}).status == 200
    for _ in range(3):
        gw.new_key(team_id="counted")
    teams = {t["team_id"]: t for t in gw.call("GET", "/team/list?include_keys=false").json()}
    assert teams["counted"]["key_count"] == 3 and "keys" not in teams["counted"]
    full = {t["team_id"]: t for t in gw.call("GET", "/team/list").json()}
    assert len(full["counted"]["keys"]) == 3


def test_daily_spend_with_max_age_matches_the_store(gw: ServedGateway) -> None:
    key = gw.new_key(key_alias="daily")
    _chat(gw, key)
    _until(lambda: gw.call("GET", f"/spend/logs?api_key={key}").json(), "the record")
    fresh = gw.call("GET", "/spend/daily?group_by=key&start_date=2020-01-01").json()
    assert gw.call("GET", "/spend/daily?group_by=key&start_date=2020-01-01&max_age=60").json() == fresh
    assert gw.call("GET", "/spend/daily?max_age=abc").status == 400


def test_key_list_searches_every_key(gw: ServedGateway) -> None:
    for n in range(3):
        gw.new_key(key_alias=f"Searchable-Bot-{n}", user_id="searcher")
    gw.new_key(key_alias="unrelated")
    r = gw.call("GET", "/key/list?search=searchable-bot&return_full_object=true&size=2&page=2")
    assert r.status == 200, r.body
    out = r.json()
    assert (out["total_count"], out["total_pages"], out["current_page"]) == (3, 2, 2)
    assert [k["key_alias"] for k in out["keys"]] == ["Searchable-Bot-2"]
    by_user = gw.call("GET", "/key/list?search=SEARCHER&size=100").json()
    assert by_user["total_count"] == 3 and all(len(k) == 64 for k in by_user["keys"])
    assert gw.call("GET", "/key/list?search=no-such-thing").json()["total_count"] == 0


def test_a_team_admins_search_stays_in_its_team(gw: ServedGateway) -> None:
    assert (
        gw.call(
            "POST", "/team/new", {"team_id": "green", "members_with_roles": [{"user_id": "gil", "role": "admin"}]}
        ).status
        == 200
    )
    admin = gw.new_key(team_id="green", user_id="gil")
    gw.new_key(team_id="green", key_alias="green-findme")
    gw.new_key(key_alias="elsewhere-findme")
    found = gw.call("GET", "/key/list?search=findme&return_full_object=true", key=admin).json()["keys"]
    assert [k["key_alias"] for k in found] == ["green-findme"]
