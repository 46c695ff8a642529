"""One deadline per request, across every attempt, wait and fallback: never exceeded, however many
retries remain."""

from __future__ import annotations

import time as wall
from collections.abc import Callable, Iterator

import pytest
from router_harness import FakeTime, chat_request, models_called, row, run

from llmswitch.errors import APITimeoutError, InternalServerError, RateLimitError, ServiceUnavailableError
from llmswitch.router.router import Router
from llmswitch.testing import FakeUpstream, RecordedRequest, Reply

# the loop's own scheduling and loopback HTTP: what a deadline may be overshot by on a busy CI machine
SLACK = 0.35


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


def test_hanging_deployments_end_at_the_deadline_whatever_the_retries_left(up: FakeUpstream) -> None:
    up.default = Reply(hang=True)
    r = Router([row(up, "g", "model-a"), row(up, "g", "model-b")], num_retries=100)
    started = wall.monotonic()
    with pytest.raises(APITimeoutError):
        run(r.chat(chat_request("g"), timeout=0.4))
    elapsed = wall.monotonic() - started
    assert 0.4 <= elapsed < 0.4 + SLACK


def test_a_slow_stream_ends_at_the_deadline(up: FakeUpstream) -> None:
    up.default = Reply(text="late", ttft=5.0)
    r = Router([row(up, "g", "model-a")], num_retries=100)
    started = wall.monotonic()
    with pytest.raises(APITimeoutError):
        run(r.chat_stream(chat_request("g", stream=True), timeout=0.3))
    assert wall.monotonic() - started < 0.3 + SLACK


def test_backoff_never_sleeps_past_the_deadline(up: FakeUpstream) -> None:
    time = FakeTime()
    up.default = Reply(status=503)
    r = Router(
        [row(up, "g", "model-a"), row(up, "g", "model-b")],
        clock=time.clock,
        sleep=time.sleep,
        num_retries=1000,
        allowed_fails=10_000,
        rng=lambda: 0.9,
    )
    started = time.now
    with pytest.raises(ServiceUnavailableError):
        run(r.chat(chat_request("g"), timeout=20.0))
    assert time.now - started < 20.0
    # it did keep trying while time allowed: exponential steps up to the 8 s cap
    assert len(up.requests) >= 5 and time.sleeps[:4] == pytest.approx([0.45, 0.9, 1.8, 3.6])


def test_a_retry_after_longer_than_the_time_left_is_not_waited_for(up: FakeUpstream) -> None:
    time = FakeTime()
    up.default = Reply(status=429, retry_after=30)
    r = Router([row(up, "g", "model-a")], clock=time.clock, sleep=time.sleep, num_retries=5)
    with pytest.raises(RateLimitError) as info:
        run(r.chat(chat_request("g"), timeout=10))
    assert time.sleeps == [] and len(up.requests) == 1
    assert info.value.retry_after == 30  # the caller learns how long the provider asked for


def test_fallbacks_share_the_deadline(up: FakeUpstream) -> None:
    up.script(Reply(status=500, latency=0.3), model="model-a")
    up.script(Reply(hang=True), model="model-b")
    r = Router(
        [row(up, "g", "model-a"), row(up, "h", "model-b"), row(up, "i", "model-c")],
        fallbacks={"g": ["h", "i"]},
        num_retries=0,
        min_attempt_time=0.1,  # the 0.3 s left after model-a is worth a try here
    )
    started = wall.monotonic()
    with pytest.raises(APITimeoutError):
        run(r.chat(chat_request("g"), timeout=0.6))
    assert wall.monotonic() - started < 0.6 + SLACK
    assert models_called(up) == ["model-a", "model-b"]  # no time was left for the last fallback


def test_the_routers_timeout_is_the_default_deadline(up: FakeUpstream) -> None:
    up.default = Reply(hang=True)
    r = Router([row(up, "g", "model-a")], timeout=0.3, num_retries=3)
    started = wall.monotonic()
    with pytest.raises(APITimeoutError):
        run(r.chat(chat_request("g")))
    assert wall.monotonic() - started < 0.3 + SLACK


def test_a_deployments_own_timeout_bounds_each_attempt_inside_the_deadline(up: FakeUpstream) -> None:
    up.script(Reply(hang=True), model="model-a")
    r = Router([row(up, "g", "model-a", order=1, timeout=0.2), row(up, "g", "model-b", order=2)], num_retries=0)
    started = wall.monotonic()
    _, route = run(r.chat(chat_request("g"), timeout=5))
    assert route.model == "model-b" and wall.monotonic() - started < 0.2 + SLACK
    # its own timeout passed: that counts against the deployment
    assert r.health()[0]["failures"] == 1


def test_a_timeout_cut_short_by_the_callers_deadline_does_not_count_against_the_deployment(up: FakeUpstream) -> None:
    up.default = Reply(hang=True)
    r = Router([row(up, "g", "model-a"), row(up, "g", "model-b")], num_retries=0, allowed_fails=0)
    with pytest.raises(APITimeoutError):
        run(r.chat(chat_request("g"), timeout=0.2))
    assert {h["state"] for h in r.health()} == {"closed"}


def test_an_error_before_the_deadline_is_the_error_not_a_timeout(up: FakeUpstream) -> None:
    up.default = Reply(status=500, message="really broken")
    r = Router([row(up, "g", "model-a")], num_retries=0)
    with pytest.raises(InternalServerError, match="really broken"):
        run(r.chat(chat_request("g"), timeout=5))


def slow_failure(time: FakeTime, took: float) -> Callable[[RecordedRequest], Reply]:
    """A responder: model-a fails with a 500 after ``took`` seconds of the fake clock; the rest answer."""

    def responder(rec: RecordedRequest) -> Reply:
        if rec.model == "model-a":
            time.now += took
            return Reply(status=500, message="slow and broken")
        return Reply(text="ok")

    return responder


