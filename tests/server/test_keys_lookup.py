"""A key this instance does not hold yet is looked up in the store before it is refused: once per key
however many requests bring it, never more than the lookup rate allows, and not again for a while when
the store does not know it either. The store is the real embedded SQLite; "another instance" is a key
written straight to it, which this cache only learns of by a refresh or a lookup."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from gateway_harness import MASTER_KEY, ServedGateway, dialect_error, gateway_config

from llmswitch.errors import AuthenticationError
from llmswitch.server.auth import KeyCache, hash_token
from llmswitch.store import KeyRecord, Store, generate_key, open_store
from llmswitch.testing import FakeUpstream

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_reads(store: Store) -> list[str]:
    """Every ``get_key`` the store answers from now on, by hash (the real store still answers)."""
    reads: list[str] = []
    real = store.get_key

    async def get_key(token_hash: str) -> KeyRecord | None:
        reads.append(token_hash)
        return await real(token_hash)

    store.get_key = get_key  # type: ignore[method-assign]
    return reads


def with_cache(tmp_path: Path, body: Callable[[Store, KeyCache, Clock], Awaitable[T]], **options: Any) -> T:
    async def main() -> T:
        async with open_store(f"sqlite:///{tmp_path / 'keys.db'}") as store:
            clock = Clock()
            cache = KeyCache(store, MASTER_KEY, monotonic=clock, **options)
            await cache.refresh()  # what start() does, without the background loop
            return await body(store, cache, clock)

    return asyncio.run(main())


def test_a_key_made_elsewhere_is_known_after_one_lookup(tmp_path: Path) -> None:
    async def body(store: Store, cache: KeyCache, clock: Clock) -> None:
        key = generate_key()
        await store.create_key(KeyRecord.for_key(key, key_alias="elsewhere"))
        with pytest.raises(AuthenticationError):
            cache.authenticate(key)  # not refreshed: unknown here
        reads = counting_reads(store)
        assert cache.lookup_needed(key)
        await asyncio.gather(*(cache.lookup(key) for _ in range(60)))
        assert len(reads) == 1  # sixty requests at once, one store read
        assert cache.authenticate(key).record.key_alias == "elsewhere"
        await cache.lookup(key)
        assert len(reads) == 1

    with_cache(tmp_path, body)


def test_a_blocked_key_found_by_lookup_is_still_refused(tmp_path: Path) -> None:
    async def body(store: Store, cache: KeyCache, clock: Clock) -> None:
        key = generate_key()
        await store.create_key(KeyRecord.for_key(key, blocked=True))
        await cache.lookup(key)
        with pytest.raises(AuthenticationError, match="blocked"):
            cache.authenticate(key)

    with_cache(tmp_path, body)


def test_a_garbage_key_is_read_once_per_negative_ttl(tmp_path: Path) -> None:
    async def body(store: Store, cache: KeyCache, clock: Clock) -> None:
        reads = counting_reads(store)
        for _ in range(1000):
            await cache.lookup("sk-not-a-key-of-ours")
            clock.now += 0.001
        assert len(reads) == 1  # a second has passed: the store is not asked again within the TTL
        clock.now += 5.0
        await cache.lookup("sk-not-a-key-of-ours")
        assert len(reads) == 2

    with_cache(tmp_path, body, negative_ttl_s=5.0)


def test_random_garbage_keys_cost_a_bounded_number_of_store_reads(tmp_path: Path) -> None:
    async def body(store: Store, cache: KeyCache, clock: Clock) -> None:
        reads = counting_reads(store)
        for _ in range(1000):  # a thousand different made-up keys within one second
            await cache.lookup(secrets.token_urlsafe(24))
            clock.now += 0.001
        assert len(reads) <= 50 + 50  # the burst, and a second's worth at 50 a second
        clock.now += 10
        for _ in range(1000):  # the same, all at one instant
            await cache.lookup(secrets.token_urlsafe(24))
        assert len(reads) <= 100 + 50

    with_cache(tmp_path, body, lookup_rate=50.0)


def test_the_negative_cache_is_bounded(tmp_path: Path) -> None:
    async def body(store: Store, cache: KeyCache, clock: Clock) -> None:
        for i in range(30):
            await cache.lookup(f"sk-garbage-{i}")
        assert len(cache._missing) == 10  # least recently seen dropped first
        reads = counting_reads(store)
        await cache.lookup("sk-garbage-29")
        await cache.lookup("sk-garbage-0")
        assert reads == [hash_token("sk-garbage-0")]

    with_cache(tmp_path, body, negative_size=10, lookup_rate=1000.0)


def test_a_lookup_never_brings_back_a_key_removed_meanwhile(tmp_path: Path) -> None:
    async def body(store: Store, cache: KeyCache, clock: Clock) -> None:
        key = generate_key()
        await store.create_key(KeyRecord.for_key(key))
        real = store.get_key
        gate = asyncio.Event()

        async def slow_get_key(token_hash: str) -> KeyRecord | None:
            rec = await real(token_hash)  # read before the delete ...
            await gate.wait()
            return rec

        store.get_key = slow_get_key  # type: ignore[method-assign]
        looking = asyncio.ensure_future(cache.lookup(key))
        await asyncio.sleep(0)
        await store.delete_keys([hash_token(key)])
        await cache.refresh()  # ... and the refresh that applied the delete ran before it returned
        gate.set()
        await looking
        with pytest.raises(AuthenticationError, match="invalid API key"):
            cache.authenticate(key)

    with_cache(tmp_path, body)


def test_garbage_keys_through_the_gateway_cost_bounded_store_reads(upstream: FakeUpstream, tmp_path: Path) -> None:
    with ServedGateway(gateway_config(upstream, str(tmp_path / "keys.db"))) as gw:
        store = gw.gateway.store
        assert store is not None
        reads = counting_reads(store)
        started = time.monotonic()
        statuses = set()
        for _ in range(1000):
            r = gw.call("GET", "/v1/models", key=f"sk-{secrets.token_urlsafe(24)}")
            statuses.add(r.status)
        elapsed = time.monotonic() - started
        assert statuses == {401}
        kind, _ = dialect_error("openai", r)
        assert kind == "authentication_error"
        # the default rate: a burst of 50, then 50 a second
        assert len(reads) <= 50 + 50 * elapsed + 1, (len(reads), elapsed)


def test_a_key_found_by_lookup_and_deleted_before_any_refresh_is_forgotten(tmp_path: Path) -> None:
    # a fresh database: the cache's first refreshes are full loads, which list no deletions
    async def body(store: Store, cache: KeyCache, clock: Clock) -> None:
        key = generate_key()
        await store.create_key(KeyRecord.for_key(key))
        await cache.lookup(key)
        assert cache.authenticate(key).record is not None
        await store.delete_keys([hash_token(key)])
        await cache.refresh()
        with pytest.raises(AuthenticationError, match="invalid API key"):
            cache.authenticate(key)

    with_cache(tmp_path, body)


def test_a_refresh_that_did_not_see_the_key_does_not_drop_a_lookup(tmp_path: Path) -> None:
    # a refresh whose snapshot predates the key completes while the lookup is reading it
    async def body(store: Store, cache: KeyCache, clock: Clock) -> None:
        await store.create_key(KeyRecord.for_key(generate_key()))  # the cache's cursor is past 0 after this
        await cache.refresh()
        key = generate_key()
        await store.create_key(KeyRecord.for_key(key, key_alias="new"))
        real = store.get_key
        gate = asyncio.Event()

        async def slow_get_key(token_hash: str) -> KeyRecord | None:
            rec = await real(token_hash)
            await gate.wait()
            return rec

        store.get_key = slow_get_key  # type: ignore[method-assign]
        looking = asyncio.ensure_future(cache.lookup(key))
        await asyncio.sleep(0)
        cache._cursor = await _cursor_now(store)  # as if the refresh had read just before the key was made
        await cache.refresh()
        gate.set()
        await looking
        assert cache.authenticate(key).record.key_alias == "new"

    with_cache(tmp_path, body)


async def _cursor_now(store: Store) -> int:
    _, _, cursor = await store.keys_changed_since(0)
    return cursor
