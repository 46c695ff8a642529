"""The response cache through the gateway: official SDKs as clients, hits whole and streamed in every dialect,
per-request controls, tenants kept apart, hits in spend logs and limits, the admin routes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cache_harness import ask, cache_config, stored
from gateway_harness import MASTER_KEY, ServedGateway, chat_request, dialect_error
from multi_harness import wait_logged

from llmswitch.testing import FakeUpstream, Reply

USAGE = (23, 9)


@pytest.fixture(scope="module")
def cgw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    db = tmp_path_factory.mktemp("cache") / "keys.db"
    with ServedGateway(cache_config(upstream, str(db), shared_namespaces=["public"])) as served:
        yield served


def prompt() -> str:
    return f"tell me about {uuid.uuid4().hex}"


@pytest.mark.parametrize("client", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(("first", "second"), [(False, False), (False, True), (True, True), (True, False)])
def test_a_repeated_question_is_answered_from_the_cache_in_the_clients_dialect(
    cgw: ServedGateway, up: FakeUpstream, client: str, provider: str, first: bool, second: bool
) -> None:
    key = cgw.new_key()
    text = f"Cached answer — ünïcödé ✓ {uuid.uuid4().hex[:6]}"
    up.script(Reply(text=text, usage=USAGE, chunk_size=4))
    q = prompt()
    miss = ask(cgw, client, key, f"m-{provider}", q, stream=first)
    stored(cgw)
    hit = ask(cgw, client, key, f"m-{provider}", q, stream=second)
    assert miss == (text, USAGE)
    assert hit == miss
    assert len(up.requests) == 1


def test_the_three_dialects_share_one_entry_and_headers_name_it(cgw: ServedGateway, up: FakeUpstream) -> None:
    key = cgw.new_key()
    q = prompt()
    path, body = chat_request("openai", "m-openai", q)
    body["max_tokens"] = 64
    first = cgw.call("POST", path, body, key=key)
    assert first.status == 200
    assert first.headers["x-llmswitch-cache"] == "miss"
    entry = first.headers["x-llmswitch-cache-key"]
    assert first.headers["x-litellm-cache-key"] == entry and len(entry) == 64
    stored(cgw)
    for face in ("anthropic", "gemini"):
        for stream in (False, True):
            path, body = chat_request(face, "m-openai", q, stream=stream)
            if face == "gemini":
                body["generationConfig"] = {"maxOutputTokens": 64}
            r = cgw.call("POST", path, body, key=key)
            assert r.status == 200, r.body
            assert r.headers["x-llmswitch-cache"] == "hit"
            assert r.headers["x-llmswitch-cache-key"] == entry
            assert q.encode() in r.body  # the fake echoes the prompt
    # Gemini's stream without alt=sse: one JSON array, arriving in pieces
    gemini_body = {"contents": [{"role": "user", "parts": [{"text": q}]}], "generationConfig": {"maxOutputTokens": 64}}
    r = cgw.call("POST", "/v1beta/models/m-openai:streamGenerateContent", gemini_body, key=key)
    assert r.headers["x-llmswitch-cache"] == "hit" and r.headers["content-type"].startswith("application/json")
    chunks = json.loads(r.body)
    parts = [p for c in chunks for cand in c.get("candidates", []) for p in cand.get("content", {}).get("parts", [])]
    assert q in "".join(p.get("text", "") for p in parts)
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] > 0
    assert len(up.requests) == 1


def test_no_cross_tenant_hit(cgw: ServedGateway, up: FakeUpstream) -> None:
    q = prompt()
    path, body = chat_request("openai", "m-openai", q)
    team_a1, team_a2 = cgw.new_key(team_id="team-a"), cgw.new_key(team_id="team-a")
    team_b, solo1, solo2 = cgw.new_key(team_id="team-b"), cgw.new_key(), cgw.new_key()
    assert cgw.call("POST", path, body, key=team_a1).headers["x-llmswitch-cache"] == "miss"
    stored(cgw)
    assert cgw.call("POST", path, body, key=team_a2).headers["x-llmswitch-cache"] == "hit"  # same team
    for other in (team_b, solo1, MASTER_KEY):
        assert cgw.call("POST", path, body, key=other).headers["x-llmswitch-cache"] == "miss"
    stored(cgw)
    assert cgw.call("POST", path, body, key=solo2).headers["x-llmswitch-cache"] == "miss"
    assert len(up.requests) == 5


def test_a_shared_namespace_crosses_tenants_and_a_private_one_does_not(cgw: ServedGateway, up: FakeUpstream) -> None:
    q = prompt()
    k1, k2 = cgw.new_key(), cgw.new_key()
    for ns, second in (("public", "hit"), ("mine", "miss")):
        path, body = chat_request("openai", "m-openai", q)
        body["cache"] = {"namespace": ns}
        assert cgw.call("POST", path, body, key=k1).headers["x-llmswitch-cache"] == "miss"
        stored(cgw)
        assert cgw.call("POST", path, body, key=k2).headers["x-llmswitch-cache"] == second
    # the "cache" object is the gateway's: never sent upstream
    assert all("cache" not in r.json for r in up.requests)


def test_per_request_controls(cgw: ServedGateway, up: FakeUpstream) -> None:
    key = cgw.new_key()
    path, body = chat_request("openai", "m-openai", prompt())

    def status(**controls: Any) -> str:
        b = dict(body, cache=controls) if controls else body
        r = cgw.call("POST", path, b, key=key)
        assert r.status == 200, r.body
        stored(cgw)
        return r.headers["x-llmswitch-cache"]

    assert status(**{"no-store": True}) == "miss"
    assert status() == "miss"  # the no-store answer was not kept; this one is
    assert status() == "hit"
    assert status(**{"no-cache": True}) == "miss"  # asks upstream again
    assert status(**{"s-maxage": 0}) == "miss"  # nothing is that fresh... and this answer replaces the entry
    assert status(**{"s-maxage": 600}) == "hit"
    assert status(namespace="elsewhere") == "miss"
    r = cgw.call("POST", path, body, key=key, headers={"cache-control": "no-cache"})
    assert r.headers["x-llmswitch-cache"] == "miss"
    assert len(up.requests) == 6


@pytest.mark.parametrize("face", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize(
    ("controls", "param"),
    [
        ({"ttl": -5}, "cache.ttl"),
        ({"namespace": "x" * 1000}, "cache.namespace"),
        ("all", "cache"),
        ({"evil": 1}, "cache.evil"),
    ],
)
def test_hostile_controls_are_a_400_in_the_clients_dialect_and_reach_nobody(
    cgw: ServedGateway, up: FakeUpstream, face: str, controls: Any, param: str
) -> None:
    path, body = chat_request(face, f"m-{face}", prompt())
    body["cache"] = controls
    r = cgw.call("POST", path, body)
    assert r.status == 400
    _, message = dialect_error(face, r)
    assert param in message
    assert up.requests == []


def test_a_sampled_temperature_is_not_cached_unless_configured(cgw: ServedGateway, up: FakeUpstream) -> None:
    key = cgw.new_key()
    path, body = chat_request("openai", "m-openai", prompt())
    for _ in range(2):
        r = cgw.call("POST", path, dict(body, temperature=0.8), key=key)
        assert r.status == 200 and "x-llmswitch-cache" not in r.headers
        stored(cgw)
    seen = []
    for _ in range(2):
        seen.append(cgw.call("POST", path, dict(body, temperature=0), key=key).headers["x-llmswitch-cache"])
        stored(cgw)
    assert seen == ["miss", "hit"]
    assert len(up.requests) == 3


def test_a_huge_request_is_keyed_and_served(cgw: ServedGateway, up: FakeUpstream) -> None:
    key = cgw.new_key()
    up.script(Reply(text="short answer", usage=USAGE))
    path, body = chat_request("openai", "m-openai", "x" * (8 << 20) + prompt())
    assert cgw.call("POST", path, body, key=key).headers["x-llmswitch-cache"] == "miss"
    stored(cgw)
    r = cgw.call("POST", path, body, key=key)
    assert r.headers["x-llmswitch-cache"] == "hit" and r.json()["choices"][0]["message"]["content"] == "short answer"
    assert len(up.requests) == 1


def test_a_hit_costs_nothing_and_spend_logs_say_what_it_saved(cgw: ServedGateway, up: FakeUpstream) -> None:
    key = cgw.new_key()
    up.script(Reply(text="priced", usage=(1000, 500)))
    path, body = chat_request("openai", "m-openai", prompt())
    miss = cgw.call("POST", path, body, key=key)
    stored(cgw)
    hit = cgw.call("POST", path, body, key=key)
    assert hit.headers["x-llmswitch-cache"] == "hit"
    assert float(hit.headers["x-llmswitch-cost"]) == 0.0
    paid = float(miss.headers["x-llmswitch-cost"])
    assert paid > 0
    rows = sorted(wait_logged(cgw.port, key, 2), key=lambda r: r["startTime"])
    assert [r["cache_hit"] for r in rows] == [False, True]
    assert rows[1]["spend"] == 0 and rows[1]["cache_saved_cost"] == pytest.approx(paid)
    assert rows[1]["prompt_tokens"] == 1000 and rows[1]["model"] == "gpt-4o-mini"


def test_hits_count_as_requests_for_rate_limits(cgw: ServedGateway, up: FakeUpstream) -> None:
    key = cgw.new_key(rpm_limit=2)
    path, body = chat_request("openai", "m-openai", prompt())
    assert cgw.call("POST", path, body, key=key).status == 200
    stored(cgw)
    assert cgw.call("POST", path, body, key=key).headers["x-llmswitch-cache"] == "hit"
    assert cgw.call("POST", path, body, key=key).status == 429
    assert len(up.requests) == 1


def test_admin_routes(cgw: ServedGateway, up: FakeUpstream) -> None:
    user = cgw.new_key()
    path, body = chat_request("openai", "m-openai", prompt())
    entry = cgw.call("POST", path, body, key=user).headers["x-llmswitch-cache-key"]
    stored(cgw)
    ping = cgw.call("GET", "/cache/ping")
    assert ping.status == 200 and ping.json()["status"] == "healthy" and ping.json()["cache_type"] == "local"
    for route, payload in (("/cache/delete", {"keys": [entry]}), ("/cache/flushall", None)):
        assert cgw.call("POST", route, payload, key=user).status == 403
    assert cgw.call("POST", "/cache/delete", {"keys": ["../etc"]}).status == 400
    assert cgw.call("POST", "/cache/delete", {"keys": [entry]}).json() == {"status": "success", "deleted": 1}
    assert cgw.call("POST", path, body, key=user).headers["x-llmswitch-cache"] == "miss"
    stored(cgw)
    assert cgw.call("POST", "/cache/flushall").json()["status"] == "success"
    assert cgw.call("POST", path, body, key=user).headers["x-llmswitch-cache"] == "miss"
    assert len(up.requests) == 3


def test_a_gateway_without_a_cache_strips_the_controls_and_says_nothing(gw: ServedGateway, up: FakeUpstream) -> None:
    path, body = chat_request("openai", "m-openai", prompt())
    body["cache"] = {"no-cache": True}
    r = gw.call("POST", path, body)
    assert r.status == 200 and "x-llmswitch-cache" not in r.headers
    assert "cache" not in up.requests[0].json
    assert gw.call("GET", "/cache/ping").status == 400


def test_an_openai_hit_of_a_relayed_answer_is_the_same_bytes(cgw: ServedGateway, up: FakeUpstream) -> None:
    key = cgw.new_key()
    path, body = chat_request("openai", "m-openai", prompt())
    miss = cgw.call("POST", path, body, key=key)
    stored(cgw)
    hit = cgw.call("POST", path, body, key=key)
    assert (miss.headers["x-llmswitch-cache"], hit.headers["x-llmswitch-cache"]) == ("miss", "hit")
    assert hit.body == miss.body


def test_hits_cost_no_tokens_against_a_tpm_limit(cgw: ServedGateway, up: FakeUpstream) -> None:
    key = cgw.new_key(tpm_limit=100)
    up.script(Reply(text="tokens", usage=(60, 20)))
    path, body = chat_request("openai", "m-openai", prompt())
    assert cgw.call("POST", path, body, key=key).status == 200  # 80 of the minute's 100 tokens
    stored(cgw)
    for _ in range(5):  # each hit would be 80 more if hits counted their tokens
        r = cgw.call("POST", path, body, key=key)
        assert r.status == 200 and r.headers["x-llmswitch-cache"] == "hit", r.body
    assert len(up.requests) == 1


def test_hits_count_tokens_when_configured(up: FakeUpstream, tmp_path: Any) -> None:
    config = cache_config(up, str(tmp_path / "keys.db"), hits_count_tokens=True)
    with ServedGateway(config) as gw:
        key = gw.new_key(tpm_limit=100)
        up.script(Reply(text="tokens", usage=(60, 20)))
        path, body = chat_request("openai", "m-openai", prompt())
        assert gw.call("POST", path, body, key=key).status == 200
        stored(gw)
        assert gw.call("POST", path, body, key=key).headers["x-llmswitch-cache"] == "hit"  # 160 tokens now
        assert gw.call("POST", path, body, key=key).status == 429


def test_a_keys_own_cache_controls_apply_under_the_requests(cgw: ServedGateway, up: FakeUpstream) -> None:
    """LiteLLM's per-key cache settings: ``metadata: {"cache": {...}}`` on the key."""
    never = cgw.new_key(metadata={"cache": {"no-store": True}})
    path, body = chat_request("openai", "m-openai", prompt())
    for _ in range(2):
        assert cgw.call("POST", path, body, key=never).headers["x-llmswitch-cache"] == "miss"
        stored(cgw)
    # the request's own control wins over the key's
    assert (
        cgw.call("POST", path, dict(body, cache={"no-store": False}), key=never).headers["x-llmswitch-cache"] == "miss"
    )
    stored(cgw)
    assert cgw.call("POST", path, body, key=never).headers["x-llmswitch-cache"] == "hit"
    broken = cgw.new_key(metadata={"cache": {"ttl": "forever"}})  # not a control: ignored, never a 400
    r = cgw.call("POST", path, body, key=broken)
    assert r.status == 200 and r.headers["x-llmswitch-cache"] == "miss"
    assert len(up.requests) == 4
