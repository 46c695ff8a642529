"""How amounts of money are written in the gateway's answers: exact to ``COST_PLACES`` decimal places.

Costs are computed and stored as binary floats, and a sum of them carries float noise
(``0.000347 * 3`` adds up to ``0.0010409999999999998``). Every amount the admin and spend API answers
with, and the ``x-llmswitch-cost`` header, is rounded to 10 decimal places (a ten-thousandth of a
millionth of a dollar: far below any price per token) and written as the shortest number that reads
back as that value, so ``0.001041`` is what a client sees and adds up.

    >>> render_cost(0.000347 + 0.000347 + 0.000347)
    0.001041
    >>> cost_text(0.1 + 0.2), cost_text(0.0), cost_text(12)
    ('0.3', '0', '12')
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from llmswitch.store.base import COST_PLACES

_QUANTUM = Decimal(1).scaleb(-COST_PLACES)
_FIXED = f".{COST_PLACES}f"


def cost_decimal(value: float | int | Decimal) -> Decimal:
    """``value`` as a Decimal rounded to ``COST_PLACES`` (a float is read as its shortest repr)."""
    exact = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    return exact.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def render_cost(value: float | int | Decimal | None) -> float | None:
    """The JSON number for an amount: a float whose shortest repr is the rounded decimal.

    ``round`` on a float is correctly rounded, and the float nearest a decimal of at most 15
    significant digits prints as that decimal; it is ten times cheaper than a Decimal, which counts
    on a page of 10,000 spend logs.
    """
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(cost_decimal(value))
    return round(float(value), COST_PLACES)


def cost_text(value: float | int | Decimal) -> str:
    """The amount as plain decimal text (headers): no exponent, no trailing zeros.

    Fixed-point formatting rounds correctly on its own; it runs once per priced answer, so it stays
    a plain format (about a quarter of the time of a Decimal round trip).
    """
    text = format(value, _FIXED)
    return text.rstrip("0").rstrip(".") if "." in text else text
