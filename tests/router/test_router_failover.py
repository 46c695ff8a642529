"""The Router against a fake upstream with faults: rate limits, outages, breakers, tiers, request errors."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
from router_harness import FakeTime, chat_request, models_called, row, run

from llmswitch.errors import (
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
    ServiceUnavailableError,
)
from llmswitch.router.router import Route, Router
from llmswitch.testing import FakeUpstream, RecordedRequest, Reply


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    upstream.reset()
    upstream.responder = None
    yield upstream
    upstream.reset()
    upstream.responder = None


def test_a_rate_limited_deployment_rests_for_its_retry_after_and_the_other_absorbs_the_load(up: FakeUpstream) -> None:
    """30% of A's calls answer 429 with a Retry-After; B is healthy: every request succeeds, A is never
    called again before the time it named, and B takes what A cannot."""
    time = FakeTime()
    faults = random.Random(5)
    a_calls: list[float] = []
    rests: list[tuple[float, float]] = []

    def responder(rec: RecordedRequest) -> Reply:
        if rec.model == "model-a":
            a_calls.append(time.now)
            if faults.random() < 0.3:
                wait = faults.choice([0.2, 0.5, 1.5])
                rests.append((time.now, wait))
                return Reply(status=429, retry_after=wait)
        return Reply(text="ok")

    up.responder = responder
    router = Router(
        [row(up, "g", "model-a"), row(up, "g", "model-b")],
        clock=time.clock,
        sleep=time.sleep,
        rng=random.Random(1).random,
        num_retries=2,
        cooldown_time=0,  # the provider's Retry-After alone sets the rest here
    )

    async def main() -> list[Route]:
        routes = []
        for _ in range(300):
            time.now += 0.05
            resp, route = await router.chat(chat_request("g"))
            assert not isinstance(resp, bytes) and resp.choices[0].text == "ok"
            routes.append(route)
        return routes

    routes = run(main())
    served = {r.id: 0 for r in routes}
    for r in routes:
        served[r.id] += 1
    assert len(rests) >= 10 and len(a_calls) >= 40  # the scenario really happened
    for at, wait in rests:
        assert not [t for t in a_calls if at < t < at + wait], f"A was called within its retry-after ({at}, {wait})"
    assert served["g#1"] > served["g#0"]  # B absorbed A's share and more
    assert router.health()[0]["last_error"].startswith("RateLimitError")
    # no caller waited: A's 429s were failed over at once, never slept on
    assert time.sleeps == []


def test_a_hard_down_deployment_opens_its_breaker_gets_only_probes_then_recovers(up: FakeUpstream) -> None:
    time = FakeTime()
    a_up = False

    def responder(rec: RecordedRequest) -> Reply:
        if rec.model == "model-a" and not a_up:
            return Reply(status=500, latency=0.05)
        return Reply(text=f"from {rec.model}")

    up.responder = responder
    router = Router(
        [row(up, "g", "model-a", info={"priority": 1}), row(up, "g", "model-b", info={"priority": 2})],
        clock=time.clock,
        sleep=time.sleep,
        num_retries=0,
        allowed_fails=2,  # the third failure opens it
        cooldown_time=30,
    )

    async def ask() -> str:
        resp, route = await router.chat(chat_request("g"))
        assert not isinstance(resp, bytes)
        return route.model

    async def main() -> None:
        nonlocal a_up
        # three failures: each request still succeeds on B
        assert [await ask() for _ in range(3)] == ["model-b"] * 3
        assert models_called(up) == ["model-a", "model-b"] * 3
        assert router.deployments("g")[0].breaker.state == "open"
        # open: for the whole cooldown A gets nothing
        up.reset()
        for _ in range(10):
            time.now += 2.9
            assert await ask() == "model-b"
        assert "model-a" not in models_called(up)
        # cooldown over: many concurrent requests, exactly one probe; it fails, A is open again
        up.reset()
        time.now += 1.1
        results = await asyncio.gather(*(ask() for _ in range(8)))
        assert results == ["model-b"] * 8
        assert models_called(up).count("model-a") == 1
        assert router.deployments("g")[0].breaker.state == "open"
        # A recovers: the next probe succeeds and A takes all the traffic again (it is the first tier)
        a_up = True
        up.reset()
        time.now += 30
        assert [await ask() for _ in range(5)] == ["model-a"] * 5
        assert models_called(up) == ["model-a"] * 5
        assert router.deployments("g")[0].breaker.state == "closed"

    run(main())


PRIORITY_CONFIG = """
model_list:
  - model_name: main-model
    litellm_params: {{model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY, api_base: "{openai}"}}
    model_info: {{priority: 1}}
  - model_name: main-model
    litellm_params: {{model: anthropic/claude-sonnet-4-20250514, api_key: os.environ/ANTHROPIC_API_KEY, api_base: "{anthropic}"}}
    model_info: {{priority: 2}}
