"""The SQLite store's spend logs: writing a batch of records (each charged once), reading them back
filtered, and the sums and daily rows the spend routes and budgets read."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from itertools import chain
from typing import Any

import msgspec
from msgspec import structs

from llmswitch.store.base import COST_PLACES, DailySpend
from llmswitch.store.records import (
    SPEND_FIELDS,
    SpendRecord,
    spend_by_key,
    utc,
)
from llmswitch.store.sqlite_common import CHUNK, next_key_seq
from llmswitch.store.sqlite_common import iso as _iso
from llmswitch.store.sqlite_common import transaction as _transaction
from llmswitch.store.sqlite_subjects import add_logged_spend

_SPEND_COLUMNS = ", ".join(SPEND_FIELDS)
# the optional fields (default None) are bound as an empty blob when None, which NULLIF turns into NULL:
# binding None itself costs Python's sqlite3 a failed adapter lookup (an AttributeError raised and
# cleared) per value, the better part of a microsecond, and a record has half a dozen of them
_OPTIONAL_SPEND = frozenset(f.name for f in structs.fields(SpendRecord) if f.default is None)
_NULL = bytearray()
_SPEND_VALUES = ", ".join("NULLIF(?, x'')" if name in _OPTIONAL_SPEND else "?" for name in SPEND_FIELDS)
# A batch is inserted with a few multi-row statements rather than one statement a row: Python's sqlite3
# lets go of the GIL around every statement it steps, so executemany over 100 rows hands the GIL to the
# event loop and takes it back 100 times (each hop a wake-up of the other thread). Rows go in groups of
# _ROW_GROUPS, largest first (100 rows: 64 + 32 + 4), so a handful of statement shapes are prepared once
# and kept in the connection's statement cache.
_ROW_GROUPS = (64, 32, 16, 8, 4, 2, 1)


def _insert_spend_sql(rows: int) -> str:
    values = ", ".join([f"({_SPEND_VALUES})"] * rows)
    return f"INSERT INTO llmswitch_spend_logs ({_SPEND_COLUMNS}) VALUES {values} ON CONFLICT (request_id) DO NOTHING"


_INSERT_SPEND = {rows: _insert_spend_sql(rows) for rows in _ROW_GROUPS}
_SPEND_TIME = SPEND_FIELDS.index("time")
_SPEND_METADATA = SPEND_FIELDS.index("metadata")
_SPEND_FLAGS = tuple(SPEND_FIELDS.index(name) for name in ("cache_hit", "stream", "estimated"))
_ADD_SPEND = "UPDATE llmswitch_keys SET spend = money_add(spend, ?), change_seq = ? WHERE token_hash = ?"
_SPEND_BOOL_FIELDS = frozenset({"cache_hit", "stream", "estimated"})
_encode_json = msgspec.json.Encoder().encode


def _insert_spend_logs(conn: sqlite3.Connection, records: list[SpendRecord]) -> int:
    ids = [rec.request_id for rec in records]
    if len(set(ids)) < len(ids):
        # a request id twice in one batch is stored (and counted) once, as its first record
        first: dict[str, SpendRecord] = {}
        for rec in records:
            first.setdefault(rec.request_id, rec)
        records = list(first.values())
        ids = list(first)
    rows = [_encode_spend(rec) for rec in records]
    # only new rows may add to a key's spend. Usually every request id is new: insert them all, and
    # SQLite's count of rows changed says whether that was so
    try:
        with _transaction(conn):
            before = conn.total_changes
            _insert_rows(conn, rows)
            if conn.total_changes - before != len(rows):
                raise _AlreadyStored
            _add_logged_spend(conn, records)
        return len(records)
    except _AlreadyStored:
        pass
    # some were stored before (the journal replayed after a crash): undone, and done again with only
    # the request ids not stored yet (BEGIN IMMEDIATE's write lock keeps anyone from storing one meanwhile)
    with _transaction(conn):
        stored: set[str] = set()
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            found = conn.execute(
                f"SELECT request_id FROM llmswitch_spend_logs WHERE request_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            stored.update(row[0] for row in found)
        new = [at for at, request_id in enumerate(ids) if request_id not in stored]
        _insert_rows(conn, [rows[at] for at in new])
        inserted = [records[at] for at in new]
        _add_logged_spend(conn, inserted)
    return len(inserted)


def _insert_rows(conn: sqlite3.Connection, rows: list[list[Any]]) -> None:
    """Insert encoded spend rows (request ids new, or skipped by ``ON CONFLICT``) in few statements."""
    # a build may allow fewer bound parameters than the largest group needs (999 before SQLite 3.32);
    # one row a statement is always tried, so a limit below even that fails loudly instead of storing nothing
    most = max(1, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(SPEND_FIELDS))
    at, left = 0, len(rows)
    for size in _ROW_GROUPS:
        if size > most:
            continue
        while left >= size:
            conn.execute(_INSERT_SPEND[size], list(chain.from_iterable(rows[at : at + size])))
            at += size
            left -= size


class _AlreadyStored(Exception):
    """Some records of a batch were stored before: roll back, and insert only the new ones."""


def _add_logged_spend(conn: sqlite3.Connection, inserted: list[SpendRecord]) -> None:
    """Add the newly stored records' known cost to their keys, users and teams (in their transaction)."""
    totals = spend_by_key((rec.key_hash, rec.cost) for rec in inserted)
    if totals:
        seq = next_key_seq(conn)
        conn.executemany(_ADD_SPEND, [(amount, seq, token_hash) for token_hash, amount in totals])
    add_logged_spend(conn, [(rec.user_id, rec.team_id, rec.cost) for rec in inserted])


