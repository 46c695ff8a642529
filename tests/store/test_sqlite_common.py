"""The SQLite store's datetime text: fixed width, so text order is time order, whatever the datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from llmswitch.store.sqlite_common import iso


@given(st.datetimes(timezones=st.just(UTC)))
def test_iso_is_isoformat_to_the_microsecond(value: datetime) -> None:
    assert iso(value) == value.isoformat(timespec="microseconds")
    assert len(iso(value)) == 32


@given(st.datetimes(timezones=st.just(UTC)), st.datetimes(timezones=st.just(UTC)))
def test_text_order_is_time_order(a: datetime, b: datetime) -> None:
    assert (iso(a) < iso(b)) == (a < b)


def test_datetimes_not_in_utc_keep_isoformats_answer() -> None:
    for value in (
        datetime(2025, 6, 1, 12, 0),  # naive
        datetime(2025, 6, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
        datetime(2025, 6, 1, 12, 0, tzinfo=timezone(timedelta(0))),
    ):
        assert iso(value) == value.isoformat(timespec="microseconds")
