"""Money in whole nano-dollars: floats read as the decimals they were written as, nothing drifts."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmswitch.limits.money import EXACT_LIMIT_NANOS, FLOAT_EXACT_NANOS, to_nanos, usd, usd_decimal


@pytest.mark.parametrize(
    ("amount", "nanos"),
    [
        (0.005, 5_000_000),
        (0.05, 50_000_000),
        (0.1 + 0.2, 300_000_000),  # 0.30000000000000004: binary noise far below a nano-dollar
        (1e-9, 1),
        (4e-10, 0),
        (6e-10, 1),
        (0, 0),
        (3, 3_000_000_000),
        (Decimal("0.0000000015"), 2),  # half to even
        (Decimal("0.0000000025"), 2),
        (Decimal("123.456789012345"), 123_456_789_012),
        (9_007_199.254740991, 9_007_199_254_740_991),
        (1e308, 10**317),  # a budget meant as "no limit" is still a number (a Python integer)
        (Decimal("1234567890123456789012345678901234.0000000005"), 1234567890123456789012345678901234 * 10**9),
    ],
)
def test_to_nanos(amount: float | int | Decimal, nanos: int) -> None:
    assert to_nanos(amount) == nanos


@pytest.mark.parametrize("bad", [-0.01, -1, math.inf, math.nan, Decimal("NaN"), Decimal("-1"), True, "0.1", None])
def test_to_nanos_refuses_what_is_not_an_amount(bad: object) -> None:
    with pytest.raises(ValueError, match="costs must be finite non-negative numbers"):
        to_nanos(bad)  # type: ignore[arg-type]


def test_ten_half_cents_are_five_cents() -> None:
    total = 0.0
    for _ in range(10):
        total += 0.005
    assert total < 0.05  # what a float sum believes
    assert sum(to_nanos(0.005) for _ in range(10)) == to_nanos(0.05)


@given(st.integers(0, FLOAT_EXACT_NANOS - 1))
def test_usd_round_trips_every_exact_amount(nanos: int) -> None:
    assert to_nanos(usd(nanos)) == nanos
    assert to_nanos(usd_decimal(nanos)) == nanos


@given(st.integers(0, EXACT_LIMIT_NANOS * 4))
def test_decimals_round_trip_at_any_size(nanos: int) -> None:
    assert to_nanos(usd_decimal(nanos)) == nanos
    assert usd_decimal(nanos) * 10**9 == nanos


@given(st.decimals(min_value=0, max_value=4 * 10**6, places=9, allow_nan=False, allow_infinity=False))
def test_a_float_means_its_decimal(amount: Decimal) -> None:
    # any amount of whole nano-dollars below 2**53, written as a float, is read back exactly
    assert to_nanos(float(amount)) == int(amount * 10**9)
