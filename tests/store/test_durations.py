"""LiteLLM duration strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmswitch.store import add_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("0d", timedelta(0)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_fixed_units(value: str, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    ("start", "value", "expected"),
    [
        (datetime(2024, 1, 31, 9, tzinfo=UTC), "1mo", datetime(2024, 2, 29, 9, tzinfo=UTC)),
        (datetime(2023, 1, 31, tzinfo=UTC), "1mo", datetime(2023, 2, 28, tzinfo=UTC)),
        (datetime(2024, 12, 15, tzinfo=UTC), "1mo", datetime(2025, 1, 15, tzinfo=UTC)),
        (datetime(2024, 3, 31, tzinfo=UTC), "13mo", datetime(2025, 4, 30, tzinfo=UTC)),
        (datetime(2024, 5, 1, 12, 30, tzinfo=UTC), "36h", datetime(2024, 5, 3, 0, 30, tzinfo=UTC)),
    ],
)
def test_add_duration_counts_calendar_months(start: datetime, value: str, expected: datetime) -> None:
    assert add_duration(start, value) == expected
    assert parse_duration(value, start=start) == expected - start


def test_a_month_measured_from_now_is_28_to_31_days() -> None:
    assert timedelta(days=28) <= parse_duration("1mo") <= timedelta(days=31)


@pytest.mark.parametrize("bad", ["", "30", "d", "30x", "-1d", "1.5h", "30days", "30 d", "30D", "mo", "1y"])
def test_invalid_durations_are_named_in_the_error(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(bad)
    assert repr(bad) in str(info.value)


def test_a_non_string_is_an_error_too() -> None:
    with pytest.raises(ValueError, match="invalid duration 30"):
        parse_duration(30)  # type: ignore[arg-type]


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)), st.integers(0, 240))
def test_months_land_on_the_same_day_or_the_months_last(start: datetime, months: int) -> None:
    end = add_duration(start.replace(tzinfo=UTC), f"{months}mo")
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
    assert end.day == start.day or (end.day < start.day and (end + timedelta(days=1)).day == 1)
    assert end.time() == start.time()
