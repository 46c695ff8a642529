"""Streaming through llmswitch.completion / acompletion: fragments, usage, early exits, broken streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

import llmswitch
from llmswitch import ir, transport
from llmswitch.router import retry
from llmswitch.testing import FakeUpstream, Reply

MESSAGES = [{"role": "user", "content": "Tell me a story"}]
STORY = "Once upon a time, a fake upstream streamed a story one fragment at a time."


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def stream(up: FakeUpstream, **kwargs: Any) -> Any:
    return llmswitch.completion(
        "openai/gpt-4o-mini", MESSAGES, api_base=up.openai_base, api_key="sk-test", stream=True, **kwargs
    )


def text_of(chunks: list[Any]) -> str:
    return "".join(ch.delta.content or "" for c in chunks for ch in c.choices)


def test_content_arrives_in_fragments_that_add_up(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, chunk_size=7))
    chunks = list(stream(up))
    assert text_of(chunks) == STORY
    assert sum(1 for c in chunks for ch in c.choices if ch.delta.content) == -(-len(STORY) // 7)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1 and chunks[0].model == "gpt-4o-mini"
    assert up.requests[0].json["stream"] is True


def test_tool_call_fragments_carry_id_and_name_once_and_build_the_call(up: FakeUpstream) -> None:
    up.script(Reply(tool_calls=[("get_weather", {"city": "Paris", "unit": "celsius"}), ("get_time", {"tz": "CET"})]))
    chunks = list(stream(up, tools=[_weather_tool("get_weather"), _weather_tool("get_time")]))
    fragments = [t for c in chunks for ch in c.choices for t in ch.delta.tool_calls or ()]
    for index in (0, 1):
        mine = [f for f in fragments if f.index == index]
        assert len(mine) > 2
        assert mine[0].id is not None and mine[0].function is not None and mine[0].function.name is not None
        assert all(f.id is None and (f.function is None or f.function.name is None) for f in mine[1:])

    built = llmswitch.stream_chunk_builder(chunks)
    calls = built.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris", "unit": "celsius"}),
        ("get_time", {"tz": "CET"}),
    ]
    assert len({c.id for c in calls}) == 2
    assert built.choices[0].finish_reason == "tool_calls"


def _weather_tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}


def test_reasoning_streams_as_reasoning_content(up: FakeUpstream) -> None:
    up.script(Reply(reasoning="Think first, then answer.", text="42"))
    chunks = list(stream(up))
    assert "".join(ch.delta.reasoning_content or "" for c in chunks for ch in c.choices) == "Think first, then answer."
    assert text_of(chunks) == "42"


def test_include_usage_adds_a_last_chunk_with_usage_and_no_choices(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, usage=ir.Usage(input_tokens=12, output_tokens=20)))
    chunks = list(stream(up, stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (12, 20, 32)
    assert all(c.usage is None for c in chunks[:-1])


def test_without_include_usage_there_is_no_usage_chunk(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY))
    chunks = list(stream(up))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_leaving_the_loop_early_closes_the_upstream_connection(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY * 20, chunk_size=4, chunk_delay=0.01))
    for i, _ in enumerate(stream(up)):
        if i == 2:
            break
    assert up.wait_for_disconnects(1, timeout=5)


def test_closing_or_leaving_a_with_block_closes_the_upstream_connection(up: FakeUpstream) -> None:
    up.default = Reply(text=STORY * 20, chunk_size=4, chunk_delay=0.01)
    s = stream(up)
    next(s)
    s.close()
    assert up.wait_for_disconnects(1, timeout=5)

    with stream(up) as s2:
        next(s2)
    assert up.wait_for_disconnects(2, timeout=5)


def test_a_stream_read_to_the_end_is_not_a_disconnect(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, chunk_size=4))
    assert text_of(list(stream(up))) == STORY
    assert not up.wait_for_disconnects(1, timeout=0.2)


def test_a_stream_cut_mid_way_raises_instead_of_ending_quietly(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, chunk_size=4, cut_after=5))
    received: list[Any] = []
    with pytest.raises(llmswitch.APIConnectionError):
        for chunk in stream(up):
            received.append(chunk)
    text = text_of(received)
    assert text and STORY.startswith(text) and text != STORY
    assert not any(ch.finish_reason for c in received for ch in c.choices)
    assert len(up.requests) == 1  # bytes had reached the caller: not retried


def test_a_stream_whose_body_ends_before_the_answer_raises(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, chunk_size=4, end_after=4))
    with pytest.raises(llmswitch.APIConnectionError):
        list(stream(up))


def test_a_stream_that_fails_before_its_first_byte_is_retried(
    up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retry, "backoff", lambda *args, **kwargs: 0.0)
    up.script(Reply(status=503), Reply(status=429, retry_after=0.01), Reply(text=STORY))
    assert text_of(list(stream(up))) == STORY
    assert len(up.requests) == 3


def test_an_error_status_on_a_stream_raises_its_class(up: FakeUpstream) -> None:
    up.script(Reply(status=401, message="Incorrect API key provided: sk-test"))
    with pytest.raises(llmswitch.AuthenticationError, match="Incorrect API key"):
        list(stream(up, num_retries=0))


def test_a_stalled_stream_times_out(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, ttft=2.0))
    with pytest.raises(llmswitch.APITimeoutError):
        list(stream(up, timeout=0.3, num_retries=0))


# ---------------------------------------------------------------- async


def run_async(coro: Any) -> Any:
    """Run a coroutine on a fresh loop and close llmswitch's HTTP session of that loop afterwards."""

    async def main() -> Any:
        try:
            return await coro
        finally:
            await transport.close_session()

    return asyncio.run(main())


