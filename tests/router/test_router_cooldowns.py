"""Cooldowns as LiteLLM documents them: ``allowed_fails`` failures are allowed and the next one cools the
deployment down for ``cooldown_time``; a 429 cools it down at once (for ``cooldown_time``, or the provider's
Retry-After when longer); ``allowed_fails_policy`` sets the allowance per error class; 408 is retried."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from router_harness import FakeTime, chat_request, models_called, row, run

from llmswitch.errors import APIStatusError
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
    upstream.default = Reply()


def pair(up: FakeUpstream, time: FakeTime, **settings: object) -> Router:
    """model-a first (tier 1), model-b behind it (tier 2), on the fake clock."""
    return Router(
        [row(up, "g", "model-a", order=1), row(up, "g", "model-b", order=2)],
        clock=time.clock,
        sleep=time.sleep,
        **settings,  # type: ignore[arg-type]
    )


def served_by(router: Router, n: int = 1) -> list[str]:
    async def main() -> list[str]:
        return [(await router.chat(chat_request("g")))[1].model for _ in range(n)]

    return run(main())


def test_a_429_cools_the_deployment_down_for_cooldown_time(up: FakeUpstream) -> None:
    time = FakeTime()
    up.script(Reply(status=429), model="model-a")  # no hint of how long
    router = pair(up, time, cooldown_time=30, num_retries=0)
    assert served_by(router) == ["model-b"]
    up.reset()
    time.now += 29.5
    assert served_by(router) == ["model-b"]  # still cooling down (it used to be back after 1 s)
    time.now += 0.5
    assert served_by(router) == ["model-a"]
    assert models_called(up) == ["model-b", "model-a"]


def test_a_429_whose_retry_after_is_longer_rests_for_the_retry_after(up: FakeUpstream) -> None:
    time = FakeTime()
    up.script(Reply(status=429, retry_after=45), model="model-a")
    router = pair(up, time, cooldown_time=10, num_retries=0)
    assert served_by(router) == ["model-b"]
    a = router.deployments("g")[0]
    assert a.rest_until - time.now == pytest.approx(45.0)
    assert a.breaker.state == "closed"  # a full quota is not sickness


def test_allowed_fails_n_cools_down_on_failure_n_plus_one(up: FakeUpstream) -> None:
    from llmswitch.config import parse_config

    text = f"""
model_list:
  - model_name: g
    litellm_params: {{model: openai/model-a, api_base: "{up.openai_base}", api_key: sk-a, order: 1}}
  - model_name: g
    litellm_params: {{model: openai/model-b, api_base: "{up.openai_base}", api_key: sk-b, order: 2}}
