"""Budget periods as the gateway keeps them: the store's periods moved on in the background, and the
admin API's spend resets applied to the limiter at once.

The limiter enforces each period by itself (its windows end at the same boundaries), so this only keeps
what the store shows true: ``/key/info``, ``/team/info`` and ``/user/info`` show the current period's
``spend`` and a ``budget_reset_at`` in the future, as LiteLLM's do. Every ``interval`` seconds the
store's ended periods are started over (:meth:`~llmswitch.store.Store.reset_budgets`, safe on several
gateways at once); an info route that finds its record's period over does it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from llmswitch.server.refresh import refresh_forever

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway
    from llmswitch.store import Store

log = logging.getLogger("llmswitch.budgets")
RESET_INTERVAL_S = 10.0


class BudgetResets:
    """Starts the store's ended budget periods over, every ``interval`` seconds, in the background."""

    def __init__(self, store: Store | None, *, interval: float = RESET_INTERVAL_S) -> None:
        self._store = store
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._store is None or self._task is not None:
            return
        try:
            await self.run_once()
        except Exception as exc:  # the loop below tries again; a gateway still starts and serves
            log.warning("budget resets failed at start: %s", exc)
        self._task = asyncio.create_task(refresh_forever(self.run_once, self._interval, "budget resets"))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> None:
        if self._store is not None:
            await self._store.reset_budgets(datetime.now(UTC))


def period_over(rec: Any, now: datetime | None = None) -> bool:
    """Whether ``rec`` (a key, user or team record) still shows a budget period that has ended."""
    reset_at = getattr(rec, "budget_reset_at", None)
    return rec.budget_duration is not None and reset_at is not None and reset_at <= (now or datetime.now(UTC))


async def apply_spend(gw: Gateway, subject: str, rec: Any) -> None:
    """An admin just set ``rec.spend`` (``/key/update``, ``/team/update``, ``/user/update``): the limiter
    counts from it now, in every process that shares it (Redis), keeping requests in flight."""
    limiter = gw.accounting.limiter
    if limiter is None:
        return
    await limiter.set_spend(subject, rec.spend, rec.budget_reset_at, duration=rec.budget_duration)