def test_acompletion_streams() -> None:
    async def main() -> tuple[str, Any]:
        async with FakeUpstream() as up:
            up.script(Reply(text=STORY, chunk_size=5, usage=ir.Usage(input_tokens=3, output_tokens=4)))
            s = await llmswitch.acompletion(
                "openai/gpt-4o-mini",
                MESSAGES,
                api_base=up.openai_base,
                api_key="sk-test",
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [c async for c in s]
            return text_of(chunks), chunks[-1].usage

    text, usage = run_async(main())
    assert text == STORY
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, 4)


def test_acompletion_stream_closed_early_closes_the_upstream_connection() -> None:
    async def main() -> bool:
        async with FakeUpstream() as up:
            up.script(Reply(text=STORY * 20, chunk_size=4, chunk_delay=0.01))
            s = await llmswitch.acompletion(
                "openai/gpt-4o-mini", MESSAGES, api_base=up.openai_base, api_key="sk-test", stream=True
            )
            async for _ in s:
                break
            await s.aclose()
            return await up.await_disconnects(1, timeout=5)

    assert run_async(main())


def test_acompletion_stream_cut_mid_way_raises() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            up.script(Reply(text=STORY, chunk_size=4, cut_after=3))
            s = await llmswitch.acompletion(
                "openai/gpt-4o-mini", MESSAGES, api_base=up.openai_base, api_key="sk-test", stream=True
            )
            with pytest.raises(llmswitch.APIConnectionError):
                async for _ in s:
                    pass

    run_async(main())


# ---------------------------------------------------------------- the same through every provider's dialect

PROVIDERS = {
    "openai": ("openai/gpt-4o-mini", "openai_base"),
    "anthropic": ("anthropic/claude-sonnet-4-0", "anthropic_base"),
    "gemini": ("gemini/gemini-2.5-flash", "gemini_base"),
}


def provider_stream(up: FakeUpstream, provider: str, **kwargs: Any) -> Any:
    model, base = PROVIDERS[provider]
    return llmswitch.completion(model, MESSAGES, api_base=getattr(up, base), api_key="k", stream=True, **kwargs)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_streams_text_tool_calls_and_usage(up: FakeUpstream, provider: str) -> None:
    up.script(
        Reply(
            text=STORY, tool_calls=[("get_weather", {"city": "Paris"})], usage=ir.Usage(input_tokens=9, output_tokens=5)
        )
    )
    chunks = list(provider_stream(up, provider, stream_options={"include_usage": True}))
    built = llmswitch.stream_chunk_builder(chunks)
    message = built.choices[0].message
    assert message.content == STORY
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert built.choices[0].finish_reason == "tool_calls"
    assert (built.usage.prompt_tokens, built.usage.completion_tokens) == (9, 5)
    assert chunks[-1].choices == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_raises_on_a_cut_stream(up: FakeUpstream, provider: str) -> None:
    up.script(Reply(text=STORY, chunk_size=4, cut_after=4))
    received: list[Any] = []
    with pytest.raises(llmswitch.APIConnectionError):
        for chunk in provider_stream(up, provider):
            received.append(chunk)
    assert STORY.startswith(text_of(received)) and text_of(received) != STORY


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_closes_the_upstream_when_the_loop_is_left(up: FakeUpstream, provider: str) -> None:
    up.script(Reply(text=STORY * 20, chunk_size=4, chunk_delay=0.01))
    for i, _ in enumerate(provider_stream(up, provider)):
        if i == 2:
            break
    assert up.wait_for_disconnects(1, timeout=5)
