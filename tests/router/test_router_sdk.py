"""``llmswitch.Router``: LiteLLM Router-compatible construction and methods, results that say what served
them, aliases and wildcards, background health checks, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel
from router_harness import FakeTime, chat_request, models_called, row, run

import llmswitch
from llmswitch import ir, results
from llmswitch.errors import InternalServerError, NotFoundError
from llmswitch.router.probes import HealthChecks
from llmswitch.router.router import Router
from llmswitch.router.strategies import LeastBusy, MostHeadroom
from llmswitch.testing import FakeUpstream, Reply

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    upstream.reset()
    yield upstream
    upstream.reset()
    upstream.default = Reply()


def test_llmswitch_router_takes_litellm_keywords(up: FakeUpstream) -> None:
    r = llmswitch.Router(
        model_list=[row(up, "main", "model-a"), row(up, "backup", "model-b")],
        fallbacks=[{"main": ["backup"]}],
        routing_strategy="least-busy",
        num_retries=1,
        allowed_fails=2,
        cooldown_time=30,
        timeout=45,
        redis_host="localhost",  # accepted and ignored, as LiteLLM users pass it
    )
    assert isinstance(r.strategy, LeastBusy)
    assert (r.num_retries, r.timeout) == (1, 45.0)
    t = r.deployments("main")[0]
    assert (t.breaker.allowed_fails, t.breaker.cooldown) == (2, 30.0)
    assert r.model_names() == ["backup", "main"] and r.has("main") and not r.has("nope")


def test_an_unknown_keyword_is_named_in_a_warning(up: FakeUpstream) -> None:
    with pytest.warns(UserWarning, match="num_retrys"):
        Router([row(up, "g", "m")], num_retrys=3)


def test_completion_returns_the_sdks_result_with_what_served_it(up: FakeUpstream) -> None:
    up.script(Reply(status=500), model="model-a")
    up.script(Reply(text="hi there", usage=(3, 2)), model="model-b")
    r = Router([row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2)], num_retries=0)
    resp = r.completion(model="g", messages=MESSAGES)
    assert isinstance(resp, results.ModelResponse)
    assert resp.choices[0].message.content == "hi there"
    assert resp.llmswitch == {
        "deployment": "g#1",
        "model_group": "g",
        "model": "model-b",
        "provider": "openai",
        "attempts": 2,
    }
    assert resp._hidden_params["model_id"] == "g#1"
    assert "llmswitch" not in resp.model_dump() and "_hidden_params" not in resp.model_dump_json()


def test_acompletion_and_async_streams(up: FakeUpstream) -> None:
    up.script(Reply(text="whole"), Reply(text="streamed text", chunk_size=3))
    r = Router([row(up, "g", "model-a")])

    async def main() -> tuple[str, str, dict[str, Any]]:
        whole = await r.acompletion(model="g", messages=MESSAGES)
        s = await r.acompletion(model="g", messages=MESSAGES, stream=True)
        text = ""
        async for chunk in s:
            assert isinstance(chunk, results.ModelResponseStream) and chunk.llmswitch is s.llmswitch
            text += "".join(c.delta.content or "" for c in chunk.choices)
        return whole.choices[0].message.content, text, s.llmswitch

    whole, streamed, info = run(main())
    assert (whole, streamed) == ("whole", "streamed text") and info["attempts"] == 1


def test_router_stream_chunks_are_those_of_llmswitch_completion(up: FakeUpstream) -> None:
    reply = Reply(text="same chunks either way", chunk_size=4, usage=(5, 6))
    up.script(reply, reply)
    direct = list(
        llmswitch.completion(
            "openai/model-a",
            MESSAGES,
            api_base=up.openai_base,
            api_key="k",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    routed = list(
        Router([row(up, "g", "model-a")]).completion(
            model="g", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )

    def shape(chunks: list[Any]) -> list[Any]:
        return [{k: v for k, v in c.model_dump().items() if k not in ("id", "created", "cost")} for c in chunks]

    assert shape(routed) == shape(direct)
    assert routed[-1].usage.total_tokens == 11


def test_structured_output_is_parsed(up: FakeUpstream) -> None:
    class City(BaseModel):
        name: str

    up.script(Reply(text='{"name": "Paris"}'))
    r = Router([row(up, "g", "model-a")])
    resp = r.completion(model="g", messages=MESSAGES, response_format=City)
    assert resp.choices[0].message.parsed == City(name="Paris")
    assert up.requests[0].json["response_format"]["type"] == "json_schema"


def test_embedding_and_aembedding(up: FakeUpstream) -> None:
    r = Router([row(up, "emb", "text-embedding-3-small")])
    e = r.embedding(model="emb", input=["a", "b"], dimensions=4)
    assert [len(d.embedding) for d in e.data] == [4, 4] and e.llmswitch["model_group"] == "emb"
    ae = run(r.aembedding(model="emb", input="one"))
    assert len(ae.data) == 1
    # the gateway's form of the same name: an IR request in, an awaitable of (response, route) out
    resp, route = run(r.embedding(ir.EmbeddingRequest(model="emb", input=["x"])))
    assert len(resp.data) == 1 and route.group == "emb"


def test_a_per_call_num_retries_overrides_the_routers(up: FakeUpstream) -> None:
    time = FakeTime()
    up.script(Reply(status=500), Reply(status=500), Reply(text="third time"))
    r = Router([row(up, "g", "model-a")], num_retries=0, clock=time.clock, sleep=time.sleep)
    assert r.completion(model="g", messages=MESSAGES, num_retries=2).choices[0].message.content == "third time"
    up.script(Reply(status=500), Reply(text="unused"))
    with pytest.raises(InternalServerError):
        r.completion(model="g", messages=MESSAGES)


def test_model_group_aliases_route_and_hidden_ones_are_not_listed(up: FakeUpstream) -> None:
    r = Router(
        [row(up, "primary", "model-a"), row(up, "backup", "model-b")],
        model_group_alias={"gpt-4": "primary", "secret": {"model": "backup", "hidden": True}},
    )
    assert run(r.chat(chat_request("gpt-4")))[1].group == "primary"
    assert run(r.chat(chat_request("secret")))[1].group == "backup"
    assert r.model_names() == ["backup", "gpt-4", "primary"]


def test_wildcard_groups_resolve_per_model(up: FakeUpstream) -> None:
    r = Router(
        [
            {
                "model_name": "openai/*",
                "litellm_params": {"model": "openai/*", "api_base": up.openai_base, "api_key": "k"},
            },
        ]
    )
    _, route = run(r.chat(chat_request("openai/gpt-4o-mini")))
    assert route.model == "gpt-4o-mini" and route.group == "openai/gpt-4o-mini"
    assert models_called(up) == ["gpt-4o-mini"]
    with pytest.raises(NotFoundError):
        run(r.chat(chat_request("anthropic/claude")))
    assert any(h["model_name"] == "openai/*" for h in r.health())


def test_from_config_takes_the_router_settings(up: FakeUpstream) -> None:
    from llmswitch.config import parse_config

    text = f"""
