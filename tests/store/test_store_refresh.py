"""Incremental refresh (``keys_changed_since``) and spend, the same suite on every backend."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from llmswitch.store import KeyRecord, Store, generate_key, hash_key, open_store


def new_record(**fields: Any) -> KeyRecord:
    return KeyRecord.for_key(generate_key(), **fields)


def test_refresh_sees_creates_updates_spend_and_deletes(store_url: str, run_store: Callable[..., Any]) -> None:
    a, b, c, d = (new_record(user_id=name) for name in "abcd")

    async def body(store: Store) -> None:
        empty, deleted, cursor = await store.keys_changed_since(0)
        assert (empty, deleted) == ([], [])
        for rec in (a, b, c):
            await store.create_key(rec)

        changed, deleted, cursor = await store.keys_changed_since(cursor)
        assert {r.token_hash for r in changed} == {a.token_hash, b.token_hash, c.token_hash}
        assert deleted == []
        assert await store.keys_changed_since(cursor) == ([], [], cursor)

        await store.update_key(a.token_hash, rpm_limit=7)
        await store.delete_keys([b.token_hash])
        await store.create_key(d)
        changed, deleted, after = await store.keys_changed_since(cursor)
        assert after > cursor
        assert {r.token_hash: r.rpm_limit for r in changed} == {a.token_hash: 7, d.token_hash: None}
        assert deleted == [b.token_hash]
        cursor = after

        await store.add_key_spend(c.token_hash, 0.5)
        changed, deleted, cursor = await store.keys_changed_since(cursor)
        assert [(r.token_hash, r.spend) for r in changed] == [(c.token_hash, 0.5)]
        assert deleted == []

        # deleted and created again: live again, and no stale tombstone deletes it on refresh
        await store.delete_keys([d.token_hash])
        await store.create_key(d)
        changed, deleted, cursor = await store.keys_changed_since(cursor)
        assert [r.token_hash for r in changed] == [d.token_hash] and deleted == []

        # a full load is every live key and no deletions
        everything, deleted, full_cursor = await store.keys_changed_since(0)
        assert {r.token_hash for r in everything} == {a.token_hash, c.token_hash, d.token_hash}
        assert deleted == [] and full_cursor == cursor

    run_store(store_url, body)


def test_failed_writes_do_not_move_the_cursor_past_anything(store_url: str, run_store: Callable[..., Any]) -> None:
    rec = new_record()

    async def body(store: Store) -> None:
        await store.create_key(rec)
        _, _, cursor = await store.keys_changed_since(0)
        assert await store.update_key(hash_key("sk-missing"), rpm_limit=1) is None
        assert await store.add_key_spend(hash_key("sk-missing"), 1.0) is None
        assert await store.delete_keys([hash_key("sk-missing")]) == 0
        changed, deleted, _ = await store.keys_changed_since(cursor)
        assert (changed, deleted) == ([], [])

    run_store(store_url, body)


def test_a_polling_replica_converges_under_concurrent_writers(store_url: str) -> None:
    """Two gateways write at random while a third keeps an in-memory copy: the copy ends up exact.

    This is what a change sequence numbered at commit order guarantees and wall-clock timestamps
    from several hosts do not: no update or deletion is ever skipped by the poller.
    """

    async def writer(store: Store, seed: int, hashes: list[str]) -> None:
        rng = random.Random(seed)
        for step in range(60):
            live = [h for h in hashes if h]
            action = rng.random()
            if action < 0.3 or not live:
                rec = new_record(user_id=f"w{seed}")
                await store.create_key(rec)
                hashes.append(rec.token_hash)
            elif action < 0.6:
                await store.update_key(rng.choice(live), rpm_limit=step, metadata={"by": seed, "step": step})
            elif action < 0.85:
                await store.add_key_spend(rng.choice(live), 0.25)
            else:
                victim = rng.choice(live)
                await store.delete_keys([victim])
                hashes[hashes.index(victim)] = ""

    async def main() -> None:
        async with open_store(store_url) as one, open_store(store_url) as two, open_store(store_url) as reader:
            replica: dict[str, KeyRecord] = {}
            cursor = 0
            done = asyncio.Event()

            async def poll() -> None:
                nonlocal cursor
                changed, deleted, cursor = await reader.keys_changed_since(cursor)
                replica.update((r.token_hash, r) for r in changed)
                for token_hash in deleted:
                    replica.pop(token_hash, None)

            async def poller() -> None:
                while not done.is_set():
                    await poll()
                    await asyncio.sleep(0)

            polling = asyncio.create_task(poller())
            writers = [writer(store, seed, []) for seed, store in enumerate((one, two, one, two))]
            await asyncio.gather(*writers)
            done.set()
            await polling
            await poll()
            truth = {r.token_hash: r for r in await reader.list_keys(limit=10_000)}
            assert replica == truth
            assert truth  # the writers left some keys alive

    asyncio.run(main())


def test_concurrent_spend_from_many_tasks_adds_up_exactly(store_url: str) -> None:
    rec = new_record(max_budget=100.0)
    # binary fractions, so the exact total does not depend on the order of the additions
    amounts = [0.125, 0.25, 1.5, 0.0625] * 50

    async def main() -> None:
        async with open_store(store_url) as one, open_store(store_url) as two:
            await one.create_key(rec)
            results = await asyncio.gather(
                *(
                    store.add_key_spend(rec.token_hash, amount)
                    for store, amount in zip([one, two] * 100, amounts, strict=True)
                )
            )
            assert all(isinstance(r, float) for r in results)
            final = await one.get_key(rec.token_hash)
            assert final is not None and final.spend == sum(amounts) == 96.875
            assert max(r for r in results if r is not None) == 96.875
            # each task saw a distinct running total: no two increments read the same old value
            assert len(set(results)) == len(amounts)

    asyncio.run(main())


def test_spend_rejects_amounts_that_would_poison_the_total(store_url: str, run_store: Callable[..., Any]) -> None:
    rec = new_record()

    async def body(store: Store) -> None:
        await store.create_key(rec)
        for bad in (float("nan"), float("inf"), "1.0", True):
            try:
                await store.add_key_spend(rec.token_hash, bad)  # type: ignore[arg-type]
            except ValueError as exc:
                assert "finite number" in str(exc)
            else:
                raise AssertionError(f"{bad!r} was accepted")
        assert await store.add_key_spend(rec.token_hash, 2) == 2.0
        got = await store.get_key(rec.token_hash)
        assert got is not None and got.spend == 2.0

    run_store(store_url, body)