router_settings: {{num_retries: 0, allowed_fails: 2, cooldown_time: 42}}
"""
    check = parse_config(text, env={})
    assert check.problems == [] and check.config is not None
    time = FakeTime()
    router = Router.from_config(check.config, clock=time.clock, sleep=time.sleep)
    up.script(*[Reply(status=500)] * 3, model="model-a")
    a = router.deployments("g")[0]
    assert served_by(router, 2) == ["model-b"] * 2
    assert a.breaker.state == "closed"  # two failures are allowed
    assert served_by(router) == ["model-b"]
    assert a.breaker.state == "open" and a.breaker.reopens_in() == pytest.approx(42.0)  # the third cools it down
    assert models_called(up) == ["model-a", "model-b"] * 3


def test_a_configured_allowed_fails_counts_failures_within_the_minute_whatever_succeeded_between(
    up: FakeUpstream,
) -> None:
    """LiteLLM: "cooldown model if it fails > allowed_fails calls in a minute"; our default rule (unset)
    would keep a deployment that mostly answers."""
    time = FakeTime()
    script = [Reply(status=500), Reply(text="ok"), Reply(text="ok"), Reply(status=500), Reply(text="ok")]
    up.script(*script, Reply(status=500), model="model-a")
    router = pair(up, time, num_retries=0, allowed_fails=2)
    served_by(router, 6)
    assert router.deployments("g")[0].breaker.state == "open"
    up.reset()
    up.script(*script, Reply(status=500), model="model-a")
    unset = pair(up, time, num_retries=0)
    served_by(unset, 6)
    assert unset.deployments("g")[0].breaker.state == "closed"


def test_allowed_fails_policy_sets_the_allowance_per_error_class(up: FakeUpstream) -> None:
    time = FakeTime()
    up.script(Reply(status=429), Reply(status=429), Reply(status=429), model="model-a")
    router = pair(
        up,
        time,
        num_retries=0,
        allowed_fails_policy={"RateLimitErrorAllowedFails": 2, "InternalServerErrorAllowedFails": 0},
    )
    a = router.deployments("g")[0]
    # counted like any failure: no immediate cooldown, the third 429 opens the breaker
    assert served_by(router, 2) == ["model-b"] * 2 and a.breaker.state == "closed" and a.rest_until == 0.0
    assert served_by(router) == ["model-b"] and a.breaker.state == "open"
    assert models_called(up) == ["model-a", "model-b"] * 3
    # a 500 is allowed none: the first one opens it
    up.reset()
    time.now += 3600
    up.script(Reply(status=500), model="model-a")
    assert served_by(router) == ["model-b"] and a.breaker.state == "open"


@pytest.mark.parametrize(
    ("key", "reply", "opens_after"),
    [
        ("BadRequestErrorAllowedFails", Reply(status=400), None),  # the request's fault: never counted
        ("AuthenticationErrorAllowedFails", Reply(status=401), 2),  # (unset, a refused key opens it at once)
        ("TimeoutErrorAllowedFails", Reply(status=408), 2),
        ("RateLimitErrorAllowedFails", Reply(status=429), 2),
        ("ContentPolicyViolationErrorAllowedFails", Reply(status=400, code="content_policy_violation"), None),
        ("InternalServerErrorAllowedFails", Reply(status=503), 2),
    ],
)
def test_each_allowed_fails_policy_class_is_read(
    up: FakeUpstream, key: str, reply: Reply, opens_after: int | None
) -> None:
    time = FakeTime()
    # the class's allowance (1) wins over the router's (50): the second failure of that class opens it
    router = pair(up, time, num_retries=0, allowed_fails=50, allowed_fails_policy={key: 1})
    a = router.deployments("g")[0]
    up.script(*[reply] * 3, model="model-a")
    opened = None
    for n in range(1, 4):
        try:
            run(router.chat(chat_request("g")))
        except APIStatusError:
            pass
        if a.breaker.state == "open":
            opened = n
            break
        time.now += 10  # past any rest after a 429: only the breaker keeps model-a out
    assert opened == opens_after


def test_a_408_is_retried_as_litellm_does_and_counts_as_a_timeout(up: FakeUpstream) -> None:
    time = FakeTime()
    up.script(Reply(status=408), Reply(text="second time lucky"), model="model-a")
    router = Router([row(up, "g", "model-a")], clock=time.clock, sleep=time.sleep, num_retries=1)
    _, route = run(router.chat(chat_request("g")))
    assert route.attempts == 2 and models_called(up) == ["model-a", "model-a"]
    # TimeoutErrorRetries governs it, like any timeout
    up.reset()
    up.script(Reply(status=408), model="model-a")
    strict = Router(
        [row(up, "g", "model-a")],
        clock=time.clock,
        sleep=time.sleep,
        num_retries=3,
        retry_policy={"TimeoutErrorRetries": 0},
    )
    with pytest.raises(APIStatusError) as info:
        run(strict.chat(chat_request("g")))
    assert info.value.status_code == 408 and models_called(up) == ["model-a"]


def test_disable_cooldowns_still_honours_the_providers_retry_after(up: FakeUpstream) -> None:
    time = FakeTime()
    up.script(Reply(status=429, retry_after=3), model="model-a")
    router = pair(up, time, num_retries=0, cooldown_time=60, disable_cooldowns=True)
    assert served_by(router) == ["model-b"]
    assert router.deployments("g")[0].rest_until - time.now == pytest.approx(3.0)
    up.reset()
    up.script(Reply(status=429), model="model-a")
    time.now += 3
    assert served_by(router) == ["model-b"]
    assert router.deployments("g")[0].rest_until <= time.now  # no hint, no cooldown: back at once