model_list:
  - model_name: g
    litellm_params: {{model: openai/model-a, api_base: "{up.openai_base}", api_key: k, rpm: 100}}
router_settings:
  routing_strategy: usage-based-routing-v2
  num_retries: 4
  allowed_fails: 7
  cooldown_time: 12
  fallbacks: [{{"g": ["h"]}}]
  retry_policy: {{RateLimitErrorRetries: 1}}
litellm_settings:
  request_timeout: 33
"""
    check = parse_config(text)
    assert check.config is not None
    r = Router.from_config(check.config)
    assert isinstance(r.strategy, MostHeadroom)
    assert (r.num_retries, r.timeout, r.settings.retry_policy) == (4, 33.0, {"RateLimitErrorRetries": 1})
    t = r.deployments("g")[0]
    assert (t.rpm, t.breaker.allowed_fails, t.breaker.cooldown) == (100, 7, 12.0)
    assert r.fallbacks.chain("g", "error") == ("h",) and not t.solo


def test_background_health_checks_open_and_close_breakers(up: FakeUpstream) -> None:
    time = FakeTime()
    r = Router(
        [row(up, "g", "model-a"), row(up, "g", "model-b"), row(up, "emb", "emb-a", info={"mode": "embedding"})],
        clock=time.clock,
        sleep=time.sleep,
        allowed_fails=0,
    )
    checks = HealthChecks(r, 60)
    up.script(Reply(status=500), model="model-a")
    run(checks.round())
    assert [h["state"] for h in r.health()] == ["open", "closed", "closed"]
    assert sorted(q.path for q in up.requests) == ["/v1/chat/completions"] * 2 + ["/v1/embeddings"]
    assert all(q.json.get("max_completion_tokens") == 1 for q in up.requests if q.path.endswith("completions"))
    run(checks.round())  # model-a answers now: the probe closes its breaker without waiting for the cooldown
    assert [h["state"] for h in r.health()] == ["closed", "closed", "closed"]


def test_start_and_stop_health_checks(up: FakeUpstream) -> None:
    r = Router([row(up, "g", "model-a")])

    async def main() -> None:
        await r.start_health_checks(3600)
        for _ in range(100):
            if up.requests:
                break
            await asyncio.sleep(0.01)
        await r.stop_health_checks()

    run(main())
    assert len(up.requests) == 1


def test_a_cancelled_request_releases_its_deployment(up: FakeUpstream) -> None:
    time = FakeTime()
    up.default = Reply(hang=True)
    r = Router([row(up, "g", "model-a"), row(up, "g", "model-b")], clock=time.clock, sleep=time.sleep, allowed_fails=1)
    t = r.deployments("g")[0]
    t.breaker.trip()
    time.now += 10  # half-open: the next request is its probe

    async def main() -> None:
        r.strategy = LeastBusy(lambda: 0.99)  # keep the first of equals: model-a, the probe
        task = asyncio.ensure_future(r.chat(chat_request("g")))
        for _ in range(200):
            if t.in_flight:
                break
            await asyncio.sleep(0.005)
        assert t.in_flight == 1 and not t.breaker.available()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    # no verdict on the deployment: nothing counted, and the probe slot is free again
    assert t.in_flight == 0 and t.failures == 0 and t.breaker.state == "half_open" and t.breaker.available()
