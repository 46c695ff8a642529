"""The Redis cache's key directory: a miss it knows of costs no round trip; nothing it gets wrong serves a
wrong answer or loses a hit for longer than the news takes to arrive. Each test has a redis-server of its own,
so the commands counted are the test's only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis
from redis_servers import OwnRedis

from llmswitch import ir
from llmswitch.cache.backends.redis import RedisBackend
from llmswitch.cache.exact import ExactCache
from llmswitch.cache.replay import Answer, new_answer
from llmswitch.cache.settings import settings_from_params


def answer(text: str = "hello") -> Answer:
    resp = ir.Response(id="r", model="m", choices=[ir.Choice(parts=[ir.TextPart(text)], finish_reason="stop")])
    return new_answer(resp, "g", None)


def key(n: int) -> str:
    return f"{n:064x}"


def cache_on(url: str, **params: object) -> ExactCache:
    settings = settings_from_params(
        {"type": "redis", "url": url, "namespace": "t", "default_in_memory_ttl": 0, **params}
    )
    return ExactCache(settings)


def directory_of(cache: ExactCache) -> object:
    backend = cache.backend
    assert isinstance(backend, RedisBackend) and backend.directory is not None
    return backend.directory


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = condition()
        if not isinstance(done, bool):
            done = await done
        if done:
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def ready(cache: ExactCache) -> None:
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    backend.absent(key(0))  # starts the follower
    await until(lambda: backend.directory is not None and backend.directory.authoritative)


def gets(server: OwnRedis) -> int:
    stats = redis.Redis(port=server.port).info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


def test_misses_the_directory_knows_of_never_reach_redis(own_redis: OwnRedis) -> None:
    async def main() -> None:
        cache = cache_on(own_redis.url)
        await ready(cache)
        assert await cache.put(key(1), answer("one"), 60)
        before = gets(own_redis)
        for n in range(2, 52):
            assert await cache.get(key(n)) is None
        assert gets(own_redis) == before  # fifty misses, no GET
        found = await cache.get(key(1))
        assert found is not None and found.response is not None and found.response.choices[0].text == "one"
        assert gets(own_redis) == before + 1  # a key it lists is read from Redis
        await cache.aclose()

    asyncio.run(main())


def test_without_the_directory_every_miss_asks_redis(own_redis: OwnRedis) -> None:
    async def main() -> None:
        cache = cache_on(own_redis.url, key_directory=False)
        assert isinstance(cache.backend, RedisBackend) and cache.backend.directory is None
        before = gets(own_redis)
        for n in range(10):
            assert await cache.get(key(n)) is None
        assert gets(own_redis) == before + 10
        await cache.aclose()

    asyncio.run(main())


def test_a_key_another_process_stores_is_found_by_one_following_and_one_starting_later(own_redis: OwnRedis) -> None:
    async def main() -> None:
        writer, follower = cache_on(own_redis.url), cache_on(own_redis.url)
        await ready(writer)
        await ready(follower)
        assert await follower.get(key(7)) is None
        assert await writer.put(key(7), answer("seven"), 600)
        # the follower learns of it from the stream within a read or two
        await until(_found(follower, key(7)))
        late = cache_on(own_redis.url)
        await ready(late)  # loaded from the sorted set of live keys
        assert await late.get(key(7)) is not None
        for cache in (writer, follower, late):
            await cache.aclose()

    asyncio.run(main())


def _found(cache: ExactCache, k: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await cache.get(k) is not None

    return check


def test_a_per_request_ttl_longer_than_the_stream_keeps_is_still_known(own_redis: OwnRedis) -> None:
    async def main() -> None:
        writer = cache_on(own_redis.url, ttl=1)
        assert await writer.put(key(3), answer("long"), 3600)  # longer than the cache's own TTL
        client = redis.Redis(port=own_redis.port)
        client.delete("t:llmswitch:cache:keys:log")  # the news is gone; the sorted set still lists it
        late = cache_on(own_redis.url, ttl=1)
        await ready(late)
        assert await late.get(key(3)) is not None
        await writer.aclose()
        await late.aclose()

    asyncio.run(main())


def test_expired_keys_are_misses_without_a_round_trip(own_redis: OwnRedis) -> None:
    async def main() -> None:
        cache = cache_on(own_redis.url)
        await ready(cache)
        assert await cache.put(key(4), answer(), 0.2)
        await asyncio.sleep(0.4)
        before = gets(own_redis)
        assert await cache.get(key(4)) is None
        assert gets(own_redis) == before
        await cache.aclose()

    asyncio.run(main())


def test_an_entry_gone_from_redis_behind_its_back_is_an_ordinary_miss(own_redis: OwnRedis) -> None:
    async def main() -> None:
        cache = cache_on(own_redis.url)
        await ready(cache)
        assert await cache.put(key(5), answer(), 600)
        redis.Redis(port=own_redis.port).delete("t:llmswitch:cache:" + key(5))  # evicted, say
        assert await cache.get(key(5)) is None
        assert await cache.put(key(5), answer("again"), 600)
        assert await cache.get(key(5)) is not None
        await cache.aclose()

    asyncio.run(main())


def test_more_live_entries_than_it_keeps_makes_every_lookup_ask_redis(own_redis: OwnRedis) -> None:
    async def main() -> None:
        writer = cache_on(own_redis.url, key_directory_size=3)
        for n in range(10, 15):
            assert await writer.put(key(n), answer(str(n)), 600)
        late = cache_on(own_redis.url, key_directory_size=3)
        backend = late.backend
        assert isinstance(backend, RedisBackend) and backend.directory is not None
        backend.absent(key(0))
        assert await asyncio.to_thread(backend.directory.wait_loaded, 10)
        assert not backend.directory.authoritative
        for n in range(10, 15):  # every one found, through Redis
            assert await late.get(key(n)) is not None
        before = gets(own_redis)
        assert await late.get(key(99)) is None
        assert gets(own_redis) == before + 1
        await writer.aclose()
        await late.aclose()

    asyncio.run(main())


def test_flush_empties_it_and_new_entries_are_found_again(own_redis: OwnRedis) -> None:
    async def main() -> None:
        cache = cache_on(own_redis.url)
        await ready(cache)
        for n in range(20, 23):
            assert await cache.put(key(n), answer(), 600)
        assert await cache.flush() == 3  # the entries; the directory's own keys go too, uncounted
        assert redis.Redis(port=own_redis.port).keys("t:*") == []
        assert await cache.get(key(20)) is None
        assert await cache.put(key(21), answer("back"), 600)
        other = cache_on(own_redis.url)
        await ready(other)
        assert await other.get(key(21)) is not None
        await cache.aclose()
        await other.aclose()

    asyncio.run(main())


def test_redis_gone_the_directory_steps_aside_and_returns_when_redis_does(own_redis: OwnRedis) -> None:
    async def main() -> None:
        cache = cache_on(own_redis.url, timeout=0.1)
        await ready(cache)
        directory = directory_of(cache)
        assert await cache.put(key(30), answer(), 600)
        port = own_redis.port
        own_redis.stop()
        await until(lambda: not directory.authoritative)  # type: ignore[attr-defined]
        started = time.monotonic()
        assert await cache.get(key(31)) is None  # a miss within the cache's timeout, never a hang
        assert time.monotonic() - started < 5
        restarted = OwnRedis(port=port)
        try:
            # a new, empty Redis: the directory reloads, and what was listed before is not assumed
            await until(lambda: directory.authoritative)  # type: ignore[attr-defined]
            await until(_stored(cache, key(32)))
            assert await cache.get(key(32)) is not None
        finally:
            await cache.aclose()
            restarted.stop()

    asyncio.run(main())


def _stored(cache: ExactCache, k: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:  # the cache pauses a failed Redis for a while: store until it takes it
        return await cache.put(k, answer("after"), 600) and await cache.get(k) is not None

    return check
