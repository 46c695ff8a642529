"""The copy of past days' totals behind /spend/daily?max_age= (spend_day_cache.py): today is always read
afresh, the days before it at most max_age seconds old."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from llmswitch.server.spend_day_cache import SpendDayCache
from llmswitch.store import DailySpend

NOW = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 6, 10, tzinfo=UTC)


def _row(day: date, requests: int) -> DailySpend:
    return DailySpend(day, "m", requests, 0, 0, 0.0)


class Store:
    def __init__(self) -> None:
        self.calls: list[tuple[datetime | None, datetime | None]] = []
        self.requests = 1

    async def fetch(self, start: datetime | None, end: datetime | None) -> list[DailySpend]:
        await asyncio.sleep(0)  # a read takes time: others may ask meanwhile
        self.calls.append((start, end))
        day = (start or MIDNIGHT - timedelta(days=3)).date()
        return [_row(day, self.requests)]


def test_past_days_are_kept_and_read_again_in_the_background_after_max_age() -> None:
    clock = [0.0]
    cache = SpendDayCache(clock=lambda: clock[0], now=lambda: NOW)
    store = Store()
    start, end = MIDNIGHT - timedelta(days=6), MIDNIGHT + timedelta(days=1)

    async def main() -> None:
        async def daily() -> list[int]:
            return [r.requests for r in await cache.daily(("model", None), start, end, 60, store.fetch)]

        assert await daily() == [1, 1]
        assert store.calls == [(start, MIDNIGHT), (MIDNIGHT, end)]
        store.requests = 2  # the store changed: today shows it at once, the past days after max_age
        assert await daily() == [1, 2]
        assert store.calls[2:] == [(MIDNIGHT, end)]
        clock[0] = 61
        assert await daily() == [1, 2]  # the old copy answers while a new one is read
        for _ in range(5):
            await asyncio.sleep(0)
        assert (start, MIDNIGHT) in store.calls[3:]
        assert await daily() == [2, 2]

    asyncio.run(main())


def test_a_range_of_today_only_is_never_kept() -> None:
    cache = SpendDayCache(clock=lambda: 0.0, now=lambda: NOW)
    store = Store()
    for _ in range(2):
        asyncio.run(cache.daily(("model", None), MIDNIGHT, None, 60, store.fetch))
    assert store.calls == [(MIDNIGHT, None), (MIDNIGHT, None)]


def test_a_range_of_past_days_only_is_read_once() -> None:
    cache = SpendDayCache(clock=lambda: 0.0, now=lambda: NOW)
    store = Store()
    end = MIDNIGHT - timedelta(days=1)
    for _ in range(3):
        asyncio.run(cache.daily(("key", "team-a"), None, end, 60, store.fetch))
    assert store.calls == [(None, end)]


def test_a_longer_range_reads_only_the_days_not_kept() -> None:
    cache = SpendDayCache(clock=lambda: 0.0, now=lambda: NOW)
    store = Store()
    week, month = MIDNIGHT - timedelta(days=6), MIDNIGHT - timedelta(days=29)
    asyncio.run(cache.daily(("model", None), week, MIDNIGHT + timedelta(days=1), 60, store.fetch))
    store.calls.clear()
    rows = asyncio.run(cache.daily(("model", None), month, MIDNIGHT + timedelta(days=1), 60, store.fetch))
    assert store.calls == [(month, week), (MIDNIGHT, MIDNIGHT + timedelta(days=1))]
    # the rows come back in day order: the month's first day (read now), the week's first day (kept), today
    assert [r.day for r in rows] == [month.date(), week.date(), MIDNIGHT.date()]
    other_team = asyncio.run(cache.daily(("model", "team-a"), week, MIDNIGHT, 60, store.fetch))
    assert store.calls[-1] == (week, MIDNIGHT) and len(other_team) == 1


def test_requests_together_share_the_first_read() -> None:
    cache = SpendDayCache(clock=lambda: 0.0, now=lambda: NOW)
    store = Store()
    week = MIDNIGHT - timedelta(days=6)

    async def main() -> None:
        results = await asyncio.gather(
            *(cache.daily(("model", None), week, MIDNIGHT, 60, store.fetch) for _ in range(3))
        )
        assert all(r == results[0] for r in results)

    asyncio.run(main())
    assert store.calls == [(week, MIDNIGHT)]
