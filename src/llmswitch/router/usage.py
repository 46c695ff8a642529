"""Requests and tokens per deployment over the last minute: what rpm/tpm caps and usage-based routing read.

The router only talks to the small :class:`UsageCounter` interface, so a shared counter (Redis, for
several gateway processes) can replace the in-process one without touching the router. The interface
is synchronous on purpose: routing decides from memory; a shared implementation keeps a local view
that it refreshes and pushes in the background.

    >>> now = [0.0]
    >>> usage = LocalUsage(clock=lambda: now[0])
    >>> usage.add("dep-a", requests=1, tokens=120)
    >>> usage.used("dep-a")
    (1.0, 120.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

WINDOW = 60.0


class UsageCounter(Protocol):
    """Counts of requests and tokens per deployment id over the last minute."""

    def add(self, key: str, *, requests: int = 0, tokens: int = 0) -> None: ...

    def used(self, key: str) -> tuple[float, float]:
        """(requests, tokens) within the last :data:`WINDOW` seconds (an estimate is fine)."""
        ...

    def frees_in(self, key: str) -> float:
        """Seconds until the counts of ``key`` have noticeably dropped (a hint for a Retry-After)."""
        ...


class _Minute:
    __slots__ = ("cur_requests", "cur_tokens", "epoch", "prev_requests", "prev_tokens")

    def __init__(self) -> None:
        self.epoch = 0
        self.cur_requests = self.cur_tokens = 0
        self.prev_requests = self.prev_tokens = 0

    def roll(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        if epoch == self.epoch + 1:
            self.prev_requests, self.prev_tokens = self.cur_requests, self.cur_tokens
        else:
            self.prev_requests = self.prev_tokens = 0
        self.cur_requests = self.cur_tokens = 0
        self.epoch = epoch


# below this many keys nothing is swept: a sweep costs one pass over them
SWEEP_FLOOR = 1024


class LocalUsage:
    """The in-process counter: a sliding-window estimate from this minute's and the last minute's counts
    (the last minute weighted by how much of it is still inside the window), two numbers per deployment.

    Keys with nothing counted in the last two minutes are swept away when the table has doubled since
    the last sweep (amortised O(1) per new key), so deployments that come and go (one per model name
    through a wildcard) leave nothing behind; :meth:`forget` drops one at once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._minutes: dict[str, _Minute] = {}
        self._sweep_at = SWEEP_FLOOR

    def _minute(self, key: str) -> tuple[_Minute, float]:
        now = self.clock()
        epoch = int(now // WINDOW)
        m = self._minutes.get(key)
        if m is None:
            if len(self._minutes) >= self._sweep_at:
                self._sweep(epoch)
            m = self._minutes[key] = _Minute()
            m.epoch = epoch
        m.roll(epoch)
        return m, now / WINDOW - epoch

    def add(self, key: str, *, requests: int = 0, tokens: int = 0) -> None:
        # once per attempt: a known key in the current minute takes no call beyond the clock's
        m = self._minutes.get(key)
        if m is None:
            m, _ = self._minute(key)
        else:
            epoch = int(self.clock() // WINDOW)
            if epoch != m.epoch:
                m.roll(epoch)
        m.cur_requests += requests
        m.cur_tokens += tokens

    def used(self, key: str) -> tuple[float, float]:
        if key not in self._minutes:
            return 0.0, 0.0
        m, into = self._minute(key)
        weight = 1.0 - into
        return m.cur_requests + m.prev_requests * weight, m.cur_tokens + m.prev_tokens * weight

    def forget(self, key: str) -> None:
        """Drop a deployment's counts (it is gone: a wildcard-served name the router no longer keeps)."""
        self._minutes.pop(key, None)

    def __len__(self) -> int:
        return len(self._minutes)

    def _sweep(self, epoch: int) -> None:
        # an entry last touched two or more minutes ago counts nothing in the window any more
        stale = [k for k, m in self._minutes.items() if epoch - m.epoch >= 2]
        for k in stale:
            del self._minutes[k]
        self._sweep_at = max(SWEEP_FLOOR, 2 * len(self._minutes))

    def frees_in(self, key: str) -> float:
        _, into = self._minute(key)
        return (1.0 - into) * WINDOW
