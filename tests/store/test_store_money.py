"""Money in the store adds up exactly, on every backend: a key's, a user's and a team's spend, the sums of
spend logs, and a database migrated from binary floats (migration 5) keeps its amounts."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from old_schema import write_keys_as_of_old_schema, write_subjects_as_of_old_schema

from llmswitch.store import KeyRecord, SpendRecord, Store, SubjectRecord, generate_key, hash_key, open_store
from llmswitch.store.migrations import SQLITE_MIGRATIONS

RunStore = Callable[..., Any]
T0 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


LATEST = SQLITE_MIGRATIONS[-1].version


def test_ten_half_cents_are_five_cents_everywhere(store_url: str, run_store: RunStore) -> None:
    # in binary floats 0.005 added ten times is 0.049999999999999996, which a $0.05 budget does not refuse
    async def body(store: Store) -> None:
        key = generate_key()
        h = hash_key(key)
        await store.create_key(KeyRecord.for_key(key, max_budget=0.05))
        await store.create_subject(SubjectRecord(kind="team", id="t-money", max_budget=0.05))
        await store.create_subject(SubjectRecord(kind="user", id="u-money"))
        for i in range(10):  # one batch each, as the shipper sends them when traffic is light
            record = SpendRecord(
                request_id=f"half-cent-{i}", key_hash=h, team_id="t-money", user_id="u-money", cost=0.005,
                time=T0 + timedelta(seconds=i),
            )  # fmt: skip
            assert await store.insert_spend_logs([record]) == 1
        rec = await store.get_key(h)
        assert rec is not None and rec.spend == 0.05 and rec.max_budget == 0.05
        for kind, ident in (("team", "t-money"), ("user", "u-money")):
            sub = await store.get_subject(kind, ident)  # type: ignore[arg-type]
            assert sub is not None and sub.spend == 0.05
        assert await store.spend_since("key_hash", h, T0) == 0.05
        assert await store.spend_since("team_id", "t-money", T0) == 0.05
        [day] = await store.daily_spend("key")
        assert day.cost == 0.05
        # one batch of ten: the per-key totals of a batch are exact as well
        batch = [SpendRecord(request_id=f"batch-{i}", key_hash=h, cost=0.1, time=T0) for i in range(3)]
        assert await store.insert_spend_logs(batch) == 3
        assert (await store.get_key(h)).spend == 0.35  # type: ignore[union-attr]
        assert await store.add_key_spend(h, 0.2) == 0.55
        assert await store.add_subject_spend("team", "t-money", 0.1) == 0.15

    run_store(store_url, body)


def test_spend_set_by_an_admin_is_kept_as_written(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        key = generate_key()
        await store.create_key(KeyRecord.for_key(key, max_budget=0.1, spend=0.3))
        rec = await store.update_key(hash_key(key), spend=0.1, max_budget=123456.789012345)
        assert rec is not None and rec.spend == 0.1 and rec.max_budget == 123456.789012345
        assert await store.add_key_spend(hash_key(key), 0.2) == 0.3  # not 0.30000000000000004

    run_store(store_url, body)


def test_a_version_4_database_keeps_its_amounts_through_migration_5(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    drifted = 0.1 + 0.2  # 0.30000000000000004, as float additions left it

    async def main() -> None:
        store = open_store(store_url)
        await store.open()
        try:
            backend = sys.modules[type(store).__module__]
            name = "SQLITE_MIGRATIONS" if hasattr(backend, "SQLITE_MIGRATIONS") else "POSTGRES_MIGRATIONS"
            monkeypatch.setattr(backend, name, getattr(backend, name)[:4])
            assert await store.migrate() == [1, 2, 3, 4]
            monkeypatch.undo()
            key = KeyRecord.for_key(generate_key(), max_budget=2.5, spend=drifted, budget_duration="1d")
            write_keys_as_of_old_schema(monkeypatch, store)
            await store.create_key(key)
            monkeypatch.undo()
            write_subjects_as_of_old_schema(monkeypatch, store)
            await store.create_subject(SubjectRecord(kind="team", id="t-old", max_budget=7.25, spend=1.125))
            monkeypatch.undo()
            assert await store.migrate() == list(range(5, LATEST + 1))
            rec = await store.get_key(key.token_hash)
            assert rec is not None and rec.max_budget == 2.5 and rec.budget_duration == "1d"
            # PostgreSQL's NUMERIC heals the drift; SQLite keeps the double it had
            assert rec.spend == (drifted if name == "SQLITE_MIGRATIONS" else 0.3)
            team = await store.get_subject("team", "t-old")
            assert team is not None and (team.max_budget, team.spend) == (7.25, 1.125)
            assert await store.add_key_spend(key.token_hash, 0.1) == pytest.approx(0.4, abs=1e-15)
        finally:
            await store.close()

    asyncio.run(main())