router_settings: {{routing_strategy: simple-shuffle, allowed_fails: 2, cooldown_time: 60}}
"""


def test_the_priority_tier_config_uses_the_fallback_only_while_the_primary_is_cooling_down(up: FakeUpstream) -> None:
    from llmswitch.config import parse_config

    text = PRIORITY_CONFIG.format(openai=up.openai_base, anthropic=up.anthropic_base)
    check = parse_config(text, env={"OPENAI_API_KEY": "sk-openai", "ANTHROPIC_API_KEY": "sk-anthropic"})
    assert check.problems == [] and check.config is not None
    time = FakeTime()
    router = Router.from_config(check.config, clock=time.clock, sleep=time.sleep)
    primary_down = False

    def responder(rec: RecordedRequest) -> Reply:
        if rec.model == "gpt-4o" and primary_down:
            return Reply(status=503)
        return Reply(text=str(rec.model))

    up.responder = responder

    async def ask() -> str:
        resp, route = await router.chat(chat_request("main-model"))
        assert not isinstance(resp, bytes)
        return route.model

    async def main() -> None:
        nonlocal primary_down
        # healthy: the primary, always
        assert {await ask() for _ in range(20)} == {"gpt-4o"}
        assert set(models_called(up)) == {"gpt-4o"}
        # the primary fails: the request is retried there, and after the third failure it is cooled down
        # and the same request is answered by the fallback, the caller none the wiser
        primary_down = True
        up.reset()
        assert await ask() == "claude-sonnet-4-20250514"
        assert models_called(up) == ["gpt-4o"] * 3 + ["claude-sonnet-4-20250514"]
        # for 60 s only the fallback is used
        up.reset()
        for _ in range(12):
            time.now += 4.9
            assert await ask() == "claude-sonnet-4-20250514"
        assert "gpt-4o" not in models_called(up)
        # 60 s on the primary is probed again; it has recovered and takes everything back
        primary_down = False
        up.reset()
        time.now += 2
        assert {await ask() for _ in range(10)} == {"gpt-4o"}
        assert set(models_called(up)) == {"gpt-4o"}

    run(main())


def test_a_400_is_never_retried_nor_failed_over(up: FakeUpstream) -> None:
    up.script(Reply(status=400, message="temperature: must be <= 2"))
    router = Router(
        [row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2), row(up, "backup", "model-c")],
        fallbacks=[{"g": ["backup"]}],
        num_retries=5,
    )
    with pytest.raises(BadRequestError, match="temperature"):
        run(router.chat(chat_request("g")))
    assert models_called(up) == ["model-a"]
    assert router.deployments("g")[0].breaker.state == "closed"


def test_an_upstream_key_refused_fails_over_and_the_deployment_stays_out(up: FakeUpstream) -> None:
    up.script(Reply(status=401), model="model-a")
    router = Router([row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2)], num_retries=3)

    async def main() -> list[str]:
        return [(await router.chat(chat_request("g")))[1].model for _ in range(3)]

    assert run(main()) == ["model-b"] * 3
    assert models_called(up) == ["model-a", "model-b", "model-b", "model-b"]
    assert router.health()[0]["state"] == "open"


def test_a_deployment_without_a_key_fails_over_instead_of_breaking_the_router(
    up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    router = Router(
        [row(up, "g", "claude-x", provider="anthropic", key=None, order=1), row(up, "g", "model-b", order=2)]
    )
    _, route = run(router.chat(chat_request("g")))
    assert route.model == "model-b" and route.attempts == 1
    assert models_called(up) == ["model-b"]
    # alone, the missing key is the caller's error
    alone = Router([row(up, "solo", "claude-x", provider="anthropic", key=None)])
    with pytest.raises(AuthenticationError, match="no API key"):
        run(alone.chat(chat_request("solo")))


def test_transient_failures_are_retried_on_the_same_deployment_first(up: FakeUpstream) -> None:
    time = FakeTime()
    up.script(Reply(status=500), Reply(status=502), model="model-a")
    router = Router(
        [row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2)],
        clock=time.clock,
        sleep=time.sleep,
        rng=lambda: 1.0,
        num_retries=2,
    )
    _, route = run(router.chat(chat_request("g")))
    assert route.model == "model-a" and route.attempts == 3
    assert models_called(up) == ["model-a"] * 3
    assert time.sleeps == [0.5, 1.0]  # full-jitter backoff at its ceiling (rng 1.0)


def test_once_its_retries_are_spent_a_failing_deployment_is_failed_over(up: FakeUpstream) -> None:
    time = FakeTime()
    up.script(*[Reply(status=500)] * 2, model="model-a")
    router = Router(
        [row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2)],
        clock=time.clock,
        sleep=time.sleep,
        num_retries=1,
    )
    _, route = run(router.chat(chat_request("g")))
    assert route.model == "model-b" and route.attempts == 3
    assert models_called(up) == ["model-a", "model-a", "model-b"]


def test_x_should_retry_false_skips_the_retry_but_not_the_failover(up: FakeUpstream) -> None:
    up.script(Reply(status=500, headers={"x-should-retry": "false"}), model="model-a")
    router = Router([row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2)], num_retries=3)
    _, route = run(router.chat(chat_request("g")))
    assert models_called(up) == ["model-a", "model-b"] and route.attempts == 2


def test_a_groups_only_deployment_is_never_cooled_down(up: FakeUpstream) -> None:
    up.default = Reply(status=500)
    try:
        router = Router([row(up, "g", "model-a")], num_retries=0, allowed_fails=0)
        for _ in range(4):
            with pytest.raises(InternalServerError):
                run(router.chat(chat_request("g")))
    finally:
        up.default = Reply()
    # cooling it down would only turn its errors into ours: every request still reached it
    assert models_called(up) == ["model-a"] * 4


def test_a_single_deployment_waits_out_the_providers_reset_inside_the_request(up: FakeUpstream) -> None:
    time = FakeTime()
    up.script(
        Reply(status=429, headers={"x-ratelimit-reset-requests": "2s", "x-ratelimit-remaining-requests": "0"}),
        Reply(text="after the wait"),
    )
    router = Router([row(up, "g", "model-a")], clock=time.clock, sleep=time.sleep, num_retries=1)
    resp, route = run(router.chat(chat_request("g")))
    assert not isinstance(resp, bytes) and resp.choices[0].text == "after the wait"
    assert time.sleeps == [2.0] and route.attempts == 2


def test_when_every_deployment_rests_the_request_waits_for_the_first_back(up: FakeUpstream) -> None:
    time = FakeTime()
    up.script(Reply(status=429, retry_after=3), model="model-a")
    up.script(Reply(status=429, retry_after=1), model="model-b")
    router = Router(
        [row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2)],
        clock=time.clock,
        sleep=time.sleep,
        num_retries=1,
        cooldown_time=0,  # the providers' own waits alone decide the order here
    )
    _, route = run(router.chat(chat_request("g")))
    assert models_called(up) == ["model-a", "model-b", "model-b"]
    assert route.model == "model-b" and time.sleeps == [1.0]


def test_retry_policy_counts_retries_per_error_class(up: FakeUpstream) -> None:
    time = FakeTime()
    up.default = Reply(status=429, retry_after=0.1)
    try:
        router = Router(
            [row(up, "g", "model-a")],
            clock=time.clock,
            sleep=time.sleep,
            num_retries=5,
            retry_policy={"RateLimitErrorRetries": 0, "InternalServerErrorRetries": 3},
        )
        with pytest.raises(RateLimitError):
            run(router.chat(chat_request("g")))
        assert len(up.requests) == 1
        up.reset()
        up.default = Reply(status=500)
        with pytest.raises(InternalServerError):
            run(router.chat(chat_request("g")))
        assert len(up.requests) == 4
    finally:
        up.default = Reply()


def test_rpm_caps_are_respected_before_sending(up: FakeUpstream) -> None:
    time = FakeTime(6000.0)
    router = Router(
        [row(up, "g", "model-a", rpm=2, order=1), row(up, "g", "model-b", rpm=3, order=2)],
        clock=time.clock,
        sleep=time.sleep,
    )

    async def main() -> list[str]:
        return [(await router.chat(chat_request("g")))[1].model for _ in range(5)]

    assert run(main()) == ["model-a"] * 2 + ["model-b"] * 3
    # every deployment at its cap: a 429 of ours, nothing sent upstream
    up.reset()
    with pytest.raises(RateLimitError, match="rate limited") as info:
        run(router.chat(chat_request("g")))
    assert up.requests == [] and info.value.provider == "llmswitch"
    assert info.value.retry_after == pytest.approx(60.0)
    # a minute later there is room again
    time.now += 120
    assert run(router.chat(chat_request("g")))[1].model == "model-a"


def test_tpm_caps_count_the_tokens_used(up: FakeUpstream) -> None:
    time = FakeTime(6000.0)
    up.default = Reply(text="ok", usage=(400, 200))
    try:
        router = Router(
            [row(up, "g", "model-a", tpm=1000, order=1), row(up, "g", "model-b", order=2)],
            clock=time.clock,
            sleep=time.sleep,
        )

        async def main() -> list[str]:
            return [(await router.chat(chat_request("g")))[1].model for _ in range(3)]

        assert run(main()) == ["model-a", "model-a", "model-b"]
        assert router.usage.used("g#0") == (2.0, 1200.0)
    finally:
        up.default = Reply()


def test_every_deployment_cooling_down_is_a_503_with_a_retry_after(up: FakeUpstream) -> None:
    time = FakeTime()
    up.default = Reply(status=500)
    try:
        router = Router(
            [row(up, "g", "model-a"), row(up, "g", "model-b")],
            clock=time.clock,
            sleep=time.sleep,
            num_retries=0,
            allowed_fails=0,
            cooldown_time=20,
        )
        with pytest.raises(InternalServerError):
            run(router.chat(chat_request("g")))
        up.reset()
        time.now += 5
        with pytest.raises(ServiceUnavailableError, match="cooling down") as info:
            run(router.chat(chat_request("g")))
    finally:
        up.default = Reply()
    assert up.requests == []
    assert info.value.retry_after == pytest.approx(15.0) and info.value.status_code == 503


def test_disable_cooldowns_keeps_every_deployment_in_rotation(up: FakeUpstream) -> None:
    up.script(*[Reply(status=500)] * 5, model="model-a")
    router = Router(
        [row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2)],
        num_retries=0,
        allowed_fails=0,
        disable_cooldowns=True,
    )
    for _ in range(3):
        run(router.chat(chat_request("g")))
    assert models_called(up) == ["model-a", "model-b"] * 3


def test_failures_of_calls_in_flight_when_the_breaker_opened_do_not_reopen_it(up: FakeUpstream) -> None:
    time = FakeTime()
    up.script(*[Reply(status=500, latency=0.05)] * 4, model="model-a")
    router = Router(
        [row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2)],
        clock=time.clock,
        sleep=time.sleep,
        num_retries=0,
        allowed_fails=0,
        cooldown_time=10,
    )

    async def main() -> list[Route]:
        # all four go to model-a before any answers; the first failure opens its breaker
        return [r for _, r in await asyncio.gather(*(router.chat(chat_request("g")) for _ in range(4)))]

    routes = run(main())
    a = router.deployments("g")[0]
    assert [r.model for r in routes] == ["model-b"] * 4 and a.failures == 4
    assert a.breaker.times_opened == 1  # the three late failures neither re-opened nor extended it
