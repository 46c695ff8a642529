"""Users and teams in the SQLite store: the methods (mixed into :class:`~llmswitch.store.sqlite.SQLiteStore`)
and the SQL they run on the store's thread, one call per transaction.

The method contracts are documented on :class:`~llmswitch.store.Store`; the change-sequence design
is the keys' one (see :mod:`llmswitch.store.base`), on the ``subjects`` counter row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from llmswitch.store.base import SubjectChanges, check_page
from llmswitch.store.errors import SubjectExistsError
from llmswitch.store.records import (
    SUBJECT_FIELDS,
    SubjectKind,
    SubjectRecord,
    check_kind,
    spend_by_subject,
    utcnow,
    validate_spend_amount,
    validate_subject,
    validate_subject_update,
)
from llmswitch.store.sqlite_common import decode_fields, encode_value, iso, transaction

P = ParamSpec("P")
T = TypeVar("T")

_COLUMNS = ", ".join(SUBJECT_FIELDS)
_SELECT = f"SELECT {_COLUMNS} FROM llmswitch_subjects"
_INSERT = (
    f"INSERT INTO llmswitch_subjects ({_COLUMNS}, change_seq) VALUES ({', '.join('?' * (len(SUBJECT_FIELDS) + 1))})"
)
_BUMP = "UPDATE llmswitch_change_counters SET value = value + 1 WHERE name = 'subjects'"
_CURRENT = "SELECT value FROM llmswitch_change_counters WHERE name = 'subjects'"
_ADD_SPEND = "UPDATE llmswitch_subjects SET spend = money_add(spend, ?), change_seq = ? WHERE kind = ? AND id = ?"
# old SQLite builds allow 999 bound parameters per statement
_CHUNK = 500


class _Caller(Protocol):
    def _call(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


class SQLiteSubjects:
    """The user and team methods of the SQLite store; ``self`` is the store (anything with its ``_call``)."""

    async def create_subject(self: _Caller, rec: SubjectRecord) -> SubjectRecord:
        return await self._call(_create, validate_subject(rec))

    async def get_subject(self: _Caller, kind: SubjectKind, subject_id: str) -> SubjectRecord | None:
        return await self._call(_get, check_kind(kind), subject_id)

    async def update_subject(
        self: _Caller, kind: SubjectKind, subject_id: str, /, **fields: Any
    ) -> SubjectRecord | None:
        checked = validate_subject_update(fields)
        if not checked:
            return await self._call(_get, check_kind(kind), subject_id)
        return await self._call(_update, check_kind(kind), subject_id, checked)

    async def delete_subjects(self: _Caller, kind: SubjectKind, subject_ids: Iterable[str]) -> int:
        unique = list(dict.fromkeys(subject_ids))
        return await self._call(_delete, check_kind(kind), unique) if unique else 0

    async def list_subjects(
        self: _Caller, kind: SubjectKind, *, limit: int = 100, offset: int = 0
    ) -> list[SubjectRecord]:
        check_page(limit, offset)
        return await self._call(_list, check_kind(kind), limit, offset)

    async def count_subjects(self: _Caller, kind: SubjectKind) -> int:
        return await self._call(_count, check_kind(kind))

    async def subjects_changed_since(self: _Caller, cursor: int) -> SubjectChanges:
        return await self._call(_changed_since, cursor)

    async def add_subject_spend(self: _Caller, kind: SubjectKind, subject_id: str, amount: float) -> float | None:
        return await self._call(_add_spend, check_kind(kind), subject_id, validate_spend_amount(amount))


def add_logged_spend(conn: sqlite3.Connection, rows: Iterable[tuple[str | None, str | None, float | None]]) -> None:
    """Inside ``insert_spend_logs``' transaction: add the newly stored records' known cost to their users
    and teams, given ``(user_id, team_id, cost)`` per record. Ids that are no stored subject add nothing."""
    totals = spend_by_subject(rows)
    if totals:
        seq = _next_seq(conn)
        conn.executemany(_ADD_SPEND, [(amount, seq, kind, subject_id) for kind, subject_id, amount in totals])


# Everything below runs on the store's thread, one call at a time.


def _next_seq(conn: sqlite3.Connection) -> int:
    # inside a write transaction: the database write lock makes numbers commit in order
    conn.execute(_BUMP)
    return int(conn.execute(_CURRENT).fetchone()[0])


def _create(conn: sqlite3.Connection, rec: SubjectRecord) -> SubjectRecord:
    with transaction(conn):
        seq = _next_seq(conn)
        try:
            conn.execute(_INSERT, (*_encode(rec), seq))
        except sqlite3.IntegrityError as exc:
            raise SubjectExistsError(
                f"a {rec.kind} with id {rec.id!r} already exists", kind=rec.kind, subject_id=rec.id
            ) from exc
        # created again after a delete: the old tombstone must not delete it on refresh
        conn.execute("DELETE FROM llmswitch_subject_tombstones WHERE kind = ? AND id = ?", (rec.kind, rec.id))
    return rec


def _get(conn: sqlite3.Connection, kind: str, subject_id: str) -> SubjectRecord | None:
    row = conn.execute(f"{_SELECT} WHERE kind = ? AND id = ?", (kind, subject_id)).fetchone()
    return None if row is None else _decode(row)


def _update(conn: sqlite3.Connection, kind: str, subject_id: str, fields: dict[str, Any]) -> SubjectRecord | None:
    # field names come from validate_subject_update's allow-list, never from the caller unchecked
    assignments = ", ".join(f"{name} = ?" for name in fields)
    values = [encode_value(name, value) for name, value in fields.items()]
    with transaction(conn):
        seq = _next_seq(conn)
        cursor = conn.execute(
            f"UPDATE llmswitch_subjects SET {assignments}, updated_at = ?, change_seq = ? WHERE kind = ? AND id = ?",
            (*values, iso(utcnow()), seq, kind, subject_id),
        )
        if cursor.rowcount == 0:
            return None
        row = conn.execute(f"{_SELECT} WHERE kind = ? AND id = ?", (kind, subject_id)).fetchone()
    return _decode(row)


def _delete(conn: sqlite3.Connection, kind: str, subject_ids: list[str]) -> int:
    deleted_at = iso(utcnow())
    count = 0
    with transaction(conn):
        seq = _next_seq(conn)
        for start in range(0, len(subject_ids), _CHUNK):
            chunk = subject_ids[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            found = [
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM llmswitch_subjects WHERE kind = ? AND id IN ({marks})", (kind, *chunk)
                )
            ]
            if not found:
                continue
            conn.execute(
                f"DELETE FROM llmswitch_subjects WHERE kind = ? AND id IN ({', '.join('?' * len(found))})",
                (kind, *found),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO llmswitch_subject_tombstones (kind, id, change_seq, deleted_at) VALUES (?, ?, ?, ?)",
                [(kind, subject_id, seq, deleted_at) for subject_id in found],
            )
            count += len(found)
    return count


def _list(conn: sqlite3.Connection, kind: str, limit: int, offset: int) -> list[SubjectRecord]:
    rows = conn.execute(f"{_SELECT} WHERE kind = ? ORDER BY created_at, id LIMIT ? OFFSET ?", (kind, limit, offset))
    return [_decode(row) for row in rows]


def _count(conn: sqlite3.Connection, kind: str) -> int:
    return int(conn.execute("SELECT count(*) FROM llmswitch_subjects WHERE kind = ?", (kind,)).fetchone()[0])


def _changed_since(conn: sqlite3.Connection, cursor: int) -> SubjectChanges:
    # one read transaction, so the counter and the rows come from the same snapshot
    with transaction(conn, "DEFERRED"):
        current = int(conn.execute(_CURRENT).fetchone()[0])
        rows = conn.execute(f"{_SELECT} WHERE change_seq > ? ORDER BY change_seq", (cursor,)).fetchall()
        deleted: list[tuple[SubjectKind, str]] = []
        if cursor > 0:
            deleted = [
                (check_kind(kind), subject_id)
                for kind, subject_id in conn.execute(
                    "SELECT kind, id FROM llmswitch_subject_tombstones WHERE change_seq > ? ORDER BY change_seq",
                    (cursor,),
                )
            ]
    return SubjectChanges([_decode(row) for row in rows], deleted, current)


def _add_spend(conn: sqlite3.Connection, kind: str, subject_id: str, amount: float) -> float | None:
    with transaction(conn):
        seq = _next_seq(conn)
        if conn.execute(_ADD_SPEND, (amount, seq, kind, subject_id)).rowcount == 0:
            return None
        row = conn.execute("SELECT spend FROM llmswitch_subjects WHERE kind = ? AND id = ?", (kind, subject_id))
        return float(row.fetchone()[0])


# -- rows ----------------------------------------------------------------------------------------


def _encode(rec: SubjectRecord) -> tuple[Any, ...]:
    return tuple(encode_value(name, getattr(rec, name)) for name in SUBJECT_FIELDS)


def _decode(row: tuple[Any, ...]) -> SubjectRecord:
    return SubjectRecord(**decode_fields(SUBJECT_FIELDS, row))
