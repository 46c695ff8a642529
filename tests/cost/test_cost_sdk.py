"""``response.cost`` on what llmswitch.completion / embedding return, through each provider's dialect."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import llmswitch
from llmswitch import ir
from llmswitch.testing import FakeUpstream, Reply

MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def test_openai_completion_carries_its_cost_outside_the_openai_json(up: FakeUpstream) -> None:
    # gpt-4o-mini: 1,000 x $0.15 + 100 x $0.60 per 1M = $0.00021
    up.script(Reply(text="hello", usage=(1_000, 100)))
    r = llmswitch.completion("openai/gpt-4o-mini", MESSAGES, api_base=up.openai_base, api_key="sk-test")
    assert r.cost == 0.00021
    assert "cost" not in r.model_dump()
    assert llmswitch.completion_cost(r) == r.cost


def test_anthropic_completion_prices_cache_writes_by_lifetime(up: FakeUpstream) -> None:
    # claude-sonnet-4: 1,000 x 3 + 2,000 x 3.75 + 1,000 x 6 + 10,000 x 0.30 + 800 x 15 per 1M = $0.0315
    usage = ir.Usage(
        input_tokens=14_000,
        output_tokens=800,
        cache_read_tokens=10_000,
        cache_write_tokens=3_000,
        cache_write_5m_tokens=2_000,
        cache_write_1h_tokens=1_000,
    )
    up.script(Reply(text="hello", usage=usage, model="claude-sonnet-4-20250514"))
    r = llmswitch.completion("anthropic/claude-sonnet-4-0", MESSAGES, api_base=up.anthropic_base, api_key="k")
    assert r.cost == 0.0315


def test_gemini_completion_bills_thinking_as_output(up: FakeUpstream) -> None:
    # gemini-2.5-flash: 2,000 x 0.30 + (300 + 1,200 thinking) x 2.50 per 1M = 0.0006 + 0.00375 = $0.00435
    up.script(Reply(text="hello", usage=ir.Usage(input_tokens=2_000, output_tokens=1_500, reasoning_tokens=1_200)))
    r = llmswitch.completion("gemini/gemini-2.5-flash", MESSAGES, api_base=up.gemini_base, api_key="k")
    assert r.cost == 0.00435


def test_an_unpriced_model_costs_none(up: FakeUpstream) -> None:
    up.script(Reply(text="hello", usage=(10, 10), model="my-local-model"))
    r = llmswitch.completion("openai/my-local-model", MESSAGES, api_base=up.openai_base, api_key="sk-test")
    assert r.cost is None


def test_the_usage_chunk_of_a_stream_carries_the_cost(up: FakeUpstream) -> None:
    up.script(Reply(text="hello world", usage=(1_000, 100)))
    chunks = list(
        llmswitch.completion(
            "openai/gpt-4o-mini",
            MESSAGES,
            api_base=up.openai_base,
            api_key="sk-test",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None
    assert chunks[-1].cost == 0.00021
    assert all(c.cost is None for c in chunks[:-1])


def test_embedding_cost(up: FakeUpstream) -> None:
    r = llmswitch.embedding("openai/text-embedding-3-small", ["hello", "world"], api_base=up.openai_base, api_key="k")
    assert r.usage.prompt_tokens > 0
    assert r.cost == pytest.approx(r.usage.prompt_tokens * 0.02 / 1_000_000, rel=1e-12)
    assert "cost" not in r.model_dump()


def test_anthropic_web_searches_are_in_the_sdk_usage_and_cost(up: FakeUpstream) -> None:
    # claude-sonnet-4-5: 1,000 x 3 + 100 x 15 per 1M + 2 searches x $10/1,000 = 0.003 + 0.0015 + 0.02 = $0.0245
    usage = ir.Usage(input_tokens=1_000, output_tokens=100, web_search_requests=2)
    up.script(Reply(text="hello", usage=usage, model="claude-sonnet-4-5-20250929"))
    r = llmswitch.completion("anthropic/claude-sonnet-4-5", MESSAGES, api_base=up.anthropic_base, api_key="k")
    assert r.usage is not None and r.usage.server_tool_use == {"web_search_requests": 2, "web_fetch_requests": 0}
    assert r.cost == 0.0245


def test_gemini_tool_use_prompt_and_audio_are_in_the_sdk_usage_and_cost(up: FakeUpstream) -> None:
    # gemini-2.5-flash: 1,000 tool-use prompt + 1,000 prompt of which 400 audio:
    # 1,600 x 0.30 + 400 x 1.00 + 100 x 2.50 per 1M = 0.00048 + 0.0004 + 0.00025 = $0.00113
    usage = ir.Usage(
        input_tokens=2_000,
        output_tokens=100,
        tool_use_prompt_tokens=1_000,
        input_audio_tokens=400,
        input_modalities={"TEXT": 600, "AUDIO": 400},
    )
    up.script(Reply(text="hello", usage=usage))
    r = llmswitch.completion("gemini/gemini-2.5-flash", MESSAGES, api_base=up.gemini_base, api_key="k")
    assert r.usage is not None and r.usage.prompt_tokens == 2_000
    assert r.usage.prompt_tokens_details is not None and r.usage.prompt_tokens_details.audio_tokens == 400
    assert r.cost == 0.00113
