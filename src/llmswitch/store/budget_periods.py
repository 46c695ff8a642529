"""Budget periods in the store: ``spend`` is the spend of the current period, as in LiteLLM.

A key, user or team with a ``budget_duration`` has its period end in ``budget_reset_at``. Once that
time has passed, :meth:`~llmswitch.store.Store.reset_budgets` starts the period that holds "now":
``budget_reset_at`` moves to its end and ``spend`` becomes what the spend logs hold since its start
(normally nothing, or the few requests answered since the boundary). The limiters reset their own
copy of the spend at the same boundary without asking the store (see
:class:`~llmswitch.limits.BudgetPeriod`, whose windows these are), so the store's reset only has to
keep ``/key/info`` and the spend seeding true; it may run late, and on several gateways at once (each
row is reset by whichever gets to it first, under the change counter's lock).

A record that reaches the store after the reset but was answered before the boundary is added to the
new period (the shipper lags the answers by a fraction of a second).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, NamedTuple

BudgetOwner = Literal["key", "user", "team"]


class DueReset(NamedTuple):
    """One budget whose period has ended: who, and the period that holds ``now``."""

    kind: BudgetOwner
    id: str
    old_reset_at: datetime
    start: datetime
    end: datetime


def due_reset(kind: BudgetOwner, ident: str, duration: str, reset_at: datetime, now: datetime) -> DueReset | None:
    """The new period of a budget whose ``reset_at`` has passed at ``now``; ``None`` if none is due.

    >>> due_reset("key", "h", "1d", datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 3, 12, tzinfo=UTC)).end
    datetime.datetime(2025, 6, 4, 0, 0, tzinfo=datetime.timezone.utc)
    """
    # imported here: llmswitch.limits imports the store's durations, so not at the store's import
    from llmswitch.limits.periods import BudgetPeriod

    aware = reset_at if reset_at.tzinfo is not None else reset_at.replace(tzinfo=UTC)
    if aware > now:
        return None
    period = BudgetPeriod(duration, aware)
    start, end = period.start_at(now), period.end_at(now)
    if start is None or end is None:
        return None
    return DueReset(kind, ident, aware, start, end)
