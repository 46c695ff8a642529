"""Fixtures that run one test body against both limiter backends, Redis for real.

Redis is real and required (``.ci/run`` starts it): a test that needs it fails, never skips, when it
is down. Each test gets a key prefix of its own, deleted afterwards, so tests and xdist workers never
share state. ``LLMSWITCH_TEST_REDIS_URL`` points at another server than the local default.

Windows, periods and lease expiry run on an injected clock: no test sleeps to let time pass.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis
from limits_helpers import REDIS_URL, FakeClock, RedisProcess, RunLimiter

from llmswitch.limits import Limiter
from llmswitch.limits.memory import MemoryLimiter
from llmswitch.limits.redis_limiter import RedisLimiter

T = TypeVar("T")
BACKENDS = ("memory", "redis")


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The shared Redis; fails the test (never skips) when it is down."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc}). Start it (.ci/run starts it) "
            "or set LLMSWITCH_TEST_REDIS_URL.",
            pytrace=False,
        )
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def prefix(redis_server: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    value = f"llmswitch-test:{uuid.uuid4().hex[:12]}"
    yield value
    client = redis.Redis.from_url(redis_server)
    try:
        keys = list(client.scan_iter(match=f"{value}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "redis":
        request.getfixturevalue("redis_server")
    return name


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_limiter(backend: str, request: pytest.FixtureRequest, clock: FakeClock) -> Callable[..., Limiter]:
    """``make_limiter(**options)``: a limiter of this test's backend on the fake clock, not falling back.

    Call it inside the event loop that uses it (Redis connections belong to one loop). The Redis one
    raises rather than degrading, so a Redis failure fails the test instead of passing on memory.
    """
    prefix = request.getfixturevalue("prefix") if backend == "redis" else ""

    def make(**options: Any) -> Limiter:
        options.setdefault("clock", clock)
        if backend == "memory":
            return MemoryLimiter(**options)
        # these tests judge exactness, not how soon Redis answers: a loaded machine may hold a reply past
        # the production 100 ms timeout, which would fail an exactness test for nothing it checks
        options.setdefault("timeout_s", 2.0)
        options.setdefault("deadline_s", 5.0)
        return RedisLimiter(REDIS_URL, prefix=prefix, **options)

    return make


@pytest.fixture
def run_limiter(make_limiter: Callable[..., Limiter]) -> RunLimiter:
    """``run_limiter(body, **options)``: make a limiter, ``await body(limiter)`` in a fresh loop, close it."""

    def run(body: Callable[[Limiter], Awaitable[T]], **options: Any) -> T:
        async def main() -> T:
            async with make_limiter(**options) as limiter:
                return await body(limiter)

        return asyncio.run(main())

    return run


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A started redis-server on a spare port, killed after the test (never the shared one)."""
    server = RedisProcess()
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.thaw()
            server.stop()
