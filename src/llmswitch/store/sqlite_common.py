"""What every module of the SQLite store shares: one call is one transaction, datetimes as sortable text."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

_to_builtins = msgspec.to_builtins


@contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    """``BEGIN <mode>`` … ``COMMIT``, or ``ROLLBACK`` if the body raises."""
    conn.execute(f"BEGIN {mode}")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def exact(value: float | int | str | None) -> Decimal:
    """A stored amount as the decimal it was written as (a float's shortest repr: 0.1 is 0.1)."""
    if value is None:
        return Decimal(0)
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def money_add(total: float | None, amount: float | None) -> float:
    """SQL ``money_add(spend, ?)``: the sum of two amounts in decimal, stored as the nearest double.

    ``spend + ?`` in binary floats drifts (ten times 0.005 is 0.049999999999999996); the decimal sum
    does not, and a REAL column holds any amount of up to 15 significant digits exactly enough for its
    shortest repr to give it back (a million dollars to the nano-dollar)."""
    return float(exact(total) + exact(amount))


class MoneySum:
    """SQL aggregate ``money_sum(cost)``: ``SUM`` in decimal (see :func:`money_add`)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: float | None) -> None:
        if value is not None:
            self.total += exact(value)

    def finalize(self) -> float:
        return float(self.total)


def register_money(conn: sqlite3.Connection) -> None:
    """Make :func:`money_add` and ``money_sum`` callable from this connection's SQL."""
    conn.create_function("money_add", 2, money_add, deterministic=True)
    conn.create_aggregate("money_sum", 1, MoneySum)  # type: ignore[arg-type]


def iso(value: datetime) -> str:
    """A UTC datetime as fixed-width ISO-8601 text (``2025-06-01T12:00:00.000000+00:00``): text order is time order."""
    # msgspec writes RFC 3339 in C, several times faster than an aware datetime's isoformat (the
    # spend shipper formats one per record): "2025-06-01T12:00:00.123456Z", or without the fraction
    text: str = _to_builtins(value)
    if text[-1:] == "Z":
        if len(text) == 27:
            return text[:-1] + "+00:00"
        if len(text) == 20:
            return text[:-1] + ".000000+00:00"
    return value.isoformat(timespec="microseconds")


# one row <-> one record: JSON text for lists and dicts, ISO-8601 UTC text for times, 0/1 for booleans
JSON_FIELDS = frozenset(
    {
        "models",
        "metadata",
        "aliases",
        "tags",
        "model_rpm_limit",
        "model_tpm_limit",
        "model_max_budget",
        "members_with_roles",
    }
)
TIME_FIELDS = frozenset({"budget_reset_at", "expires", "created_at", "updated_at"})


def encode_value(name: str, value: Any) -> Any:
    """A record field as SQLite stores it."""
    if value is None:
        return None
    if name in JSON_FIELDS:
        return msgspec.json.encode(value).decode()
    if name in TIME_FIELDS:
        return iso(value)
    if name == "blocked":
        return int(value)
    return value


def decode_fields(names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    """A row read back as the record's fields (the inverse of :func:`encode_value`)."""
    fields: dict[str, Any] = {}
    for name, value in zip(names, row, strict=True):
        if value is None:
            fields[name] = None
        elif name in JSON_FIELDS:
            fields[name] = msgspec.json.decode(value)
        elif name in TIME_FIELDS:
            fields[name] = datetime.fromisoformat(value)
        elif name == "blocked":
            fields[name] = bool(value)
        else:
            fields[name] = value
    return fields


# old SQLite builds allow 999 bound parameters per statement
CHUNK = 500
CURRENT_KEY_SEQ = "SELECT value FROM llmswitch_change_counters WHERE name = 'keys'"
_BUMP_KEY_SEQ = "UPDATE llmswitch_change_counters SET value = value + 1 WHERE name = 'keys'"


def next_key_seq(conn: sqlite3.Connection) -> int:
    """The keys' next change number (inside a write transaction: the write lock makes numbers commit in order)."""
    conn.execute(_BUMP_KEY_SEQ)
    return int(conn.execute(CURRENT_KEY_SEQ).fetchone()[0])
