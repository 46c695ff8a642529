"""Budget periods: where the current window ends, computed alike by every process."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmswitch.errors import ConfigError
from llmswitch.limits import BudgetPeriod
from llmswitch.limits.periods import NEVER, from_us, to_us


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("duration", "reset_at", "now", "end"),
    [
        # the key's reset_at closes the window it is in, and its successors follow every duration
        ("30d", at(2025, 2, 1), at(2025, 1, 15), at(2025, 2, 1)),
        ("30d", at(2025, 2, 1), at(2025, 2, 1), at(2025, 3, 3)),
        ("30d", at(2025, 2, 1), at(2025, 3, 15), at(2025, 4, 2)),
        ("24h", at(2025, 1, 1, 9), at(2025, 1, 10, 8, 59), at(2025, 1, 10, 9)),
        # months count from the anchor, so a clamped day does not drift: Jan 31 -> Feb 28 -> Mar 31
        ("1mo", at(2025, 1, 31), at(2025, 2, 10), at(2025, 2, 28)),
        ("1mo", at(2025, 1, 31), at(2025, 3, 1), at(2025, 3, 31)),
        ("1mo", at(2024, 1, 31), at(2024, 2, 29, 12), at(2024, 3, 31)),
        ("3mo", at(2024, 11, 30), at(2025, 6, 1), at(2025, 8, 30)),
        # without a reset_at, windows align to the calendar in UTC
        ("1mo", None, at(2025, 6, 15, 12), at(2025, 7, 1)),
        ("1d", None, at(2025, 6, 15, 12), at(2025, 6, 16)),
        ("1w", None, at(2025, 6, 15, 12), at(2025, 6, 16)),  # a Sunday: the week ends Monday
        ("1h", None, at(2025, 6, 15, 12, 30), at(2025, 6, 15, 13)),
        # a one-off reset, then never again
        (None, at(2025, 7, 1), at(2025, 6, 15), at(2025, 7, 1)),
        (None, at(2025, 7, 1), at(2025, 7, 2), None),
    ],
)
def test_end_of_the_current_window(
    duration: str | None, reset_at: datetime | None, now: datetime, end: datetime | None
) -> None:
    assert BudgetPeriod(duration, reset_at).end_at(now) == end


def test_the_end_is_cached_within_a_window_and_moves_after_it() -> None:
    period = BudgetPeriod("1d")
    now = to_us(at(2025, 6, 15, 12))
    first = period.end_us(now)
    assert period.end_us(now + 3_600_000_000) == first
    assert period.end_us(first) == first + 86_400_000_000  # the end itself belongs to the next window


def test_a_naive_reset_at_is_utc() -> None:
    assert BudgetPeriod("1d", datetime(2025, 1, 1)).end_at(at(2024, 12, 31)) == at(2025, 1, 1)


@pytest.mark.parametrize("bad", ["0d", "30days", "", "1y"])
def test_invalid_durations_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="budget_duration"):
        BudgetPeriod(bad)


def test_microsecond_conversions_round_trip() -> None:
    when = datetime(2025, 6, 15, 12, 0, 0, 123456, tzinfo=UTC)
    assert from_us(to_us(when)) == when
    assert NEVER == 0


@pytest.mark.parametrize(
    ("duration", "anchor", "now", "start"),
    [
        ("30d", datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 15, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC)),
        ("1d", datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)),
        ("1mo", datetime(2025, 1, 31, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 1, 31, tzinfo=UTC)),
        (
            "1mo",
            datetime(2025, 1, 31, tzinfo=UTC),
            datetime(2025, 4, 15, tzinfo=UTC),
            datetime(2025, 3, 31, tzinfo=UTC),
        ),
        ("2mo", datetime(2025, 1, 15, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 5, 15, tzinfo=UTC)),
        ("1d", datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC), None),  # before the anchor
    ],
)
def test_start_at_is_the_window_before_end_at(
    duration: str, anchor: datetime, now: datetime, start: datetime | None
) -> None:
    period = BudgetPeriod(duration, anchor)
    assert period.start_at(now) == start
    if start is not None:
        end = period.end_at(now)
        assert end is not None and start <= now < end
        assert BudgetPeriod(duration, anchor).end_at(start) == end  # the same window, seen from its start
