"""Budget periods in the store, on every backend: once ``budget_reset_at`` has passed, ``spend`` becomes the
spend of the period that holds "now" and ``budget_reset_at`` its end, once, however many gateways reset."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from llmswitch.store import KeyRecord, SpendRecord, Store, SubjectRecord, generate_key, hash_key
from llmswitch.store.budget_periods import due_reset

RunStore = Callable[..., Any]
T0 = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def spend(key_hash: str, cost: float, when: datetime, **fields: Any) -> SpendRecord:
    return SpendRecord(request_id=f"r-{when.timestamp()}-{cost}", key_hash=key_hash, cost=cost, time=when, **fields)


def test_an_ended_period_starts_over_with_what_was_spent_since(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        key = generate_key()
        h = hash_key(key)
        await store.create_key(
            KeyRecord.for_key(key, max_budget=1.0, budget_duration="1d", budget_reset_at=T0 - timedelta(days=2))
        )
        await store.create_subject(
            SubjectRecord(kind="team", id="t-reset", max_budget=5.0, budget_duration="1d", budget_reset_at=T0)
        )
        await store.insert_spend_logs(
            [
                spend(h, 0.25, T0 - timedelta(days=3), team_id="t-reset"),
                spend(h, 0.5, T0 - timedelta(hours=25), team_id="t-reset"),  # an ended period
                spend(h, 0.125, T0 - timedelta(hours=11), team_id="t-reset"),  # the current one
            ]
        )
        assert (await store.get_key(h)).spend == 0.875  # type: ignore[union-attr]
        now = T0 - timedelta(hours=1)
        done = await store.reset_budgets(now)
        assert [(d.kind, d.id) for d in done] == [("key", h)]  # the team's period has not ended yet
        rec = await store.get_key(h)
        assert rec is not None and rec.spend == 0.125 and rec.budget_reset_at == T0
        assert await store.reset_budgets(now) == []  # once per period
        # the next day: both roll over, and nothing was spent since the key's new period began
        done = await store.reset_budgets(T0 + timedelta(hours=1))
        assert sorted((d.kind, d.id) for d in done) == [("key", h), ("team", "t-reset")]
        rec = await store.get_key(h)
        assert rec is not None and rec.spend == 0.0 and rec.budget_reset_at == T0 + timedelta(days=1)
        team = await store.get_subject("team", "t-reset")
        assert team is not None and team.spend == 0.0 and team.budget_reset_at == T0 + timedelta(days=1)

    run_store(store_url, body)


def test_a_reset_is_seen_by_the_change_feed(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        key = generate_key()
        await store.create_key(KeyRecord.for_key(key, budget_duration="1h", budget_reset_at=T0))
        _, _, cursor = await store.keys_changed_since(0)
        await store.reset_budgets(T0 + timedelta(minutes=90))
        changed, _, _ = await store.keys_changed_since(cursor)
        assert [rec.budget_reset_at for rec in changed] == [T0 + timedelta(hours=2)]

    run_store(store_url, body)


def test_budgets_without_a_duration_never_reset(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        key = generate_key()
        await store.create_key(KeyRecord.for_key(key, max_budget=1.0, spend=0.5, budget_reset_at=T0))
        assert await store.reset_budgets(T0 + timedelta(days=30)) == []
        assert (await store.get_key(hash_key(key))).spend == 0.5  # type: ignore[union-attr]

    run_store(store_url, body)


def test_two_gateways_resetting_at_once_reset_once(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        for _ in range(20):
            key = generate_key()
            await store.create_key(KeyRecord.for_key(key, budget_duration="1d", budget_reset_at=T0))
        now = T0 + timedelta(hours=1)
        results = await asyncio.gather(*(store.reset_budgets(now) for _ in range(4)))
        assert sum(len(r) for r in results) == 20

    run_store(store_url, body)


def test_due_reset_follows_the_limiters_windows() -> None:
    due = due_reset("key", "h", "1mo", datetime(2025, 1, 31, tzinfo=UTC), datetime(2025, 4, 15, tzinfo=UTC))
    assert due is not None
    assert (due.start, due.end) == (datetime(2025, 3, 31, tzinfo=UTC), datetime(2025, 4, 30, tzinfo=UTC))
    assert due_reset("key", "h", "1d", T0, T0 - timedelta(seconds=1)) is None
