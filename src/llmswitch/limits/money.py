"""Money as the limiters count it: whole nano-dollars (1e-9 USD) in integers, so sums are exact.

    >>> to_nanos(0.005), to_nanos(Decimal("0.05")), to_nanos(2)
    (5000000, 50000000, 2000000000)
    >>> usd(5_000_000 * 10)
    0.05

Binary floats cannot hold most decimal amounts: ten requests of $0.005 add up to 0.049999999999999996,
which is below a $0.05 budget, so an eleventh would be admitted. Integers do not drift. A nano-dollar
is fine enough for published prices: every rate in the shipped table is a whole number of
nano-dollars per token (the cheapest, $0.005 per million tokens, is 5), so costs at them are exact.
A cost with digits below a nano-dollar (a batch discount halving an odd rate, a configured price like
$0.01875 per million) is rounded to the nearest nano-dollar, once per request, never per token.

Redis runs its scripts in Lua, whose numbers are doubles: integers are exact up to 2**53, which is
:data:`EXACT_LIMIT_NANOS` nano-dollars, about $9,007,199.25. A subject's spend plus its reservations in
one budget period stays exact below that; above it, the Redis limiter's comparisons are off by at
most one part in 2**53 (the memory limiter uses Python integers, exact at any size).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Context, Decimal

NANOS_PER_USD = 1_000_000_000
EXACT_LIMIT_NANOS = 2**53
# below 2**22 USD (about $4.19 million) a double's spacing is under a nano-dollar, so a float of USD
# names every nano-dollar apart: usd() and to_nanos() are inverses there
FLOAT_EXACT_NANOS = 2**22 * NANOS_PER_USD
_FAST_BELOW_USD = EXACT_LIMIT_NANOS / NANOS_PER_USD  # where a product in doubles can still be exact


def to_nanos(amount: float | int | Decimal) -> int:
    """``amount`` USD in whole nano-dollars, rounded to the nearest (half to even).

    A float is read as the decimal it was written as (its shortest repr): 0.005 is 5,000,000, not the
    binary fraction just above it. Raises ``ValueError`` for a negative, infinite or NaN amount.
    """
    if type(amount) is float:
        if 0.0 <= amount < _FAST_BELOW_USD:  # the common case first: one comparison chain (NaN fails it)
            n = round(amount * NANOS_PER_USD)
            # n / 1e9 is the double nearest to n nano-dollars: when that is the amount, the amount means
            # exactly n (a binary product like 0.005 * 1e9 may be 4999999.999999999 before the round)
            if n / NANOS_PER_USD == amount:
                return n
        elif not 0.0 <= amount < math.inf:
            raise ValueError(f"costs must be finite non-negative numbers, got {amount!r}")
        return _decimal_nanos(Decimal(repr(amount)))
    if isinstance(amount, bool):
        raise ValueError(f"costs must be finite non-negative numbers, got {amount!r}")
    if isinstance(amount, int):
        if amount < 0:
            raise ValueError(f"costs must be finite non-negative numbers, got {amount!r}")
        return amount * NANOS_PER_USD
    if isinstance(amount, Decimal):
        if not amount.is_finite() or amount < 0:
            raise ValueError(f"costs must be finite non-negative numbers, got {amount!r}")
        return _decimal_nanos(amount)
    if isinstance(amount, float):  # a float subclass (numpy's float64, say)
        return to_nanos(float(amount))
    raise ValueError(f"costs must be finite non-negative numbers, got {amount!r}")


def _decimal_nanos(amount: Decimal) -> int:
    # exact at any size: a context as precise as the amount has digits (the default rounds to 28)
    context = Context(prec=max(28, len(amount.as_tuple().digits) + 12), rounding=ROUND_HALF_EVEN)
    return int(amount.scaleb(9, context).to_integral_value(ROUND_HALF_EVEN, context))


def usd(nanos: int) -> float:
    """Nano-dollars as a float of USD: the double nearest the exact amount (``to_nanos`` gives it back
    below :data:`FLOAT_EXACT_NANOS`; use :func:`usd_decimal` where larger sums must stay exact)."""
    return nanos / NANOS_PER_USD


def usd_decimal(nanos: int) -> Decimal:
    """Nano-dollars as an exact :class:`~decimal.Decimal` of USD.

    >>> usd_decimal(5_000_000)
    Decimal('0.005000000')
    """
    return Decimal(nanos).scaleb(-9)
