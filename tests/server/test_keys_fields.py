"""The fields of LiteLLM's key, user and team API: the ones this gateway does not act on are refused by name,
before anything is written (never a 200 that silently drops a per-model limit), and the ones it takes do
what LiteLLM documents: aliases, tags on spend records, soft budgets, per-model rpm/tpm/budgets,
parallel requests. Through a real gateway over loopback with the official openai SDK as the client, on the
embedded SQLite store and on PostgreSQL (and Redis for shared limits)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from gateway_harness import GROUPS, UPSTREAM_MODELS, ServedGateway, chat_request, dialect_error, gateway_config
from multi_harness import key_info, poll, price, priced_config, wait_logged

from llmswitch import ir
from llmswitch.testing import FakeUpstream, Reply

# LiteLLM's fields that this gateway does not implement (yet), each with a value LiteLLM documents
UNSUPPORTED: dict[str, Any] = {
    "permissions": {"pii_masking": True},
    "temp_budget_increase": 1,
    "budget_id": "tier-1",
}
# the same fields on users and teams where LiteLLM has them, and a typo
SUBJECT_UNSUPPORTED: dict[str, Any] = {
    "model_max_budget": {"m-openai": {"budget_limit": "0.0000001", "time_period": "1d"}},
    "model_rpm_limit": {"m-openai": 1},
    "model_tpm_limit": {"m-openai": 1},
    "soft_budget": 0.0000001,
    "tags": ["team-a"],
    "rpm_limt": 1,
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gw(
    request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedGateway]:
    if request.param == "sqlite":
        store = str(tmp_path_factory.mktemp("keyfields") / "keys.db")
    else:
        store = request.getfixturevalue("postgres_url")
    with ServedGateway(gateway_config(upstream, store, num_retries=0)) as served:
        yield served


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def refused(r: Any, *fields: str) -> None:
    """``r`` is an OpenAI-format 400 that names every one of ``fields``."""
    assert r.status == 400, r.body
    kind, message = dialect_error("openai", r)
    assert kind == "invalid_request_error", r.body
    assert message.startswith("unsupported field(s): "), message
    assert message.removeprefix("unsupported field(s): ").split(", ") == list(fields), message
    assert r.json()["error"]["param"] == ", ".join(fields), r.body


def keys_with_alias(gw: ServedGateway, alias: str) -> list[dict[str, Any]]:
    r = gw.call("GET", "/key/list?return_full_object=true&size=1000")
    assert r.status == 200, r.body
    return [k for k in r.json()["keys"] if k["key_alias"] == alias]


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize("field", sorted(UNSUPPORTED))
def test_key_generate_refuses_an_unsupported_field_and_makes_no_key(gw: ServedGateway, field: str) -> None:
    alias = unique(f"refused-{field}")
    r = gw.call("POST", "/key/generate", {"key_alias": alias, "models": ["m-openai"], field: UNSUPPORTED[field]})
    refused(r, field)
    assert keys_with_alias(gw, alias) == []


@pytest.mark.parametrize("field", sorted(UNSUPPORTED))
def test_key_update_refuses_an_unsupported_field_and_changes_nothing(gw: ServedGateway, field: str) -> None:
    alias = unique(f"kept-{field}")
    key = gw.new_key(key_alias=alias, max_budget=5)
    r = gw.call("POST", "/key/update", {"key": key, "max_budget": 1, field: UNSUPPORTED[field]})
    refused(r, field)
    [info] = keys_with_alias(gw, alias)
    assert info["max_budget"] == 5  # the valid field beside it was not written either


def test_every_unsupported_field_is_named_in_the_order_sent(gw: ServedGateway) -> None:
    r = gw.call("POST", "/key/generate", {"key_alias": unique("many"), **UNSUPPORTED, "max_budgt": 1})
    refused(r, *UNSUPPORTED, "max_budgt")


def test_the_supported_key_fields_are_still_taken(gw: ServedGateway) -> None:
    fields = {
        "models": ["m-openai"],
        "max_budget": 1,
        "budget_duration": "1d",
        "rpm_limit": 5,
        "tpm_limit": 500,
        "max_parallel_requests": 2,
        "user_id": unique("u"),
        "team_id": unique("t"),
        "key_alias": unique("all"),
        "metadata": {"a": 1},
        "blocked": False,
        "spend": 0.5,
        "aliases": {"small": "m-openai"},
        "tags": ["a", "b"],
        "soft_budget": 0.5,
        "model_rpm_limit": {"m-openai": 5},
        "model_tpm_limit": {"m-openai": 500},
        "model_max_budget": {"m-openai": {"budget_limit": "0.25", "time_period": "30d"}},
        "duration": "1h",
        "key": f"sk-{uuid.uuid4().hex}",
    }
    r = gw.call("POST", "/key/generate", fields)
    assert r.status == 200, r.body
    update = {k: v for k, v in fields.items() if k != "key_alias"} | {"key": fields["key"]}
    r = gw.call("POST", "/key/update", update)
    assert r.status == 200, r.body


# ---------------------------------------------------------------- users and teams


@pytest.mark.parametrize("kind", ["user", "team"])
@pytest.mark.parametrize("field", sorted(SUBJECT_UNSUPPORTED))
def test_new_refuses_an_unsupported_field_and_makes_nothing(gw: ServedGateway, kind: str, field: str) -> None:
    sid = unique(kind)
    r = gw.call("POST", f"/{kind}/new", {f"{kind}_id": sid, "max_budget": 3, field: SUBJECT_UNSUPPORTED[field]})
    refused(r, field)
    r = gw.call("GET", f"/{kind}/info?{kind}_id={sid}")
    assert r.status == 404, r.body


@pytest.mark.parametrize("kind", ["user", "team"])
@pytest.mark.parametrize("field", sorted(SUBJECT_UNSUPPORTED))
def test_update_refuses_an_unsupported_field_and_changes_nothing(gw: ServedGateway, kind: str, field: str) -> None:
    sid = unique(kind)
    assert gw.call("POST", f"/{kind}/new", {f"{kind}_id": sid, "max_budget": 3}).status == 200
    r = gw.call("POST", f"/{kind}/update", {f"{kind}_id": sid, "max_budget": 1, field: SUBJECT_UNSUPPORTED[field]})
    refused(r, field)
    r = gw.call("GET", f"/{kind}/info?{kind}_id={sid}")
    assert r.status == 200, r.body
    assert r.json()[f"{kind}_info"]["max_budget"] == 3


def test_user_new_takes_its_keys_fields_but_user_update_does_not(gw: ServedGateway) -> None:
    sid = unique("user")
    r = gw.call("POST", "/user/new", {"user_id": sid, "key_alias": unique("first"), "duration": "1h"})
    assert r.status == 200, r.body
    refused(
        gw.call("POST", "/user/update", {"user_id": sid, "key_alias": "x", "auto_create_key": False}),
        "key_alias",
        "auto_create_key",
    )
    refused(gw.call("POST", "/team/new", {"team_alias": "t", "user_alias": "u"}), "user_alias")
    r = gw.call("POST", "/team/new", {"team_alias": unique("t"), "auto_create_key": True})
    assert r.status == 400 and r.json()["error"]["param"] == "auto_create_key", r.body


# ---------------------------------------------------------------- aliases


def sdk(gw: ServedGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)


def ask(gw: ServedGateway, key: str, model: str) -> str:
    with sdk(gw, key) as client:
        out = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return out.choices[0].message.content or ""


def test_a_keys_alias_serves_the_model_it_names(gw: ServedGateway, up: FakeUpstream) -> None:
    # LiteLLM's example: the key may use one group, and a client's usual model name leads to it
    key = gw.new_key(models=["m-openai"], aliases={"gpt-3.5-turbo": "m-openai"}, key_alias=unique("alias"))
    ask(gw, key, "gpt-3.5-turbo")  # the fast path: the client's own body, relayed
    [sent] = up.requests
    assert sent.model == UPSTREAM_MODELS["openai"]
    info = gw.call("GET", f"/key/info?key={key}").json()["info"]
    assert info["aliases"] == {"gpt-3.5-turbo": "m-openai"}
    # an Anthropic client through the full path gets the same
    path, body = chat_request("anthropic", "gpt-3.5-turbo")
    r = gw.call("POST", path, body, key=key)
    assert r.status == 200, r.body
    assert up.requests[-1].model == UPSTREAM_MODELS["openai"]


def test_an_alias_cannot_reach_a_model_the_key_may_not_use(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(models=["m-openai"], aliases={"cheap": GROUPS["gemini"]}, key_alias=unique("escape"))
    with pytest.raises(openai.APIStatusError) as refused_call:
        ask(gw, key, "cheap")
    assert refused_call.value.status_code in (401, 403)
    assert GROUPS["gemini"] in str(refused_call.value)
    assert up.requests == []


def test_key_update_changes_aliases_at_once(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(aliases={"house": GROUPS["openai"]}, key_alias=unique("swap"))
    ask(gw, key, "house")
    r = gw.call("POST", "/key/update", {"key": key, "aliases": {"house": GROUPS["gemini"]}})
    assert r.status == 200 and r.json()["aliases"] == {"house": GROUPS["gemini"]}, r.body
    ask(gw, key, "house")  # no refresh waited for
    assert [q.model for q in up.requests] == [UPSTREAM_MODELS["openai"], UPSTREAM_MODELS["gemini"]]
    r = gw.call("POST", "/key/update", {"key": key, "aliases": None})
    assert r.status == 200 and r.json()["aliases"] == {}, r.body
    with pytest.raises(openai.NotFoundError):  # no group is called "house"
        ask(gw, key, "house")


@pytest.mark.parametrize("bad", [["m-openai"], {"a": 1}, {"a": ""}, {"a\x00": "m-openai"}, "m-openai"])
def test_a_bad_aliases_value_is_400_naming_it(gw: ServedGateway, bad: Any) -> None:
    r = gw.call("POST", "/key/generate", {"aliases": bad})
    assert r.status == 400, r.body
    assert r.json()["error"]["param"] == "aliases", r.body


# ---------------------------------------------------------------- tags


def test_a_keys_tags_are_on_each_of_its_spend_records(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(tags=["team-a", "prod", "team-a"], key_alias=unique("tags"))
    info = gw.call("GET", f"/key/info?key={key}").json()["info"]
    assert info["tags"] == ["team-a", "prod"]  # once each, in order
    ask(gw, key, GROUPS["openai"])  # the fast path
    path, body = chat_request("anthropic", GROUPS["anthropic"], stream=True)
    assert gw.call("POST", path, body, key=key).status == 200  # a stream, through the full path
    rows = wait_logged(gw.port, key, 2)
    assert [r["request_tags"] for r in rows] == [["team-a", "prod"]] * 2
    r = gw.call("POST", "/key/update", {"key": key, "tags": ["other"]})
    assert r.status == 200 and r.json()["tags"] == ["other"], r.body
    ask(gw, key, GROUPS["openai"])
    rows = wait_logged(gw.port, key, 3)
    assert sorted(map(tuple, (r["request_tags"] for r in rows))) == [("other",), ("team-a", "prod"), ("team-a", "prod")]
    # a key without tags: none on its records
    plain = gw.new_key(key_alias=unique("untagged"))
    ask(gw, plain, GROUPS["openai"])
    assert wait_logged(gw.port, plain, 1)[0]["request_tags"] == []


@pytest.mark.parametrize("bad", ["prod", [1], [""], ["a\x00"], ["x" * 257], ["t"] * 65, {"a": "b"}])
def test_a_bad_tags_value_is_400_naming_it(gw: ServedGateway, bad: Any) -> None:
    r = gw.call("POST", "/key/generate", {"tags": bad})
    assert r.status == 400, r.body
    assert r.json()["error"]["param"] == "tags", r.body


# ---------------------------------------------------------------- soft_budget

# gpt-4o-mini at $0.15 / $0.60 per million tokens: 1,000 in and 250 out cost $0.0003
USAGE = ir.Usage(input_tokens=1000, output_tokens=250)


def test_passing_a_soft_budget_warns_once_and_never_refuses(
    gw: ServedGateway, up: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    up.responder = lambda request: Reply(usage=USAGE)
    alias = unique("soft")
    key = gw.new_key(soft_budget=0.0005, max_budget=1, key_alias=alias)
    info = key_info(gw.port, key)
    assert (info["soft_budget"], info["soft_budget_exceeded"]) == (0.0005, False)
    caplog.set_level(logging.WARNING, logger="llmswitch.budgets")
    ask(gw, key, GROUPS["openai"])
    wait_logged(gw.port, key, 1)
    assert key_info(gw.port, key)["soft_budget_exceeded"] is False  # $0.0003
    # the key cache (which logs) has seen the first request's spend: the second one crosses
    poll(lambda: gw.gateway.keys.authenticate(key).record.spend > 0, timeout=3, what="the first spend")
    ask(gw, key, GROUPS["openai"])
    wait_logged(gw.port, key, 2)
    info = key_info(gw.port, key)
    assert info["spend"] == 0.0006 and info["soft_budget_exceeded"] is True, info

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "llmswitch.budgets" and alias in r.getMessage()]

    [line] = poll(warned, timeout=3, what="the soft budget warning")
    assert "passed its soft budget" in line and "0.0005" in line and key not in line
    ask(gw, key, GROUPS["openai"])  # a soft budget never refuses
    wait_logged(gw.port, key, 3)
    # the key cache (which logs) has seen the third request's spend
    poll(lambda: gw.gateway.keys.authenticate(key).record.spend > 0.0008, timeout=3, what="the third spend")
    assert len(warned()) == 1  # once per crossing, not once per request past it
    # raised above the spend: no longer exceeded
    r = gw.call("POST", "/key/update", {"key": key, "soft_budget": 1})
    assert r.status == 200 and r.json()["soft_budget_exceeded"] is False, r.body


@pytest.mark.parametrize("bad", [-1, "1", True, [1]])
def test_a_bad_soft_budget_is_400_naming_it(gw: ServedGateway, bad: Any) -> None:
    r = gw.call("POST", "/key/generate", {"soft_budget": bad})
    assert r.status == 400, r.body
    assert r.json()["error"]["param"] == "soft_budget", r.body


# ---------------------------------------------------------------- per-model limits


def ask_small(gw: ServedGateway, key: str, model: str) -> None:
    with sdk(gw, key) as client:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=8)


def test_model_rpm_limit_holds_on_its_model_only(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(rpm_limit=100, model_rpm_limit={GROUPS["openai"]: 1}, key_alias=unique("mrpm"))
    ask(gw, key, GROUPS["openai"])
    with pytest.raises(openai.RateLimitError) as refused_call:
        ask(gw, key, GROUPS["openai"])
    assert "rpm_limit" in str(refused_call.value) and f"on model '{GROUPS['openai']}'" in str(refused_call.value)
    assert refused_call.value.response.headers.get("retry-after")
    ask(gw, key, GROUPS["gemini"])  # another model: the key's own limit of 100 still has room
    ask(gw, key, GROUPS["gemini"])
    assert len(up.requests) == 3


def test_model_tpm_limit_holds_on_its_model_only(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(model_tpm_limit={GROUPS["openai"]: 1}, key_alias=unique("mtpm"))
    with pytest.raises(openai.RateLimitError) as refused_call:
        ask(gw, key, GROUPS["openai"])  # the prompt alone is more than one token
    assert "tpm_limit" in str(refused_call.value)
    ask(gw, key, GROUPS["gemini"])
    r = gw.call("POST", "/key/update", {"key": key, "model_tpm_limit": {GROUPS["openai"]: 100_000}})
    assert r.status == 200 and r.json()["model_tpm_limit"] == {GROUPS["openai"]: 100_000}, r.body
    ask(gw, key, GROUPS["openai"])  # raised, at once
    assert [q.model for q in up.requests] == [UPSTREAM_MODELS["gemini"], UPSTREAM_MODELS["openai"]]


def test_model_max_budget_refuses_that_model_once_spent_even_after_a_restart(
    gw: ServedGateway, up: FakeUpstream
) -> None:
    up.responder = lambda request: Reply(usage=USAGE)  # $0.0003 on m-openai
    budget = {GROUPS["openai"]: {"budget_limit": "0.0005", "time_period": "1d"}}
    key = gw.new_key(max_budget=1, model_max_budget=budget, key_alias=unique("mbudget"))
    info = key_info(gw.port, key)
    assert info["model_max_budget"] == {GROUPS["openai"]: {"budget_limit": 0.0005, "time_period": "1d"}}
    ask_small(gw, key, GROUPS["openai"])
    ask_small(gw, key, GROUPS["openai"])  # $0.0003 spent of $0.0005: admitted, ends past it
    with pytest.raises(openai.BadRequestError) as refused_call:
        ask_small(gw, key, GROUPS["openai"])
    assert "Budget has been exceeded" in str(refused_call.value), refused_call.value
    assert f"on model '{GROUPS['openai']}'" in str(refused_call.value)
    ask_small(gw, key, GROUPS["gemini"])  # the key's own budget has room
    assert len(up.requests) == 3
    wait_logged(gw.port, key, 3)
    # a second gateway on the same store (a restart, another instance) learns that model's spend from
    # the spend records and refuses too
    with ServedGateway(gw.config) as other:
        with pytest.raises(openai.BadRequestError):
            ask_small(other, key, GROUPS["openai"])
        ask_small(other, key, GROUPS["gemini"])
    assert len(up.requests) == 4


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("model_rpm_limit", [1]),
        ("model_rpm_limit", {"m-openai": -1}),
        ("model_rpm_limit", {"m-openai": "5"}),
        ("model_tpm_limit", {"": 5}),
        ("model_tpm_limit", {"m-openai": 1.5}),
        ("model_max_budget", {"m-openai": 1}),
        ("model_max_budget", {"m-openai": {"budget_limit": -1}}),
        ("model_max_budget", {"m-openai": {"budget_limit": "lots"}}),
        ("model_max_budget", {"m-openai": {"budget_limit": 1, "time_period": "soon"}}),
        ("model_max_budget", {"m-openai": {"budget_limit": 1, "time_period": "0d"}}),
        ("model_max_budget", {"m-openai": {"budget_limit": 1, "time_period": 5}}),
        ("model_max_budget", {"m-openai": {"budget_limit": "nan"}}),
        ("model_max_budget", {"m-openai": {"budget_limit": 1, "period": "1d"}}),
    ],
)
def test_a_bad_per_model_value_is_400_naming_it(gw: ServedGateway, field: str, bad: Any) -> None:
    r = gw.call("POST", "/key/generate", {field: bad})
    assert r.status == 400, r.body
    assert r.json()["error"]["param"] == field, r.body


def test_per_model_limits_hold_with_redis_shared_limits(
    upstream: FakeUpstream, up: FakeUpstream, postgres_url: str
) -> None:
    half_cent = ir.Usage(input_tokens=1000, output_tokens=250)
    assert price("m-openai", half_cent) == 0.005
    up.responder = lambda request: Reply(usage=half_cent)
    with ServedGateway(priced_config(upstream, postgres_url, redis=True)) as redis_gw:
        limiter = redis_gw.gateway.accounting.limiter
        assert limiter is not None and limiter.name == "fallback"  # Redis, as deployments run it
        budget = {"m-openai": {"budget_limit": 0.01, "time_period": "1d"}}
        key = redis_gw.new_key(model_max_budget=budget, model_rpm_limit={"m-anthropic": 1}, key_alias=unique("redis"))
        ask_small(redis_gw, key, "m-openai")
        ask_small(redis_gw, key, "m-openai")
        with pytest.raises(openai.BadRequestError):  # exactly two of $0.005 in $0.01
            ask_small(redis_gw, key, "m-openai")
        ask_small(redis_gw, key, "m-anthropic")
        with pytest.raises(openai.RateLimitError):
            ask_small(redis_gw, key, "m-anthropic")
        ask_small(redis_gw, key, "m-gemini")
    assert len(up.requests) == 4


# ---------------------------------------------------------------- max_parallel_requests (already enforced)


def test_max_parallel_requests_refuses_a_second_request_in_flight(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(max_parallel_requests=1, key_alias=unique("parallel"))
    assert key_info(gw.port, key)["max_parallel_requests"] == 1
    up.responder = lambda request: Reply(latency=1.0)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(ask, gw, key, GROUPS["openai"])
        poll(lambda: up.requests, timeout=5, what="the first request upstream")
        with pytest.raises(openai.RateLimitError) as refused_call:
            ask(gw, key, GROUPS["gemini"])
        assert "max_parallel_requests" in str(refused_call.value)
        slow.result(timeout=10)
    up.responder = None
    ask(gw, key, GROUPS["gemini"])  # the slot is back
    assert len(up.requests) == 2
