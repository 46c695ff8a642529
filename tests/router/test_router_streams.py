"""Streams through the Router: a failure before the first content is retried or failed over unseen; after
it, the stream ends with an error, never a silent truncation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from router_harness import FakeTime, chat_request, models_called, row, run

from llmswitch.errors import APIConnectionError
from llmswitch.router.router import Router
from llmswitch.testing import FakeUpstream, Reply

STORY = "Once upon a time a router kept every stream whole."
MESSAGES = [{"role": "user", "content": "tell me"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    upstream.reset()
    yield upstream
    upstream.reset()


def sdk_router(up: FakeUpstream, *rows: dict[str, Any], **settings: Any) -> Router:
    time = FakeTime()
    return Router(list(rows) or [row(up, "g", "model-a")], clock=time.clock, sleep=time.sleep, **settings)


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize(
    "fault",
    [
        Reply(text=STORY, cut_after=0),  # headers, then the connection drops
        Reply(text=STORY, cut_after=1),  # the role chunk, then the connection drops: still no content
        Reply(text=STORY, end_after=1),  # the body ends cleanly after the role chunk
        Reply(status=503),
        Reply(status=429, retry_after=0.5),
    ],
    ids=["cut-before-any-chunk", "cut-after-the-role-chunk", "ended-after-the-role-chunk", "503", "429"],
)
def test_a_stream_failing_before_its_first_token_is_retried_unseen(up: FakeUpstream, fault: Reply) -> None:
    up.script(fault, Reply(text=STORY, chunk_size=5))
    r = sdk_router(up, num_retries=2)
    s = r.completion(model="g", messages=MESSAGES, stream=True)
    chunks = list(s)
    assert text_of(chunks) == STORY
    assert chunks[0].choices[0].delta.role == "assistant"  # one clean stream, from its first chunk
    assert s.llmswitch["attempts"] == 2 and len(up.requests) == 2


def test_a_stream_failing_before_its_first_token_fails_over(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, cut_after=1), model="model-a")
    up.script(Reply(text=STORY), model="model-b")
    r = sdk_router(up, row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2), num_retries=0)
    s = r.completion(model="g", messages=MESSAGES, stream=True)
    assert text_of(list(s)) == STORY
    assert models_called(up) == ["model-a", "model-b"] and s.llmswitch["deployment"] == "g#1"


def test_a_stream_cut_after_its_first_token_raises_and_is_not_retried(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, chunk_size=4, cut_after=4))
    r = sdk_router(up, num_retries=3)
    received: list[Any] = []
    with pytest.raises(APIConnectionError):
        for chunk in r.completion(model="g", messages=MESSAGES, stream=True):
            received.append(chunk)
    assert STORY.startswith(text_of(received)) and text_of(received)
    assert len(up.requests) == 1
    health = r.health()[0]
    assert health["failures"] == 1 and health["in_flight"] == 0  # counted against the deployment, released


def test_a_stream_whose_body_ends_before_the_answer_raises(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, chunk_size=4, end_after=4))
    r = sdk_router(up, num_retries=3)
    with pytest.raises(APIConnectionError, match="ended before the answer"):
        list(r.completion(model="g", messages=MESSAGES, stream=True))
    assert len(up.requests) == 1


def test_every_provider_dialect_streams_through_the_router(up: FakeUpstream) -> None:
    r = sdk_router(
        up,
        row(up, "o", "model-o"),
        row(up, "a", "model-a", provider="anthropic"),
        row(up, "gm", "gemini-2.5-flash", provider="gemini"),
    )
    for group in ("o", "a", "gm"):
        up.script(Reply(text=STORY, cut_after=0), Reply(text=STORY, chunk_size=6))
        assert text_of(list(r.completion(model=group, messages=MESSAGES, stream=True))) == STORY, group
    assert len(up.requests) == 6


def test_chat_stream_returns_after_the_first_content_with_it_still_to_read(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, chunk_size=5, usage=(7, 12)))
    r = sdk_router(up)

    async def main() -> tuple[str, Any, Any]:
        s, route = await r.chat_stream(chat_request("g", stream=True))
        assert r.deployments("g")[0].in_flight == 1  # in flight until the stream is closed
        text = ""
        async for ev in s.events():
            text += ev.text or ""
        return text, s.usage, route

    text, usage, route = run(main())
    assert text == STORY and route.attempts == 1
    assert (usage.input_tokens, usage.output_tokens) == (7, 12)
    t = r.deployments("g")[0]
    assert t.in_flight == 0 and t.ttft is not None and t.successes == 1


def test_a_stream_left_early_is_released(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY * 20, chunk_size=4, chunk_delay=0.005))
    r = sdk_router(up)
    s = r.completion(model="g", messages=MESSAGES, stream=True)
    next(s)
    next(s)
    s.close()
    t = r.deployments("g")[0]
    assert t.in_flight == 0 and t.failures == 0 and t.breaker.state == "closed"
    assert up.wait_for_disconnects(1)


def test_raw_passthrough_streams_are_peeked_too(up: FakeUpstream) -> None:
    """The gateway's fast path reads the provider's bytes; a cut before content is still retried."""
    up.script(Reply(text=STORY, cut_after=1), Reply(text=STORY, chunk_size=7))
    r = sdk_router(up, num_retries=1)
    body = {"model": "g", "messages": MESSAGES, "stream": True}

    async def main() -> bytes:
        s, route = await r.chat_stream(chat_request("g", stream=True), raw=body)
        assert s.passthrough and route.attempts == 2
        return b"".join([chunk async for chunk in s.raw_chunks()])

    raw = run(main())
    assert raw.count(b"data: ") > 5 and raw.rstrip().endswith(b"data: [DONE]")
    assert up.requests[1].json["stream_options"] == {"include_usage": True}


def test_a_stream_closed_before_it_is_read_is_released(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY * 20, chunk_size=4, chunk_delay=0.005), Reply(text=STORY * 20, chunk_delay=0.005))
    r = sdk_router(up)
    r.completion(model="g", messages=MESSAGES, stream=True).close()
    assert r.deployments("g")[0].in_flight == 0

    async def main() -> None:
        s = await r.acompletion(model="g", messages=MESSAGES, stream=True)
        assert r.deployments("g")[0].in_flight == 1
        await s.aclose()

    run(main())
    assert r.deployments("g")[0].in_flight == 0
    assert up.wait_for_disconnects(2)


def test_a_raw_stream_that_ends_before_the_answer_raises(up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, chunk_size=4, end_after=5))
    r = sdk_router(up)
    body = {"model": "g", "messages": MESSAGES, "stream": True}

    async def main() -> bytes:
        s, _ = await r.chat_stream(chat_request("g", stream=True), raw=body)
        got = b""
        with pytest.raises(APIConnectionError, match="ended before the answer"):
            async for chunk in s.raw_chunks():
                got += chunk
        return got

    assert b'"content"' in run(main())
    assert r.health()[0]["failures"] == 1


@pytest.mark.parametrize("split", range(1, 30))
def test_the_finish_marker_is_found_across_any_chunk_seam(split: int) -> None:
    from llmswitch.engine import _has_finish

    tail = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    at = len(tail) - 30 + split
    first, second = tail[:at], tail[at:]
    assert _has_finish(b"", first) or _has_finish(first, second)
    assert not _has_finish(b"", b'data: {"choices":[{"delta":{"content":"x"},"finish_reason":null}]}\n\n')
