"""When a budget's spend resets: the window ``[reset_at - duration, reset_at)`` and its successors.

    >>> p = BudgetPeriod("30d", reset_at=datetime(2025, 2, 1, tzinfo=UTC))
    >>> p.end_at(datetime(2025, 1, 15, tzinfo=UTC))      # the window the key is in ends at its reset_at
    datetime.datetime(2025, 2, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> p.end_at(datetime(2025, 3, 15, tzinfo=UTC))      # two resets later
    datetime.datetime(2025, 4, 2, 0, 0, tzinfo=datetime.timezone.utc)

Every gateway process computes the current window's end by itself, from the same anchor, so the
shared backend only compares numbers: a script never needs calendar arithmetic, and two processes
agree on a period without talking. The anchor is the key's ``budget_reset_at`` (any past or future
boundary works: windows are ``anchor + k * duration``, months counted from the anchor so Jan 31 + 1mo
+ 1mo is Mar 31, not Mar 29). Without one, windows align to the calendar in UTC: days at midnight,
weeks on Monday, months on the 1st.
"""

from __future__ import annotations

from datetime import UTC, datetime

from llmswitch.errors import ConfigError
from llmswitch.store.durations import add_duration, parse_duration

NEVER = 0  # the end of a window that never resets, in microseconds (no real time is 0)
_US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_MONDAY = datetime(1970, 1, 5, tzinfo=UTC)


def to_us(when: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken to be UTC, as the store does."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


def from_us(us: int) -> datetime:
    """The UTC datetime of a microsecond timestamp (inverse of :func:`to_us`)."""
    return datetime.fromtimestamp(us / _US, UTC) if us % _US else datetime.fromtimestamp(us // _US, UTC)


class BudgetPeriod:
    """A budget's reset schedule: every ``duration`` (a LiteLLM string like ``"30d"`` or ``"1mo"``).

    With ``duration=None`` a ``reset_at`` resets the spend once; with neither the budget never resets
    (use ``None`` instead of a period for that). Build one per key and keep it: it caches the current
    window's end, so the hot path recomputes it once per period rather than once per request.

        >>> BudgetPeriod("1mo").end_at(datetime(2024, 2, 10, 12, tzinfo=UTC))
        datetime.datetime(2024, 3, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """

    __slots__ = ("_anchor", "_anchor_us", "_end_us", "_months", "_step_us", "duration", "reset_at")

    def __init__(self, duration: str | None = None, reset_at: datetime | None = None) -> None:
        self.duration = duration
        self.reset_at = reset_at
        self._months = 0
        self._step_us = 0
        if duration is not None:
            try:
                value = duration.strip()
                if value.endswith("mo"):
                    parse_duration(value)
                    self._months = int(value[:-2])
                else:
                    self._step_us = int(parse_duration(value).total_seconds()) * _US
            except ValueError as exc:
                raise ConfigError(f"budget_duration: {exc}") from exc
            if not (self._months or self._step_us):
                raise ConfigError(f"budget_duration must be longer than zero, got {duration!r}")
        if reset_at is not None:
            self._anchor = reset_at if reset_at.tzinfo is not None else reset_at.replace(tzinfo=UTC)
        else:
            self._anchor = _EPOCH_MONDAY if duration is not None and duration.strip().endswith("w") else _EPOCH
        self._anchor_us = to_us(self._anchor)
        self._end_us = -1  # not computed yet

    def __repr__(self) -> str:
        return f"BudgetPeriod({self.duration!r}, reset_at={self.reset_at!r})"

    def end_us(self, now_us: int) -> int:
        """The end of the window holding ``now_us``, in microseconds; :data:`NEVER` if it never resets."""
        end = self._end_us
        if end > now_us or end == NEVER:
            return end
        end = self._end_us = self._compute_end(now_us)
        return end

    def start_at(self, now: datetime) -> datetime | None:
        """The start of the window holding ``now`` (at or after its ``reset_at`` anchor); ``None`` when
        the spend never resets, or ``now`` is before the anchor (the window's start is not known).

            >>> BudgetPeriod("30d", reset_at=datetime(2025, 2, 1, tzinfo=UTC)).start_at(datetime(2025, 3, 15, tzinfo=UTC))
            datetime.datetime(2025, 3, 3, 0, 0, tzinfo=datetime.timezone.utc)
        """
        now_us = to_us(now)
        if self._anchor_us > now_us or not (self._step_us or self._months):
            return None
        end = self._compute_end(now_us)
        if self._step_us:
            return from_us(end - self._step_us)
        # months: the boundary before the end, counted from the anchor like the end itself
        k = 0
        while to_us(add_duration(self._anchor, f"{(k + 1) * self._months}mo")) < end:
            k += 1
        return add_duration(self._anchor, f"{k * self._months}mo") if k else self._anchor

    def end_at(self, now: datetime) -> datetime | None:
        """The end of the window holding ``now``; ``None`` if the spend never resets again."""
        end = self.end_us(to_us(now))
        return None if end == NEVER else from_us(end)

    def _compute_end(self, now_us: int) -> int:
        if self._anchor_us > now_us:
            # a reset still ahead closes the current window, however far ahead an admin put it
            return self._anchor_us
        if self._step_us:
            steps = (now_us - self._anchor_us) // self._step_us + 1
            return self._anchor_us + steps * self._step_us
        if not self._months:
            return NEVER  # a one-off reset that has happened: lifetime from here on
        now = from_us(now_us)
        months = (now.year - self._anchor.year) * 12 + now.month - self._anchor.month
        k = max(1, months // self._months)
        # month lengths vary, so the estimate can be one window off either way; months are
        # always counted from the anchor so a clamped day (Jan 31 -> Feb 29) does not drift
        while to_us(add_duration(self._anchor, f"{k * self._months}mo")) <= now_us:
            k += 1
        while k > 1 and to_us(add_duration(self._anchor, f"{(k - 1) * self._months}mo")) > now_us:
            k -= 1
        return to_us(add_duration(self._anchor, f"{k * self._months}mo"))
