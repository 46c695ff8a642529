"""GCRA in integer microseconds: exact at the edges, and the same answers the Lua copy gives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmswitch.limits.gcra import NEVER_FITS, PERIOD_US, decay, take


def admit_burst(limit: int, cost: int = 1) -> tuple[int, int]:
    """Admit requests at one instant until refused: (how many, debt)."""
    debt, admitted = 0, 0
    while True:
        ok, _, _, _, new = take(debt, limit, cost)
        if not ok:
            return admitted, debt
        debt, admitted = new, admitted + 1


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 60, 1000, 999_983])
def test_a_full_bucket_admits_exactly_the_limit_at_once(limit: int) -> None:
    admitted, debt = admit_burst(limit) if limit < 2000 else (limit, limit * PERIOD_US)
    assert admitted == limit
    ok, remaining, reset_us, retry_us, _ = take(debt, limit, 1)
    assert (ok, remaining, reset_us) == (False, 0, PERIOD_US)
    # one request drains in period/limit: the exact moment it fits again
    assert retry_us == -(-PERIOD_US // limit)


@pytest.mark.parametrize("limit", [1, 3, 7, 60, 1000])
def test_retry_after_is_the_first_microsecond_that_fits(limit: int) -> None:
    _, debt = admit_burst(limit)
    retry = take(debt, limit, 1)[3]
    assert take(decay(debt, 0, retry - 1, limit), limit, 1)[0] is False
    assert take(decay(debt, 0, retry, limit), limit, 1)[0] is True


def test_capacity_refills_continuously() -> None:
    _, debt = admit_burst(60)
    # half a minute gives back half the requests, not all of them at a window boundary
    assert take(decay(debt, 0, 30_000_000, 60), 60, 1)[1] == 29  # 30 free, this one takes one
    assert take(decay(debt, 0, 60_000_000, 60), 60, 1)[1] == 59


def test_a_request_larger_than_the_limit_never_fits() -> None:
    ok, remaining, reset_us, retry_us, _ = take(0, 1000, 1001)
    assert (ok, remaining, reset_us, retry_us) == (False, 1000, 0, NEVER_FITS)


def test_exactly_the_limit_fits_in_an_empty_bucket() -> None:
    assert take(0, 1000, 1000)[:3] == (True, 0, PERIOD_US)


def test_a_zero_cost_request_still_needs_room_for_one() -> None:
    _, debt = admit_burst(10, cost=1)
    ok, _, _, retry_us, _ = take(debt, 10, 0)
    assert not ok and retry_us == PERIOD_US // 10
    assert take(0, 10, 0)[0] and take(0, 10, 0)[4] == 0  # admitted, and it consumes nothing


def test_a_zero_limit_blocks_everything() -> None:
    assert take(0, 0, 1) == (False, 0, 0, NEVER_FITS, 0)


def test_a_clock_going_backwards_does_not_add_debt() -> None:
    assert decay(500, 1_000, 900, 3) == 500


@given(
    limit=st.integers(1, 150_000_000),
    costs=st.lists(st.integers(0, 5_000), min_size=1, max_size=30),
    gaps=st.lists(st.integers(0, 10_000_000), min_size=30, max_size=30),
)
def test_admitted_tokens_never_exceed_the_limit_plus_what_drained(
    limit: int, costs: list[int], gaps: list[int]
) -> None:
    """Over any run, admitted <= limit + limit * elapsed / period: the token bucket's guarantee."""
    debt, last, now, admitted = 0, 0, 0, 0
    for cost, gap in zip(costs, gaps, strict=False):
        now += gap
        debt = decay(debt, last, now, limit)
        last = now
        ok, remaining, _, retry_us, debt = take(debt, limit, cost)
        admitted += cost if ok else 0
        assert 0 <= remaining <= limit
        assert debt <= limit * PERIOD_US
        if not ok and retry_us != NEVER_FITS:
            assert take(decay(debt, now, now + retry_us, limit), limit, cost)[0]
    assert admitted * PERIOD_US <= limit * PERIOD_US + limit * now
