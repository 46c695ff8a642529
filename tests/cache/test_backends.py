"""The exact cache on each backend: memory (LRU, expiry), SQLite, real Redis; a failing backend is a miss."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis
from redis_servers import REDIS_URL, OwnRedis

from llmswitch import ir
from llmswitch.cache.exact import ExactCache
from llmswitch.cache.replay import new_answer
from llmswitch.cache.settings import CacheSettings, settings_from_params


def answer(text: str = "hello") -> object:
    resp = ir.Response(id="r", model="m", choices=[ir.Choice(parts=[ir.TextPart(text)], finish_reason="stop")])
    return new_answer(resp, "g", None)


K1, K2, K3 = "1" * 64, "2" * 64, "3" * 64


def test_memory_keeps_the_most_recently_used_and_expires() -> None:
    async def main() -> None:
        cache = ExactCache(CacheSettings(max_entries=2))
        await cache.put(K1, answer("one"), 60)  # type: ignore[arg-type]
        await cache.put(K2, answer("two"), 60)  # type: ignore[arg-type]
        assert await cache.get(K1) is not None  # K1 is now the most recent
        await cache.put(K3, answer("three"), 60)  # type: ignore[arg-type]
        assert await cache.get(K2) is None
        found = await cache.get(K1)
        assert found is not None and found.response.choices[0].text == "one"
        await cache.put(K2, answer(), 0.05)  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        assert await cache.get(K2) is None

    asyncio.run(main())


def test_an_answer_larger_than_the_limit_is_not_stored() -> None:
    async def main() -> None:
        cache = ExactCache(CacheSettings(max_entry_bytes=1000))
        assert not await cache.put(K1, answer("x" * 5000), 60)  # type: ignore[arg-type]
        assert await cache.get(K1) is None

    asyncio.run(main())


def test_sqlite_survives_a_new_process_object(tmp_path: object) -> None:
    settings = CacheSettings(type="disk", disk_cache_dir=str(tmp_path))

    async def write() -> None:
        cache = ExactCache(settings)
        assert await cache.put(K1, answer("kept"), 60)  # type: ignore[arg-type]
        await cache.aclose()

    async def read() -> None:
        cache = ExactCache(settings)
        found = await cache.get(K1)
        assert found is not None and found.response.choices[0].text == "kept"
        assert await cache.delete([K1]) == 1
        assert await cache.get(K1) is None
        await cache.aclose()

    asyncio.run(write())
    asyncio.run(read())


def test_redis_stores_under_the_namespace_and_flush_leaves_other_keys(namespace: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    client.set(f"{namespace}:not-the-cache", b"keep")

    async def main() -> None:
        cache = ExactCache(settings_from_params({"type": "redis", "url": REDIS_URL, "namespace": namespace}))
        assert await cache.put(K1, answer("r"), 60)  # type: ignore[arg-type]
        assert client.exists(f"{namespace}:llmswitch:cache:{K1}")
        assert 0 < client.pttl(f"{namespace}:llmswitch:cache:{K1}") <= 60_000
        found = await cache.get(K1)
        assert found is not None and found.response.choices[0].text == "r"
        assert await cache.flush() == 1
        assert await cache.get(K1) is None
        await cache.aclose()

    asyncio.run(main())
    assert client.get(f"{namespace}:not-the-cache") == b"keep"
    client.close()


@pytest.mark.parametrize("garbage", [b"", b"not json", b"\xff\xfe", b'{"v":1,"response":"x"}', b"[1,2,3]"])
def test_redis_returning_garbage_is_a_miss(namespace: str, garbage: bytes) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    client.set(f"{namespace}:llmswitch:cache:{K1}", garbage)
    client.close()

    async def main() -> None:
        cache = ExactCache(settings_from_params({"type": "redis", "url": REDIS_URL, "namespace": namespace}))
        assert await cache.get(K1) is None
        assert cache.available
        await cache.aclose()

    asyncio.run(main())


def test_a_redis_gone_away_is_a_miss_in_bounded_time_then_skipped(
    own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        params = {"type": "redis", "url": own_redis.url, "timeout": 0.2, "default_in_memory_ttl": 0}
        cache = ExactCache(settings_from_params(params))
        assert await cache.put(K1, answer(), 60)  # type: ignore[arg-type]
        assert await cache.get(K1) is not None
        own_redis.stop()
        t0 = time.perf_counter()
        assert await cache.get(K1) is None
        assert time.perf_counter() - t0 < 1.0
        assert not cache.available
        t0 = time.perf_counter()
        for _ in range(100):  # while it is away, not asked at all
            assert await cache.get(K1) is None
        assert time.perf_counter() - t0 < 0.05
        assert not await cache.put(K2, answer(), 60)  # type: ignore[arg-type]
        await cache.aclose()

    with caplog.at_level(logging.WARNING, logger="llmswitch.cache"):
        asyncio.run(main())
    assert sum("not answering" in r.getMessage() for r in caplog.records) == 1


def test_a_redis_that_accepts_and_never_answers_is_a_miss_within_the_timeout() -> None:
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)  # read nothing, answer nothing
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]

    async def main() -> None:
        cache = ExactCache(
            settings_from_params({"type": "redis", "url": f"redis://127.0.0.1:{port}/0", "timeout": 0.1})
        )
        t0 = time.perf_counter()
        assert await cache.get(K1) is None
        assert time.perf_counter() - t0 < 0.5
        await cache.aclose()

    try:
        asyncio.run(main())
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


def test_entries_are_kept_near_for_a_while_so_repeated_hits_skip_redis(own_redis: OwnRedis) -> None:
    async def main() -> None:
        settings = settings_from_params({"type": "redis", "url": own_redis.url, "default_in_memory_ttl": 0.3})
        writer, reader = ExactCache(settings), ExactCache(settings)  # two gateways on one Redis
        assert await writer.put(K1, answer("near"), 60)  # type: ignore[arg-type]
        assert await reader.get(K1) is not None  # from Redis; now near the reader too
        own_redis.stop()
        found = await reader.get(K1)  # Redis is away: the near copy answers
        assert found is not None and found.response is not None and found.response.choices[0].text == "near"
        await asyncio.sleep(0.35)
        assert await reader.get(K1) is None  # the near copy lived default_in_memory_ttl seconds
        await writer.aclose()
        await reader.aclose()

    asyncio.run(main())
