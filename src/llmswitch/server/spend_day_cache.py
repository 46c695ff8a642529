"""Daily spend totals of days already over, kept for a while: what makes the dashboard's charts cheap.

A day's totals are a scan of that day's spend records; over a week of a busy gateway that is tens of
thousands of rows per chart. Once a UTC day has ended its totals barely change (only a spend journal
replayed after an outage adds to it), so a caller of ``GET /spend/daily`` that can take figures up to
``max_age`` seconds old for the days before today (the dashboard asks for 60) gets them from here,
and only today's records are read again. Each past day is kept on its own, so a 30-day chart reuses
the days a 7-day chart read. A copy older than ``max_age`` is still answered with, while it is read
again in the background (one read at a time per group): only a day never read before is waited for.
Without ``max_age`` nothing is cached: scripts read the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

from llmswitch.store import DailySpend

log = logging.getLogger("llmswitch.spend")
Fetch = Callable[[datetime | None, datetime | None], Awaitable[list[DailySpend]]]
_MAX_ENTRIES = 20_000  # (group, team, day) entries: a year of days for a few dozen teams
_DAY = timedelta(days=1)


def _midnight(t: datetime) -> datetime:
    return datetime(t.year, t.month, t.day, tzinfo=UTC)


class SpendDayCache:
    """Totals of ended days by (group, team, day) — or by whole range when it does not start at a
    midnight — each with the time it was read."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, now: Callable[[], datetime] | None = None
    ) -> None:
        self._clock = clock
        self._now = now or (lambda: datetime.now(UTC))
        self._entries: OrderedDict[tuple[object, ...], tuple[float, list[DailySpend]]] = OrderedDict()
        self._refreshing: dict[tuple[object, ...], asyncio.Task[None]] = {}
        # one first read at a time per (group, team): a page and the sign-in prefetch asking together share it
        self._reading: dict[tuple[object, ...], asyncio.Lock] = {}

    async def daily(
        self, key: tuple[object, ...], start: datetime | None, end: datetime | None, max_age: float, fetch: Fetch
    ) -> list[DailySpend]:
        """``fetch(start, end)``'s rows, the part before today's UTC midnight from copies at most ``max_age`` old."""
        midnight = _midnight(self._now())
        if start is not None and start >= midnight:
            return await fetch(start, end)
        closed_end = midnight if end is None or end > midnight else end
        if start is None or start != _midnight(start) or closed_end != _midnight(closed_end):
            closed = await self._range(key, start, closed_end, max_age, fetch)
        else:
            closed = await self._days(key, start, closed_end, max_age, fetch)
        if closed_end == end:
            return closed
        return closed + await fetch(midnight, end)

    def _kept(self, entry_key: tuple[object, ...], max_age: float) -> tuple[list[DailySpend] | None, bool]:
        """The copy kept under ``entry_key`` (``None``: none) and whether it is older than ``max_age``."""
        found = self._entries.get(entry_key)
        if found is None:
            return None, False
        self._entries.move_to_end(entry_key)
        return found[1], self._clock() - found[0] > max_age

    def _refresh_later(self, key: tuple[object, ...], read: Callable[[], Awaitable[None]]) -> None:
        if key in self._refreshing:
            return

        async def run() -> None:
            try:
                await read()
            except Exception as exc:  # the old copy stays; the next request tries again
                log.warning("refreshing daily spend totals failed: %s", exc)
            finally:
                self._refreshing.pop(key, None)

        self._refreshing[key] = asyncio.get_running_loop().create_task(run())

    async def close(self) -> None:
        """Stop the reads in the background (at shutdown)."""
        for task in list(self._refreshing.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _keep(self, entry_key: tuple[object, ...], read_at: float, rows: list[DailySpend]) -> None:
        self._entries[entry_key] = (read_at, rows)
        self._entries.move_to_end(entry_key)
        while len(self._entries) > _MAX_ENTRIES:
            self._entries.popitem(last=False)

    async def _range(
        self, key: tuple[object, ...], start: datetime | None, end: datetime, max_age: float, fetch: Fetch
    ) -> list[DailySpend]:
        entry_key = (*key, "range", start, end)

        async def read() -> list[DailySpend]:
            read_at = self._clock()
            rows = await fetch(start, end)
            self._keep(entry_key, read_at, rows)
            return rows

        async def refresh() -> None:
            await read()

        kept, stale = self._kept(entry_key, max_age)
        if kept is None:
            return await read()
        if stale:
            self._refresh_later(entry_key, refresh)
        return kept

    async def _days(
        self, key: tuple[object, ...], start: datetime, end: datetime, max_age: float, fetch: Fetch
    ) -> list[DailySpend]:
        days: list[date] = []
        t = start
        while t < end:
            days.append(t.date())
            t += _DAY
        have: dict[date, list[DailySpend] | None] = {}
        stale: list[date] = []

        def look() -> None:
            stale.clear()
            for day in days:
                have[day], old = self._kept((*key, day), max_age)
                if old:
                    stale.append(day)

        async def read(wanted: list[date]) -> None:
            for run in _runs(wanted):  # one read per run of consecutive days
                read_at = self._clock()
                first = datetime(run[0].year, run[0].month, run[0].day, tzinfo=UTC)
                rows = await fetch(first, first + _DAY * len(run))
                for day in run:
                    have[day] = [r for r in rows if r.day == day]
                    self._keep((*key, day), read_at, have[day] or [])

        look()
        if any(have[day] is None for day in days):
            if len(self._reading) > _MAX_ENTRIES:
                self._reading.clear()
            async with self._reading.setdefault(key, asyncio.Lock()):
                look()  # another request may have read them meanwhile
                await read([day for day in days if have[day] is None])
        if stale:
            self._refresh_later((*key, "days"), lambda: read(stale))
        return [row for day in days for row in have[day] or []]


def _runs(days: list[date]) -> list[list[date]]:
    runs: list[list[date]] = []
    for day in days:
        if runs and runs[-1][-1] + _DAY == day:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs
