"""Every call the router sends upstream is told to ``on_attempt`` exactly once, answered or not: a
timed-out attempt (which the provider may have billed) and the retry that answered are two records."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from router_harness import FakeTime, chat_request, row, run

from llmswitch.errors import APITimeoutError
from llmswitch.router.attempts import Attempt
from llmswitch.router.router import Router
from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    upstream.reset()
    yield upstream
    upstream.reset()


def summary(records: list[Attempt]) -> list[tuple[int, str, str, str | None]]:
    return [(a.number, a.deployment, a.outcome, a.error) for a in records]


def test_a_timed_out_attempt_then_a_successful_retry_are_two_records(up: FakeUpstream) -> None:
    up.script(Reply(text="too late", latency=1.0), Reply(text="in time", usage=(7, 3)))
    records: list[Attempt] = []
    time = FakeTime()
    r = Router(
        [row(up, "g", "model-a", timeout=0.2)],
        clock=time.clock,
        sleep=time.sleep,
        num_retries=1,
        on_attempt=records.append,
    )
    _, route = run(r.chat(chat_request("g")))
    assert route.attempts == 2 and len(up.requests) == 2
    assert summary(records) == [(1, "g#0", "timeout", "APITimeoutError"), (2, "g#0", "ok", None)]
    assert records[0].usage is None and records[0].elapsed >= 0.2
    assert records[1].usage is not None and (records[1].usage.input_tokens, records[1].usage.output_tokens) == (7, 3)


def test_the_relayed_fast_path_tells_the_usage_of_the_bytes_it_relays(up: FakeUpstream) -> None:
    up.script(Reply(text="fast", usage=(11, 2)))
    records: list[Attempt] = []
    r = Router([row(up, "g", "model-a")], on_attempt=records.append)
    raw = {"model": "g", "messages": [{"role": "user", "content": "hello"}]}
    result, _ = run(r.chat(chat_request("g"), raw=raw))
    assert isinstance(result, bytes)
    assert summary(records) == [(1, "g#0", "ok", None)]
    assert records[0].usage is not None and records[0].usage.total_tokens == 13


def test_every_attempt_of_a_failover_and_a_fallback_is_told_once(up: FakeUpstream) -> None:
    up.script(Reply(status=500), model="model-a")
    up.script(Reply(status=429), model="model-b")
    records: list[Attempt] = []
    r = Router(
        [row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2), row(up, "h", "model-c")],
        num_retries=0,
        fallbacks={"g": ["h"]},
        on_attempt=records.append,
    )
    _, route = run(r.chat(chat_request("g")))
    assert route.model == "model-c"
    assert summary(records) == [
        (1, "g#0", "error", "InternalServerError"),
        (2, "g#1", "error", "RateLimitError"),
        (3, "h#2", "ok", None),
    ]
    assert [a.status for a in records] == [500, 429, None]


def test_a_stream_is_told_when_it_ends_with_its_usage(up: FakeUpstream) -> None:
    up.script(Reply(text="slow start", ttft=1.0), Reply(text="a story", usage=(5, 4)))
    records: list[Attempt] = []
    time = FakeTime()
    r = Router(
        [row(up, "g", "model-a", stream_timeout=0.2)],
        clock=time.clock,
        sleep=time.sleep,
        num_retries=1,
        on_attempt=records.append,
    )
    messages = [{"role": "user", "content": "tell me"}]
    s = r.completion(model="g", messages=messages, stream=True)
    assert summary(records) == [(1, "g#0", "timeout", "APITimeoutError")]  # the answer is not over yet
    chunks = list(s)
    assert chunks
    assert summary(records) == [(1, "g#0", "timeout", "APITimeoutError"), (2, "g#0", "ok", None)]
    assert records[1].usage is not None and records[1].usage.output_tokens == 4


def test_a_call_the_client_abandoned_is_told_as_cancelled(up: FakeUpstream) -> None:
    up.script(Reply(hang=True))
    records: list[Attempt] = []
    r = Router([row(up, "g", "model-a")], on_attempt=records.append)

    async def main() -> None:
        task = asyncio.ensure_future(r.chat(chat_request("g")))
        for _ in range(200):
            if up.requests:
                break
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert summary(records) == [(1, "g#0", "cancelled", "CancelledError")]


def test_a_failing_hook_never_fails_the_request(up: FakeUpstream, caplog: pytest.LogCaptureFixture) -> None:
    def broken(_: Attempt) -> None:
        raise RuntimeError("accounting is down")

    r = Router([row(up, "g", "model-a")], on_attempt=broken)
    _, route = run(r.chat(chat_request("g")))
    assert route.attempts == 1 and "on_attempt hook failed" in caplog.text


def test_a_request_that_ran_out_of_time_tells_each_attempt_it_sent(up: FakeUpstream) -> None:
    up.default = Reply(hang=True)
    records: list[Attempt] = []
    try:
        r = Router([row(up, "g", "model-a")], num_retries=5, on_attempt=records.append)
        with pytest.raises(APITimeoutError):
            run(r.chat(chat_request("g"), timeout=0.3))
    finally:
        up.default = Reply()
    assert len(records) == len(up.requests) == 1 and records[0].outcome == "timeout"


def test_background_health_checks_are_told_as_probes(up: FakeUpstream) -> None:
    from llmswitch.router.probes import HealthChecks

    records: list[Attempt] = []
    r = Router([row(up, "g", "model-a"), row(up, "g", "model-b")], on_attempt=records.append)
    up.script(Reply(status=500), model="model-a")
    run(HealthChecks(r, 60).round())
    assert sorted((a.deployment, a.outcome, a.probe) for a in records) == [
        ("g#0", "error", True),
        ("g#1", "ok", True),
    ]
    records.clear()
    run(r.chat(chat_request("g")))
    assert [a.probe for a in records] == [False]
