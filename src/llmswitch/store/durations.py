"""LiteLLM's budget duration strings: ``"30s"``, ``"30m"``, ``"24h"``, ``"30d"``, ``"2w"``, ``"1mo"``.

    >>> parse_duration("30d")
    datetime.timedelta(days=30)
    >>> add_duration(datetime(2024, 1, 31, tzinfo=UTC), "1mo")
    datetime.datetime(2024, 2, 29, 0, 0, tzinfo=datetime.timezone.utc)

Months are calendar months, so their length depends on where they start: ``add_duration`` is the
exact way to compute a reset time, and ``parse_duration("1mo")`` measures from ``start`` (now, if not
given). Unlike LiteLLM, which reads a prefix and ignores the rest, the whole string must match:
``"30days"`` is an error here rather than a silent 30 days.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"(\d+)(mo|[smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str, *, start: datetime | None = None) -> timedelta:
    """The length of a LiteLLM duration string; a clear ``ValueError`` naming ``value`` if it is not one.

    >>> parse_duration("90m")
    datetime.timedelta(seconds=5400)
    >>> parse_duration("1mo", start=datetime(2023, 2, 1, tzinfo=UTC)).days
    28
    """
    count, unit = _split(value)
    if unit != "mo":
        return timedelta(seconds=count * _SECONDS[unit])
    origin = start or datetime.now(UTC)
    return _add_months(origin, count) - origin


def add_duration(start: datetime, value: str) -> datetime:
    """``start`` moved forward by a LiteLLM duration; months are calendar months, clamped to the month's end.

    >>> add_duration(datetime(2024, 12, 15, 8, 30, tzinfo=UTC), "2mo")
    datetime.datetime(2025, 2, 15, 8, 30, tzinfo=datetime.timezone.utc)
    """
    count, unit = _split(value)
    if unit == "mo":
        return _add_months(start, count)
    return start + timedelta(seconds=count * _SECONDS[unit])


def _split(value: str) -> tuple[int, str]:
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"invalid duration {value!r}: expected a whole number and a unit, one of "
            's (seconds), m (minutes), h (hours), d (days), w (weeks), mo (months), e.g. "30d"'
        )
    return int(match.group(1)), match.group(2)


def _add_months(start: datetime, months: int) -> datetime:
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    # Jan 31 + 1mo is the last day of February, as billing periods count it
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)
