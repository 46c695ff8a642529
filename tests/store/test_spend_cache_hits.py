"""A cache hit's spend log keeps what it saved (migration 12), on every backend, and adds nothing to spend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from llmswitch.store import KeyRecord, SpendRecord, Store, generate_key, hash_key
from llmswitch.store.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS

RunStore = Callable[..., Any]
T0 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def test_both_backends_have_the_same_latest_version() -> None:
    assert SQLITE_MIGRATIONS[-1].version == POSTGRES_MIGRATIONS[-1].version
    assert SQLITE_MIGRATIONS[-1].name == POSTGRES_MIGRATIONS[-1].name


def test_a_hit_is_stored_with_what_it_saved(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        key = generate_key()
        h = hash_key(key)
        await store.create_key(KeyRecord.for_key(key))
        miss = SpendRecord(request_id="miss-1", key_hash=h, cost=0.0021, time=T0)
        hit = SpendRecord(request_id="hit-1", key_hash=h, cost=0.0, cache_hit=True, cache_saved_cost=0.0021, time=T0)
        assert await store.insert_spend_logs([miss, hit]) == 2
        rows = {r.request_id: r for r in await store.list_spend_logs(key_hash=h)}
        assert rows["hit-1"].cache_hit and rows["hit-1"].cache_saved_cost == 0.0021
        assert not rows["miss-1"].cache_hit and rows["miss-1"].cache_saved_cost is None
        assert (await store.get_key(h)).spend == 0.0021  # type: ignore[union-attr]

    run_store(store_url, body)
