"""Spend batches on PostgreSQL from several instances at once: exact totals, no deadlock, and no key
renumbered for the key caches but those with a soft budget."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from llmswitch.store import KeyRecord, SpendRecord, Store, generate_key, open_store


def test_concurrent_batches_on_the_same_keys_add_up_exactly(postgres_url: str, run_store: Callable[..., Any]) -> None:
    keys = [KeyRecord.for_key(generate_key()) for _ in range(6)]

    async def body(store: Store) -> None:
        for rec in keys:
            await store.create_key(rec)
        # four "instances" (stores of their own), each batch touching the keys in its own order
        others = [open_store(postgres_url) for _ in range(4)]
        for other in others:
            await other.open()
        try:

            async def ship(i: int, other: Store) -> None:
                rng = random.Random(i)
                for b in range(15):
                    order = rng.sample(keys, len(keys))
                    await other.insert_spend_logs(
                        [
                            SpendRecord(request_id=f"r{i}-{b}-{n}", key_hash=rec.token_hash, cost=0.001)
                            for n, rec in enumerate(order * 3)
                        ]
                    )

            await asyncio.gather(*(ship(i, other) for i, other in enumerate(others)))
        finally:
            for other in others:
                await other.close()
        for rec in keys:
            stored = await store.get_key(rec.token_hash)
            assert stored is not None and round(stored.spend, 9) == round(4 * 15 * 3 * 0.001, 9)

    run_store(postgres_url, body)


def test_a_batch_renumbers_only_the_keys_with_a_soft_budget(postgres_url: str, run_store: Callable[..., Any]) -> None:
    plain = KeyRecord.for_key(generate_key())
    soft = KeyRecord.for_key(generate_key(), soft_budget=0.01)

    async def body(store: Store) -> None:
        for rec in (plain, soft):
            await store.create_key(rec)
        _, _, cursor = await store.keys_changed_since(0)

        def records(prefix: str, *keys: KeyRecord) -> list[SpendRecord]:
            return [
                SpendRecord(request_id=f"{prefix}-{rec.token_hash[:8]}", key_hash=rec.token_hash, cost=0.004)
                for rec in keys
            ]

        # spend alone is nothing the key caches need: no key is numbered again, the counter stays
        assert await store.insert_spend_logs(records("a", plain)) == 1
        assert await store.keys_changed_since(cursor) == ([], [], cursor)
        # a key with a soft budget is: each instance's cache logs its crossing when it sees its spend
        assert await store.insert_spend_logs(records("b", plain, soft)) == 2
        changed, _, cursor = await store.keys_changed_since(cursor)
        assert [(r.token_hash, round(r.spend, 9)) for r in changed] == [(soft.token_hash, 0.004)]
        for rec, spent in ((plain, 0.008), (soft, 0.004)):
            stored = await store.get_key(rec.token_hash)
            assert stored is not None and round(stored.spend, 9) == spent

    run_store(postgres_url, body)
