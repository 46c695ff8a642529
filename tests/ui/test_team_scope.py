"""A team admin's key at the admin API (team_scope.py), over real HTTP on SQLite and PostgreSQL: it reads and
manages its own team's spend, keys and members, and every other team's is refused with a 403 saying why."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from gateway_harness import GROUPS, ServedGateway, dialect_error, gateway_config

from llmswitch.testing import FakeUpstream


@dataclass
class Teams:
    gw: ServedGateway
    admin_key: str  # ana: admin of team-a, her key of team-a
    member_key: str  # bob: a plain member of team-a
    other_key: str  # carl: admin of team-b, his key of team-b


def _ok(r: Any) -> Any:
    assert r.status == 200, r.body
    return r.json()


def _spend_rows(gw: ServedGateway, team_id: str, want: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        rows: list[dict[str, Any]] = _ok(gw.call("GET", f"/spend/logs?team_id={team_id}"))
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def teams(
    request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Teams]:
    store = (
        str(tmp_path_factory.mktemp("scope") / "store.db")
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    with ServedGateway(gateway_config(upstream, store, num_retries=0)) as gw:
        for user in ("ana", "bob", "carl"):
            _ok(gw.call("POST", "/user/new", {"user_id": user, "auto_create_key": False}))
        members = [{"user_id": "ana", "role": "admin"}, {"user_id": "bob", "role": "user"}]
        _ok(gw.call("POST", "/team/new", {"team_id": "team-a", "members_with_roles": members}))
        _ok(
            gw.call(
                "POST", "/team/new", {"team_id": "team-b", "members_with_roles": [{"user_id": "carl", "role": "admin"}]}
            )
        )
        t = Teams(
            gw,
            gw.new_key(team_id="team-a", user_id="ana", key_alias="ana-a"),
            gw.new_key(team_id="team-a", user_id="bob", key_alias="bob-a"),
            gw.new_key(team_id="team-b", user_id="carl", key_alias="carl-b"),
        )
        for key in (t.member_key, t.other_key, t.other_key):
            client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
            client.chat.completions.create(model=GROUPS["openai"], messages=[{"role": "user", "content": "hi"}])
            client.close()
        assert len(_spend_rows(gw, "team-a", 1)) == 1
        assert len(_spend_rows(gw, "team-b", 2)) == 2
        yield t


def _refused(r: Any, *words: str) -> str:
    assert r.status == 403, (r.status, r.body)
    kind, message = dialect_error("openai", r)
    assert kind == "permission_error"
    for word in words:
        assert word in message, message
    return message


def test_a_team_admin_reads_its_own_teams_spend_logs(teams: Teams) -> None:
    rows = _ok(teams.gw.call("GET", "/spend/logs?team_id=team-a", key=teams.admin_key))
    assert len(rows) == 1 and rows[0]["team_id"] == "team-a" and rows[0]["key_alias"] == "bob-a"
    # without a team named, the same rows: never every team's
    assert _ok(teams.gw.call("GET", "/spend/logs", key=teams.admin_key)) == rows


def test_a_team_admin_is_refused_another_teams_spend(teams: Teams) -> None:
    _refused(teams.gw.call("GET", "/spend/logs?team_id=team-b", key=teams.admin_key), "team-a", "team-b")
    _refused(teams.gw.call("GET", "/spend/daily?team_id=team-b", key=teams.admin_key), "team-b")
    # a filter by another team's key or user still only reaches this team's rows
    other = _ok(teams.gw.call("GET", f"/key/info?key={teams.other_key}"))["key"]
    assert _ok(teams.gw.call("GET", f"/spend/logs?api_key={other}", key=teams.admin_key)) == []
    assert _ok(teams.gw.call("GET", "/spend/logs?user_id=carl", key=teams.admin_key)) == []


def test_daily_spend_of_a_team_admin_counts_its_team_only(teams: Teams) -> None:
    days = _ok(teams.gw.call("GET", "/spend/daily?group_by=team", key=teams.admin_key))["days"]
    assert [(d["team"], d["requests"]) for d in days] == [("team-a", 1)]
    everyone = _ok(teams.gw.call("GET", "/spend/daily?group_by=team"))["days"]
    assert sorted((d["team"], d["requests"]) for d in everyone) == [("team-a", 1), ("team-b", 2)]


def test_a_plain_member_is_no_admin(teams: Teams) -> None:
    for path in ("/spend/logs?team_id=team-a", "/key/list", "/team/info?team_id=team-a"):
        _refused(teams.gw.call("GET", path, key=teams.member_key), "master key", "team admin")


def test_a_team_admin_lists_and_reads_only_its_teams_keys(teams: Teams) -> None:
    listed = _ok(teams.gw.call("GET", "/key/list?return_full_object=true&size=100", key=teams.admin_key))
    assert {k["key_alias"] for k in listed["keys"]} >= {"ana-a", "bob-a"}
    assert {k["team_id"] for k in listed["keys"]} == {"team-a"}
    _refused(teams.gw.call("GET", "/key/list?team_id=team-b", key=teams.admin_key), "team-b")
    assert (
        _ok(teams.gw.call("GET", f"/key/info?key={teams.member_key}", key=teams.admin_key))["info"]["user_id"] == "bob"
    )
    _refused(teams.gw.call("GET", f"/key/info?key={teams.other_key}", key=teams.admin_key), "not of this team")


def test_a_team_admin_changes_only_its_teams_keys(teams: Teams) -> None:
    gw, key = teams.gw, teams.admin_key
    _refused(gw.call("POST", "/key/update", {"key": teams.other_key, "blocked": True}, key=key), "not of this team")
    _refused(gw.call("POST", "/key/delete", {"keys": [teams.other_key]}, key=key), "not of this team")
    assert _ok(gw.call("GET", f"/key/info?key={teams.other_key}"))["info"]["blocked"] is False
    _refused(gw.call("POST", "/key/generate", {"team_id": "team-b"}, key=key), "team-b")
    _refused(gw.call("POST", "/key/generate", {"user_id": "carl"}, key=key), "carl", "not a member")
    _refused(gw.call("POST", "/key/update", {"key": teams.member_key, "spend": 0}, key=key), "spend")
    made = _ok(gw.call("POST", "/key/generate", {"key_alias": "made-by-ana", "user_id": "bob"}, key=key))
    assert made["team_id"] == "team-a" and made["key"].startswith("sk-")
    # moving a key of its team to another team is refused too
    _refused(gw.call("POST", "/key/update", {"key": made["key"], "team_id": "team-b"}, key=key), "team-b")
    assert _ok(gw.call("POST", "/key/update", {"key": made["key"], "blocked": True}, key=key))["blocked"] is True
    assert _ok(gw.call("POST", "/key/delete", {"key_aliases": ["made-by-ana", "carl-b"]}, key=key))["deleted_keys"]
    assert gw.call("GET", f"/key/info?key={made['key']}").status == 404
    assert gw.call("GET", f"/key/info?key={teams.other_key}").status == 200  # carl-b is not ana's to delete


def test_a_team_admin_reads_its_team_and_members_only(teams: Teams) -> None:
    gw, key = teams.gw, teams.admin_key
    info = _ok(gw.call("GET", "/team/info?team_id=team-a", key=key))
    assert info["team_info"]["members_with_roles"][0] == {"user_id": "ana", "role": "admin"}
    _refused(gw.call("GET", "/team/info?team_id=team-b", key=key), "team-b")
    assert [t["team_id"] for t in _ok(gw.call("GET", "/team/list", key=key))] == ["team-a"]
    assert _ok(gw.call("GET", "/user/info?user_id=bob", key=key))["user_id"] == "bob"
    _refused(gw.call("GET", "/user/info?user_id=carl", key=key), "carl")
    users = _ok(gw.call("GET", "/user/list", key=key))["users"]
    assert sorted(u["user_id"] for u in users) == ["ana", "bob"]
    for method, path, body in (
        ("POST", "/team/new", {"team_alias": "mine"}),
        ("POST", "/team/update", {"team_id": "team-a", "max_budget": 1e9}),
        ("POST", "/team/delete", {"team_ids": ["team-b"]}),
        ("POST", "/user/new", {"user_id": "eve"}),
        ("POST", "/user/update", {"user_id": "carl", "blocked": True}),
    ):
        _refused(gw.call(method, path, body, key=key), "master key")


def test_a_demoted_admin_loses_the_scope_at_once(teams: Teams) -> None:
    gw = teams.gw
    key = gw.new_key(team_id="team-b", user_id="carl")
    assert gw.call("GET", "/spend/logs", key=key).status == 200
    _ok(gw.call("POST", "/team/update", {"team_id": "team-b", "members_with_roles": [{"user_id": "carl"}]}))
    _refused(gw.call("GET", "/spend/logs", key=key), "master key")
    _ok(
        gw.call(
            "POST", "/team/update", {"team_id": "team-b", "members_with_roles": [{"user_id": "carl", "role": "admin"}]}
        )
    )


def test_members_with_roles_are_checked(teams: Teams) -> None:
    for members in ([{"user_id": "x", "role": "owner"}], [{"role": "admin"}], "ana", [{"user_id": "x", "extra": 1}]):
        r = teams.gw.call("POST", "/team/new", {"members_with_roles": members})
        assert r.status == 400, r.body
        assert dialect_error("openai", r)[0] == "invalid_request_error"