def test_no_retry_starts_with_less_than_the_minimum_attempt_time_left(up: FakeUpstream) -> None:
    time = FakeTime()
    up.responder = slow_failure(time, 9.5)
    try:
        r = Router([row(up, "g", "model-a")], clock=time.clock, sleep=time.sleep, num_retries=3, rng=lambda: 0.0)
        with pytest.raises(APITimeoutError, match=r"ran out of time.*slow and broken") as info:
            run(r.chat(chat_request("g"), timeout=10))
    finally:
        up.responder = None
    # half a second left: a retry would only have timed out (and maybe been billed)
    assert models_called(up) == ["model-a"]
    assert isinstance(info.value.__cause__, InternalServerError)


def test_no_backoff_wait_starts_that_would_leave_too_little_time(up: FakeUpstream) -> None:
    time = FakeTime()
    up.responder = slow_failure(time, 4.0)
    try:
        r = Router([row(up, "g", "model-a")], clock=time.clock, sleep=time.sleep, num_retries=3, rng=lambda: 1.0)
        with pytest.raises(APITimeoutError, match="ran out of time"):
            run(r.chat(chat_request("g"), timeout=10))
    finally:
        up.responder = None
    # 6 s left after the first failure: a 0.5 s backoff, then a retry; 1.5 s left after the second: the
    # 1 s backoff would leave half a second, so it is not slept on and nothing more is sent
    assert time.sleeps == [0.5] and models_called(up) == ["model-a"] * 2


def test_a_fallback_does_not_start_with_too_little_time_left(up: FakeUpstream) -> None:
    time = FakeTime()
    up.responder = slow_failure(time, 9.8)
    try:
        r = Router(
            [row(up, "g", "model-a"), row(up, "h", "model-b")],
            clock=time.clock,
            sleep=time.sleep,
            num_retries=0,
            fallbacks={"g": ["h"]},
        )
        with pytest.raises(APITimeoutError, match="ran out of time"):
            run(r.chat(chat_request("g"), timeout=10))
    finally:
        up.responder = None
    assert models_called(up) == ["model-a"]


def test_a_deployment_known_to_answer_fast_is_retried_with_less_than_the_floor_left(up: FakeUpstream) -> None:
    time = FakeTime()
    calls = 0

    def responder(rec: RecordedRequest) -> Reply:
        nonlocal calls
        calls += 1
        if calls == 2:
            time.now += 9.5  # the second call fails slowly; the deployment's usual answer is fast
            return Reply(status=500)
        return Reply(text="ok")

    up.responder = responder
    try:
        r = Router([row(up, "g", "model-a")], clock=time.clock, sleep=time.sleep, num_retries=1, rng=lambda: 0.0)
        run(r.chat(chat_request("g")))  # teaches the router its usual latency: milliseconds
        _, route = run(r.chat(chat_request("g"), timeout=10))
    finally:
        up.responder = None
    assert route.attempts == 2 and calls == 3


def test_a_deployment_known_to_be_slow_is_not_retried_with_less_than_its_usual_latency_left(
    up: FakeUpstream,
) -> None:
    time = FakeTime()
    up.script(Reply(text="ok", latency=0.3), model="model-a")
    r = Router(
        [row(up, "g", "model-a")],
        clock=time.clock,
        sleep=time.sleep,
        num_retries=1,
        rng=lambda: 0.0,
        min_attempt_time=0.01,
    )
    run(r.chat(chat_request("g")))  # about 0.3 s, on the wall clock the latency is measured with
    up.reset()
    up.responder = slow_failure(time, 9.8)
    try:
        with pytest.raises(APITimeoutError, match="ran out of time"):
            run(r.chat(chat_request("g"), timeout=10))
    finally:
        up.responder = None
    assert models_called(up) == ["model-a"]  # 0.2 s left: under its usual 0.3 s, over the 0.01 s floor


@pytest.mark.parametrize(
    "text",
    [
        "router_settings: {min_attempt_time: 2.5}",
        "router: {min_attempt_time: 2.5}",
    ],
)
def test_min_attempt_time_is_read_from_both_config_forms(text: str) -> None:
    from llmswitch.config import parse_config

    models = (
        "model_list: [{model_name: g, litellm_params: {model: openai/m, api_key: k}}]"
        if text.startswith("router_settings")
        else "models: {g: {model: openai/m, api_key: k}}"
    )
    check = parse_config(f"{models}\n{text}\n", env={})
    assert check.problems == [] and check.config is not None
    assert Router.from_config(check.config).settings.min_attempt_time == 2.5


def test_one_slow_answer_does_not_make_a_fast_deployment_look_slow(up: FakeUpstream) -> None:
    """The time an attempt needs is the median of recent answers: one slow one (0.6 s among fast ones)
    would pull a moving average to ~0.2 s and wrongly refuse a retry with 0.1 s left."""
    time = FakeTime()
    up.script(*[Reply(text="ok")] * 4, Reply(text="slow", latency=0.6), model="model-a")
    r = Router([row(up, "g", "model-a")], clock=time.clock, sleep=time.sleep, num_retries=1, rng=lambda: 0.0)

    async def warm() -> None:
        for _ in range(5):
            await r.chat(chat_request("g"))

    run(warm())
    up.reset()
    calls = 0

    def responder(rec: RecordedRequest) -> Reply:
        nonlocal calls
        calls += 1
        if calls == 1:
            time.now += 9.9
            return Reply(status=500)
        return Reply(text="in time")

    up.responder = responder
    try:
        _, route = run(r.chat(chat_request("g"), timeout=10))
    finally:
        up.responder = None
    assert route.attempts == 2 and calls == 2
