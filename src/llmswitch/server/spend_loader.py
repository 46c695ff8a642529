"""What a subject has spent in its current budget period, read from the store for the limiter: after
a restart, a Redis that lost its state, or while Redis is away."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from llmswitch.limits import BudgetPeriod
from llmswitch.limits.model_limits import load_model_spend, parse_model_subject


def spend_loader_for(
    store: Any,
    before: Callable[[], Awaitable[None]] | None = None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Any:
    """The limiter's way to learn what a subject has spent in its current budget period (after a
    restart, a Redis that lost its state, or while Redis is away): the stored spend, which is the
    current period's (see :mod:`llmswitch.store.budget_periods`); the spend records since the period
    began when the store has not started the period yet. ``before`` is awaited first (this process's
    journal shipped, see :meth:`Accounting.ship_pending`); ``clock`` tells the time (tests set it)."""
    columns = {"key": "key_hash", "user": "user_id", "team": "team_id"}

    async def load(subject: str) -> tuple[float, Any] | None:
        if before is not None:
            await before()
        kind, _, ident = subject.partition(":")
        on_model = parse_model_subject(subject)
        if on_model is not None:
            return await load_model_spend(store, *on_model)
        if kind == "key":
            rec = await store.get_key(ident)
        elif kind in ("user", "team") and hasattr(store, "get_subject"):
            rec = await store.get_subject(kind, ident)
        else:
            return None
        if rec is None:
            return None
        duration = rec.budget_duration
        if duration is None:
            return rec.spend, rec.budget_reset_at
        now = clock()
        if rec.budget_reset_at is not None and rec.budget_reset_at > now:
            # the store keeps the current period's spend (an admin's reset of it included)
            return rec.spend, rec.budget_reset_at
        period = BudgetPeriod(duration, rec.budget_reset_at)
        # the window's own start, counted from the anchor: a month back from its end is not it when the
        # anchor's day is one a month lacks (Jan 31 + 1mo is Feb 28; a month before Mar 31 is not Feb 28)
        end, start = period.end_at(now), period.start_at(now)
        if end is None or start is None:
            return rec.spend, rec.budget_reset_at
        spent = await store.spend_since(columns[kind], ident, start)
        return spent, end

    return load