def _sum_spend(conn: sqlite3.Connection, where: str, params: list[Any]) -> float:
    row = conn.execute(f"SELECT COALESCE(money_sum(cost), 0) FROM llmswitch_spend_logs{where}", params).fetchone()
    return float(row[0])


def _spend_filters(
    equal: Mapping[str, str | int | None], start: datetime | None, end: datetime | None
) -> tuple[str, list[Any]]:
    where, params = [], []
    for column, value in equal.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    for op, bound in ((">=", utc(start)), ("<", utc(end))):
        if bound is not None:
            where.append(f"time {op} ?")
            params.append(_iso(bound))
    return (f" WHERE {' AND '.join(where)}" if where else ""), params


def _list_spend_logs(
    conn: sqlite3.Connection, where: str, params: list[Any], limit: int, offset: int
) -> list[SpendRecord]:
    rows = conn.execute(
        f"SELECT {_SPEND_COLUMNS} FROM llmswitch_spend_logs{where} ORDER BY time DESC, request_id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return [_decode_spend(row) for row in rows]


def _daily_spend(conn: sqlite3.Connection, column: str, where: str, params: list[Any]) -> list[DailySpend]:
    # times are fixed-width UTC text, so the first ten characters are the UTC day; costs are summed as
    # integers of 1e-10 USD, so the total is exact (a float sum carries noise: 0.000347 * 3 -> 0.0010409999999999998)
    rows = conn.execute(
        f"SELECT substr(time, 1, 10) AS day, {column} AS grp, count(*), sum(input_tokens), sum(output_tokens), "
        f"coalesce(sum(CAST(round(cost * {10**COST_PLACES}) AS INTEGER)), 0), sum(cache_hit), "
        f"coalesce(sum(CAST(round(cache_saved_cost * {10**COST_PLACES}) AS INTEGER)), 0) FROM llmswitch_spend_logs{where} "
        "GROUP BY day, grp ORDER BY day, grp IS NULL, grp",
        params,
    )
    return [
        DailySpend(
            date.fromisoformat(day),
            grp,
            n,
            inp,
            out,
            float(Decimal(units).scaleb(-COST_PLACES)),
            hits,
            float(Decimal(saved).scaleb(-COST_PLACES)),
        )
        for day, grp, n, inp, out, units, hits, saved in rows
    ]


# -- rows ----------------------------------------------------------------------------------------


def _encode_spend(rec: SpendRecord) -> list[Any]:
    """A spend record as the values of ``_INSERT_SPEND``."""
    row: list[Any] = [_NULL if value is None else value for value in structs.astuple(rec)]
    row[_SPEND_TIME] = _iso(rec.time)
    metadata = rec.metadata
    row[_SPEND_METADATA] = _encode_json(metadata).decode() if metadata else "{}"
    for at in _SPEND_FLAGS:
        row[at] = 1 if row[at] else 0  # an int: a bool, like None, costs the binding an adapter lookup
    return row


def _decode_spend(row: tuple[Any, ...]) -> SpendRecord:
    fields = dict(zip(SPEND_FIELDS, row, strict=True))
    fields["time"] = datetime.fromisoformat(fields["time"])
    fields["metadata"] = msgspec.json.decode(fields["metadata"])
    for name in _SPEND_BOOL_FIELDS:
        fields[name] = bool(fields[name])
    return SpendRecord(**fields)
