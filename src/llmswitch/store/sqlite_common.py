"""What every module of the SQLite store shares: one call is one transaction, datetimes as sortable text."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime


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


def iso(value: datetime) -> str:
    """A UTC datetime as fixed-width ISO-8601 text (``2025-06-01T12:00:00.000000+00:00``): text order is time order."""
    return value.isoformat(timespec="microseconds")
