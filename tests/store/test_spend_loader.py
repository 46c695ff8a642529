"""The limiter's spend loader reads the current budget window from the store (server/accounting.py
``spend_loader_for``): after a restart, or a Redis that lost its state, when the store has not started
the period itself yet."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest

from llmswitch.server.accounting import spend_loader_for
from llmswitch.store import KeyRecord, SpendRecord, Store, generate_key


def _add_months(anchor: datetime, months: int) -> datetime:
    # the calendar's answer, written out: the anchor's day, clamped to the target month's length
    month0 = anchor.month - 1 + months
    year, month = anchor.year + month0 // 12, month0 % 12 + 1
    return anchor.replace(year=year, month=month, day=min(anchor.day, calendar.monthrange(year, month)[1]))


@pytest.mark.parametrize(
    ("anchor", "now"),
    [
        (datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 3, 5, 12, tzinfo=UTC)),  # window from Feb 28
        (datetime(2024, 1, 30, tzinfo=UTC), datetime(2024, 3, 10, tzinfo=UTC)),  # from Feb 29 (leap year)
        (datetime(2026, 8, 31, tzinfo=UTC), datetime(2026, 10, 2, tzinfo=UTC)),  # from Sep 30
        (datetime(2026, 5, 29, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)),  # from Jun 29
    ],
)
def test_a_monthly_budget_anchored_late_in_the_month_reloads_its_own_window(
    store_url: str, run_store: object, anchor: datetime, now: datetime
) -> None:
    k = 0
    while _add_months(anchor, k + 1) <= now:
        k += 1
    start = _add_months(anchor, k)
    key = KeyRecord.for_key(generate_key(), max_budget=10.0, budget_duration="1mo", budget_reset_at=anchor)

    async def body(store: Store) -> None:
        await store.create_key(key)
        rows = [
            SpendRecord(request_id="before", key_hash=key.token_hash, cost=1.0, time=start - timedelta(hours=1)),
            SpendRecord(request_id="first-hour", key_hash=key.token_hash, cost=0.25, time=start + timedelta(hours=1)),
            SpendRecord(request_id="now", key_hash=key.token_hash, cost=0.5, time=now - timedelta(minutes=1)),
        ]
        assert await store.insert_spend_logs(rows) == 3
        load = spend_loader_for(store, clock=lambda: now)
        spent, end = await load(f"key:{key.token_hash}")
        assert spent == pytest.approx(0.75)
        assert end == _add_months(anchor, k + 1)

    run_store(store_url, body)  # type: ignore[operator]
