"""Wildcard deployments serve any model name their pattern matches; what the router keeps per name is
bounded (least recently used names are forgotten), however many names clients make up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from router_harness import FakeTime, chat_request, row, run

from llmswitch.router.router import Router
from llmswitch.router.usage import LocalUsage
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


def wildcard(up: FakeUpstream, **settings: object) -> Router:
    return Router([row(up, "openai/*", "*")], **settings)  # type: ignore[arg-type]


def test_a_hundred_thousand_model_names_keep_the_router_bounded(up: FakeUpstream) -> None:
    router = wildcard(up, max_wildcard_names=1000)
    for i in range(100_000):
        assert router.has(f"openai/made-up-{i}")
    assert len(router._wildcards) == 1000
    assert len(router.health()) == 1000 + 1  # the kept names, and the wildcard row itself
    # the most recent names are the ones kept
    assert router.deployments("openai/made-up-99999")[0].model == "made-up-99999"
    assert {t.model for t in router._wildcards.resolved()} == {f"made-up-{i}" for i in range(99_000, 100_000)}


def test_names_served_through_a_wildcard_leave_no_usage_behind_once_forgotten(up: FakeUpstream) -> None:
    usage = LocalUsage()
    router = wildcard(up, max_wildcard_names=50, usage=usage)

    async def main() -> None:
        sem = asyncio.Semaphore(20)

        async def one(i: int) -> None:
            async with sem:
                await router.chat(chat_request(f"openai/m-{i}"))

        await asyncio.gather(*(one(i) for i in range(2000)))

    run(main())
    assert len(up.requests) == 2000
    assert len(router._wildcards) == 50
    # every request counted against its own name's deployment; the forgotten ones' counts went with them
    # (a few in flight while evicted may come back: the next sweep takes those)
    assert len(usage) <= 50 + 20


def test_a_name_in_use_keeps_its_state_while_others_come_and_go(up: FakeUpstream) -> None:
    time = FakeTime()
    router = Router(
        [row(up, "openai/*", "*")], clock=time.clock, sleep=time.sleep, max_wildcard_names=10, num_retries=0
    )
    hot = router.deployments("openai/hot")[0]
    hot.breaker.trip()
    for i in range(100):
        router.has(f"openai/cold-{i}")
        router.has("openai/hot")  # used all along: never the least recent
    assert router.deployments("openai/hot")[0] is hot and hot.breaker.state == "open"


def test_usage_of_deployments_long_idle_is_swept() -> None:
    now = [0.0]
    usage = LocalUsage(lambda: now[0])
    for i in range(100_000):
        usage.add(f"dep-{i}", requests=1)
        now[0] += 0.01  # 1000 s in all: ~6000 new keys a minute
    # only what counts in the window (this minute and the last) is kept, plus at most one sweep's growth
    assert len(usage) <= 3 * 12_000
    assert usage.used("dep-99999") == (1.0, 0.0)
