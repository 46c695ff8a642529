"""``/v1/embeddings`` is metered like chat: admitted against a key's rpm, tpm, parallel requests and budget,
priced from the deployment's embedding price, journaled as an embeddings call and counted in the key's spend.

One gateway in this process, the embedded SQLite store, the fake upstream's OpenAI embeddings; the openai SDK
is the client.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import openai
import pytest
from gateway_harness import ServedGateway, dialect_error
from money_harness import EMBED_GROUP, EMBED_MODEL, embed_config, served
from multi_harness import key_info, poll, wait_logged

from llmswitch import ir
from llmswitch.cost import cost_for_response
from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    d = tmp_path_factory.mktemp("embed")
    with served(embed_config(upstream, str(d / "keys.db")), d / "journal") as gateway:
        yield gateway


def client(gw: ServedGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)


def alias(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_an_rpm_limit_refuses_embeddings_with_429(gw: ServedGateway, up: FakeUpstream) -> None:
    name = alias("embed-rpm")
    key = gw.new_key(rpm_limit=2, key_alias=name)
    with client(gw, key) as oa:
        for _ in range(2):
            oa.embeddings.create(model=EMBED_GROUP, input="hello there")
        with pytest.raises(openai.RateLimitError) as refused:
            oa.embeddings.create(model=EMBED_GROUP, input="hello there")
    assert refused.value.status_code == 429
    assert name in refused.value.message and "rpm_limit=2" in refused.value.message
    assert refused.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(up.requests) == 2  # the refused request never left the gateway


def test_embeddings_are_logged_priced_and_counted_in_the_keys_spend(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(key_alias=alias("embed-log"))
    texts = [["the quick brown fox"], ["jumps over", "the lazy dog, twice over and over again"], ["a" * 400]]
    answered: dict[str, tuple[int, float]] = {}
    with client(gw, key) as oa:
        for batch in texts:
            raw = oa.embeddings.with_raw_response.create(model=EMBED_GROUP, input=batch)
            result = raw.parse()
            assert len(result.data) == len(batch)
            tokens = result.usage.prompt_tokens
            assert tokens > 0
            cost = cost_for_response(EMBED_MODEL, "openai", ir.Usage(input_tokens=tokens))
            assert cost is not None and cost > 0
            assert float(raw.headers["x-llmswitch-cost"]) == pytest.approx(cost, rel=1e-9)
            answered[raw.headers["x-llmswitch-request-id"]] = (tokens, cost)
    rows = {row["request_id"]: row for row in wait_logged(gw.port, key, len(texts))}
    assert set(rows) == set(answered)
    for rid, (tokens, cost) in answered.items():
        row = rows[rid]
        assert row["call_type"] == "aembedding" and row["estimated"] is False
        assert (row["prompt_tokens"], row["completion_tokens"]) == (tokens, 0)
        assert row["spend"] == pytest.approx(cost, rel=1e-12)
        assert (row["model_group"], row["model"], row["status"]) == (EMBED_GROUP, EMBED_MODEL, 200)
    total = sum(cost for _, cost in answered.values())
    poll(lambda: key_info(gw.port, key)["spend"] == pytest.approx(total, rel=1e-9), timeout=2, what="key spend")


def test_embeddings_consume_a_budget_and_a_spent_one_refuses_them(gw: ServedGateway, up: FakeUpstream) -> None:
    # text-embedding-3-small is $0.02 per million tokens: this budget affords one request of a few tokens
    name = alias("embed-budget")
    key = gw.new_key(max_budget=1e-7, key_alias=name)
    with client(gw, key) as oa:
        first = oa.embeddings.create(model=EMBED_GROUP, input="a request of a dozen tokens or so, give or take")
        assert first.usage.prompt_tokens * 2e-8 >= 1e-7  # this one spends the whole budget
        with pytest.raises(openai.BadRequestError) as refused:
            oa.embeddings.create(model=EMBED_GROUP, input="one more")
    assert refused.value.status_code == 400
    assert "Budget has been exceeded" in refused.value.message and name in refused.value.message
    assert len(up.requests) == 1
    # and chat requests of the key are refused as well: it is one budget
    r = gw.call(
        "POST", "/v1/chat/completions", {"model": "m-openai", "messages": [{"role": "user", "content": "hi"}]}, key=key
    )
    assert r.status == 400 and dialect_error("openai", r)[0] == "budget_exceeded"


def test_a_parallel_request_limit_holds_for_embeddings(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(max_parallel_requests=1, key_alias=alias("embed-par"))
    up.script(Reply(latency=1.0))
    slow: list[object] = []
    with client(gw, key) as oa:
        t = threading.Thread(target=lambda: slow.append(oa.embeddings.create(model=EMBED_GROUP, input="slow")))
        t.start()
        poll(lambda: len(up.requests) == 1, timeout=5, what="the first request upstream")
        with pytest.raises(openai.RateLimitError) as refused:
            oa.embeddings.create(model=EMBED_GROUP, input="fast")
        t.join(10)
        assert slow, "the first request did not finish"
        # its slot was given back when it ended
        assert oa.embeddings.create(model=EMBED_GROUP, input="after").data
    assert "max_parallel_requests" in refused.value.message
