"""Daily spend totals of days already over, kept for a while: what makes the dashboard's charts cheap.

A day's totals are a scan of that day's spend records; over a week of a busy gateway that is tens of
thousands of rows per chart. Once a UTC day has ended its totals barely change (only a spend journal
replayed after an outage adds to it), so a caller of ``GET /spend/daily`` that can take figures up to
``max_age`` seconds old for the days before today (the dashboard asks for 60) gets them from here,
and only today's records are read again. Without ``max_age`` nothing is cached: scripts read the store.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from llmswitch.store import DailySpend

Fetch = Callable[[datetime | None, datetime | None], Awaitable[list[DailySpend]]]
_MAX_ENTRIES = 256


class SpendDayCache:
    """Totals of ended days by (group, team, first day, end of the ended part), each with its time of reading."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, now: Callable[[], datetime] | None = None
    ) -> None:
        self._clock = clock
        self._now = now or (lambda: datetime.now(UTC))
        self._entries: OrderedDict[tuple[object, ...], tuple[float, list[DailySpend]]] = OrderedDict()

    async def daily(
        self, key: tuple[object, ...], start: datetime | None, end: datetime | None, max_age: float, fetch: Fetch
    ) -> list[DailySpend]:
        """``fetch(start, end)``'s rows, the part before today's UTC midnight from a copy at most ``max_age`` old."""
        now = self._now()
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
        if start is not None and start >= midnight:
            return await fetch(start, end)
        closed_end = midnight if end is None or end > midnight else end
        entry_key = (*key, start, closed_end)
        found = self._entries.get(entry_key)
        if found is not None and self._clock() - found[0] <= max_age:
            closed = found[1]
            self._entries.move_to_end(entry_key)
        else:
            read_at = self._clock()
            closed = await fetch(start, closed_end)
            self._entries[entry_key] = (read_at, closed)
            if len(self._entries) > _MAX_ENTRIES:
                self._entries.popitem(last=False)
        if closed_end == end:
            return closed
        return closed + await fetch(midnight, end)
