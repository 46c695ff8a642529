"""Users and teams in the PostgreSQL store: the methods, mixed into :class:`~llmswitch.store.postgres.PostgresStore`.

The method contracts are documented on :class:`~llmswitch.store.Store`; the change-sequence design
is the keys' one (see :mod:`llmswitch.store.base`), on the ``subjects`` counter row, whose row lock
orders concurrent writers.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg

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

_COLUMNS = ", ".join(SUBJECT_FIELDS)
_SELECT = f"SELECT {_COLUMNS} FROM llmswitch_subjects"
_INSERT = (
    f"INSERT INTO llmswitch_subjects ({_COLUMNS}, change_seq) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(SUBJECT_FIELDS) + 2))})"
)
_BUMP = "UPDATE llmswitch_change_counters SET value = value + 1 WHERE name = 'subjects' RETURNING value"
_CURRENT = "SELECT value FROM llmswitch_change_counters WHERE name = 'subjects'"
# one statement for every user and team of a spend batch
_ADD_LOGGED_SPEND = (
    "UPDATE llmswitch_subjects AS s SET spend = s.spend + v.amount, change_seq = $4 "
    "FROM unnest($1::text[], $2::text[], $3::numeric[]) AS v(kind, id, amount) WHERE s.kind = v.kind AND s.id = v.id"
)

if TYPE_CHECKING:
    # subscriptable for type checkers only
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]


class _Pooled(Protocol):
    def _connection(self) -> AbstractAsyncContextManager[Connection]: ...


class PostgresSubjects:
    """The user and team methods of the PostgreSQL store; ``self`` is the store (anything with its ``_connection``)."""

    async def create_subject(self: _Pooled, rec: SubjectRecord) -> SubjectRecord:
        rec = validate_subject(rec)
        async with self._connection() as conn, conn.transaction():
            seq = await conn.fetchval(_BUMP)
            try:
                await conn.execute(_INSERT, *(getattr(rec, name) for name in SUBJECT_FIELDS), seq)
            except asyncpg.UniqueViolationError as exc:
                raise SubjectExistsError(
                    f"a {rec.kind} with id {rec.id!r} already exists", kind=rec.kind, subject_id=rec.id
                ) from exc
            # created again after a delete: the old tombstone must not delete it on refresh
            await conn.execute("DELETE FROM llmswitch_subject_tombstones WHERE kind = $1 AND id = $2", rec.kind, rec.id)
        return rec

    async def get_subject(self: _Pooled, kind: SubjectKind, subject_id: str) -> SubjectRecord | None:
        check_kind(kind)
        async with self._connection() as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE kind = $1 AND id = $2", kind, subject_id)
        return None if row is None else _decode(row)

    async def update_subject(
        self: _Pooled, kind: SubjectKind, subject_id: str, /, **fields: Any
    ) -> SubjectRecord | None:
        check_kind(kind)
        checked = validate_subject_update(fields)
        if not checked:
            return await PostgresSubjects.get_subject(self, kind, subject_id)
        # field names come from validate_subject_update's allow-list, never from the caller unchecked
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(checked, start=1))
        n = len(checked)
        query = (
            f"UPDATE llmswitch_subjects SET {assignments}, updated_at = ${n + 1}, change_seq = ${n + 2} "
            f"WHERE kind = ${n + 3} AND id = ${n + 4} RETURNING {_COLUMNS}"
        )
        async with self._connection() as conn, conn.transaction():
            seq = await conn.fetchval(_BUMP)
            row = await conn.fetchrow(query, *checked.values(), utcnow(), seq, kind, subject_id)
        return None if row is None else _decode(row)

    async def delete_subjects(self: _Pooled, kind: SubjectKind, subject_ids: Iterable[str]) -> int:
        check_kind(kind)
        unique = list(dict.fromkeys(subject_ids))
        if not unique:
            return 0
        async with self._connection() as conn, conn.transaction():
            seq = await conn.fetchval(_BUMP)
            rows = await conn.fetch(
                "DELETE FROM llmswitch_subjects WHERE kind = $1 AND id = ANY($2::text[]) RETURNING id", kind, unique
            )
            found = [row[0] for row in rows]
            if found:
                await conn.execute(
                    "INSERT INTO llmswitch_subject_tombstones (kind, id, change_seq, deleted_at) "
                    "SELECT $1, i, $3, now() FROM unnest($2::text[]) AS i "
                    "ON CONFLICT (kind, id) DO UPDATE SET change_seq = EXCLUDED.change_seq, deleted_at = now()",
                    kind,
                    found,
                    seq,
                )
        return len(found)

    async def list_subjects(
        self: _Pooled, kind: SubjectKind, *, limit: int = 100, offset: int = 0
    ) -> list[SubjectRecord]:
        check_kind(kind)
        check_page(limit, offset)
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"{_SELECT} WHERE kind = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3", kind, limit, offset
            )
        return [_decode(row) for row in rows]

    async def count_subjects(self: _Pooled, kind: SubjectKind) -> int:
        check_kind(kind)
        async with self._connection() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM llmswitch_subjects WHERE kind = $1", kind))

    async def subjects_changed_since(self: _Pooled, cursor: int) -> SubjectChanges:
        # one snapshot for the counter and the rows: everything numbered up to the counter is in it
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            current = await conn.fetchval(_CURRENT)
            rows = await conn.fetch(f"{_SELECT} WHERE change_seq > $1 ORDER BY change_seq", cursor)
            deleted: list[tuple[SubjectKind, str]] = []
            if cursor > 0:
                tombstones = await conn.fetch(
                    "SELECT kind, id FROM llmswitch_subject_tombstones WHERE change_seq > $1 ORDER BY change_seq",
                    cursor,
                )
                deleted = [(check_kind(row[0]), row[1]) for row in tombstones]
        return SubjectChanges([_decode(row) for row in rows], deleted, int(current))

    async def add_subject_spend(self: _Pooled, kind: SubjectKind, subject_id: str, amount: float) -> float | None:
        check_kind(kind)
        amount = validate_spend_amount(amount)
        async with self._connection() as conn, conn.transaction():
            seq = await conn.fetchval(_BUMP)
            spend = await conn.fetchval(
                "UPDATE llmswitch_subjects SET spend = spend + $3, change_seq = $4 WHERE kind = $1 AND id = $2 "
                "RETURNING spend",
                kind,
                subject_id,
                amount,
                seq,
            )
        return None if spend is None else float(spend)


async def add_logged_spend(conn: Connection, rows: Iterable[tuple[str | None, str | None, float | None]]) -> None:
    """Inside ``insert_spend_logs``' transaction: add the newly stored records' known cost to their users
    and teams, given ``(user_id, team_id, cost)`` per record. Ids that are no stored subject add nothing."""
    totals = spend_by_subject(rows)
    if totals:
        seq = await conn.fetchval(_BUMP)
        kinds, ids, amounts = zip(*totals, strict=True)
        await conn.execute(_ADD_LOGGED_SPEND, list(kinds), list(ids), list(amounts), seq)


def _decode(row: asyncpg.Record) -> SubjectRecord:
    return SubjectRecord(**{name: row[name] for name in SUBJECT_FIELDS})
