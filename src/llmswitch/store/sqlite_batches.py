"""The Batch API's files, batches and lines in the SQLite store (one process; see ``batch_records``).

Each call is one transaction on the store's own thread. A line is claimed by setting its lease; a lease
that ran out (the process was killed) is claimed again after a restart.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from llmswitch.store.batch_records import (
    BATCH_FIELDS,
    BATCH_JSON_FIELDS,
    BATCH_MUTABLE,
    FILE_FIELDS,
    BatchRecord,
    ClaimedLine,
    DoneLine,
    FileRecord,
    LineOutcome,
    decode_json,
    encode_json,
)
from llmswitch.store.sqlite_common import transaction

P = ParamSpec("P")
T = TypeVar("T")

_FILE_COLUMNS = ", ".join(FILE_FIELDS)
_BATCH_COLUMNS = ", ".join(BATCH_FIELDS)
_ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")


class _Caller(Protocol):
    def _call(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


class SQLiteBatches:
    """The batch methods of the SQLite store."""

    async def create_file(self: _Caller, rec: FileRecord, content: bytes | None = None) -> None:
        await self._call(_create_file, rec, content)

    async def get_file(self: _Caller, file_id: str) -> FileRecord | None:
        return await self._call(_get_file, file_id)

    async def file_content(self: _Caller, file_id: str) -> bytes | None:
        return await self._call(_file_content, file_id)

    async def list_files(
        self: _Caller, *, owner: str | None, purpose: str | None = None, limit: int = 100, after: str | None = None
    ) -> list[FileRecord]:
        return await self._call(_list_files, owner, purpose, limit, after)

    async def delete_file(self: _Caller, file_id: str) -> bool:
        return await self._call(_delete_file, file_id)

    async def create_batch(self: _Caller, rec: BatchRecord, lines: Sequence[tuple[str, str]]) -> None:
        await self._call(_create_batch, rec, list(lines))

    async def get_batch(self: _Caller, batch_id: str) -> BatchRecord | None:
        return await self._call(_get_batch, batch_id)

    async def list_batches(
        self: _Caller, *, owner: str | None, api: str | None = None, limit: int = 20, after: str | None = None
    ) -> list[BatchRecord]:
        return await self._call(_list_batches, owner, api, limit, after)

    async def update_batch(
        self: _Caller, batch_id: str, /, *, when: Collection[str] | None = None, **fields: Any
    ) -> BatchRecord | None:
        return await self._call(_update_batch, batch_id, when, fields)

    async def active_batches(self: _Caller) -> list[BatchRecord]:
        return await self._call(_active_batches)

    async def lease_batch(self: _Caller, batch_id: str, worker: str, lease_s: float) -> bool:
        return await self._call(_lease_batch, batch_id, worker, lease_s)

    async def claim_batch_lines(
        self: _Caller, batch_id: str, worker: str, lease_s: float, limit: int
    ) -> list[ClaimedLine]:
        return await self._call(_claim, batch_id, worker, lease_s, limit)

    async def renew_batch_leases(self: _Caller, worker: str, lease_s: float) -> int:
        return await self._call(_renew, worker, lease_s)

    async def release_batch_lines(self: _Caller, batch_id: str, worker: str, line_nos: Sequence[int]) -> None:
        await self._call(_release, batch_id, worker, list(line_nos))

    async def finish_batch_lines(self: _Caller, batch_id: str, outcomes: Sequence[LineOutcome]) -> int:
        return await self._call(_finish, batch_id, list(outcomes))

    async def batch_line_states(self: _Caller, batch_id: str) -> dict[str, int]:
        return await self._call(_states, batch_id)

    async def batch_lines(self: _Caller, batch_id: str, after_line: int, limit: int) -> list[DoneLine]:
        return await self._call(_lines, batch_id, after_line, limit)


def _create_file(conn: sqlite3.Connection, rec: FileRecord, content: bytes | None) -> None:
    with transaction(conn):
        conn.execute(
            f"INSERT INTO llmswitch_files ({_FILE_COLUMNS}, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes, storage = excluded.storage, "
            "content = excluded.content",
            (*(getattr(rec, f) for f in FILE_FIELDS), content),
        )


def _file(row: Sequence[Any]) -> FileRecord:
    return FileRecord(**dict(zip(FILE_FIELDS, row, strict=True)))


def _get_file(conn: sqlite3.Connection, file_id: str) -> FileRecord | None:
    row = conn.execute(f"SELECT {_FILE_COLUMNS} FROM llmswitch_files WHERE id = ?", (file_id,)).fetchone()
    return _file(row) if row else None


def _file_content(conn: sqlite3.Connection, file_id: str) -> bytes | None:
    row = conn.execute("SELECT content FROM llmswitch_files WHERE id = ?", (file_id,)).fetchone()
    return bytes(row[0]) if row and row[0] is not None else None


def _list_files(
    conn: sqlite3.Connection, owner: str | None, purpose: str | None, limit: int, after: str | None
) -> list[FileRecord]:
    rows = _newest_first(conn, "llmswitch_files", _FILE_COLUMNS, owner, {"purpose": purpose}, limit, after)
    return [_file(r) for r in rows]


def _newest_first(
    conn: sqlite3.Connection,
    table: str,
    columns: str,
    owner: str | None,
    equal: dict[str, Any],
    limit: int,
    after: str | None,
) -> list[Any]:
    """A page of ``table`` (owned by ``owner`` unless ``None``, and with each column of ``equal`` whose value
    is not ``None`` equal to it), newest first, after the row ``after``."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("owner", owner), *equal.items()):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if after is not None:
        where.append(f"(created_at, id) < (SELECT created_at, id FROM {table} WHERE id = ?)")
        params.append(after)
    sql = f"SELECT {columns} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return conn.execute(sql + " ORDER BY created_at DESC, id DESC LIMIT ?", (*params, limit)).fetchall()


def _delete_file(conn: sqlite3.Connection, file_id: str) -> bool:
    with transaction(conn):
        return conn.execute("DELETE FROM llmswitch_files WHERE id = ?", (file_id,)).rowcount > 0


def _batch_values(rec: BatchRecord) -> list[Any]:
    return [encode_json(getattr(rec, f)) if f in BATCH_JSON_FIELDS else getattr(rec, f) for f in BATCH_FIELDS]


def _batch(row: Sequence[Any]) -> BatchRecord:
    values = {f: decode_json(v) if f in BATCH_JSON_FIELDS else v for f, v in zip(BATCH_FIELDS, row, strict=True)}
    return BatchRecord(**values)


def _create_batch(conn: sqlite3.Connection, rec: BatchRecord, lines: list[tuple[str, str]]) -> None:
    with transaction(conn):
        conn.execute(
            f"INSERT INTO llmswitch_batches ({_BATCH_COLUMNS}) VALUES ({', '.join('?' * len(BATCH_FIELDS))})",
            _batch_values(rec),
        )
        conn.executemany(
            "INSERT INTO llmswitch_batch_lines (batch_id, line_no, custom_id, body) VALUES (?, ?, ?, ?)",
            ((rec.id, n, custom_id, body) for n, (custom_id, body) in enumerate(lines, start=1)),
        )


def _get_batch(conn: sqlite3.Connection, batch_id: str) -> BatchRecord | None:
    row = conn.execute(f"SELECT {_BATCH_COLUMNS} FROM llmswitch_batches WHERE id = ?", (batch_id,)).fetchone()
    return _batch(row) if row else None


def _list_batches(
    conn: sqlite3.Connection, owner: str | None, api: str | None, limit: int, after: str | None
) -> list[BatchRecord]:
    rows = _newest_first(conn, "llmswitch_batches", _BATCH_COLUMNS, owner, {"api": api}, limit, after)
    return [_batch(r) for r in rows]


def _update_batch(
    conn: sqlite3.Connection, batch_id: str, when: Collection[str] | None, fields: dict[str, Any]
) -> BatchRecord | None:
    bad = set(fields) - BATCH_MUTABLE
    if bad:
        raise TypeError(f"cannot update batch fields {sorted(bad)}")
    sets = ", ".join(f"{f} = ?" for f in fields)
    params = [encode_json(v) if f in BATCH_JSON_FIELDS else v for f, v in fields.items()]
    sql = f"UPDATE llmswitch_batches SET {sets} WHERE id = ?"
    params.append(batch_id)
    if when is not None:
        sql += f" AND status IN ({', '.join('?' * len(when))})"
        params.extend(when)
    with transaction(conn):
        if fields and conn.execute(sql, params).rowcount == 0:
            return None
        return _get_batch(conn, batch_id)


def _active_batches(conn: sqlite3.Connection) -> list[BatchRecord]:
    rows = conn.execute(
        f"SELECT {_BATCH_COLUMNS} FROM llmswitch_batches WHERE status IN (?, ?, ?, ?) ORDER BY created_at", _ACTIVE
    ).fetchall()
    return [_batch(r) for r in rows]


def _lease_batch(conn: sqlite3.Connection, batch_id: str, worker: str, lease_s: float) -> bool:
    now = time.time()
    with transaction(conn):
        cur = conn.execute(
            "UPDATE llmswitch_batches SET lease_owner = ?, lease_until = ? WHERE id = ? "
            "AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
            (worker, now + lease_s, batch_id, worker, now),
        )
        return cur.rowcount > 0


def _claim(conn: sqlite3.Connection, batch_id: str, worker: str, lease_s: float, limit: int) -> list[ClaimedLine]:
    now = time.time()
    with transaction(conn):
        rows = conn.execute(
            "SELECT line_no FROM llmswitch_batch_lines WHERE batch_id = ? "
            "AND (state = 'pending' OR (state = 'leased' AND lease_until < ?)) ORDER BY line_no LIMIT ?",
            (batch_id, now, limit),
        ).fetchall()
        if not rows:
            return []
        nos = [r[0] for r in rows]
        marks = ", ".join("?" * len(nos))
        conn.execute(
            "UPDATE llmswitch_batch_lines SET state = 'leased', lease_owner = ?, lease_until = ?, "
            f"attempts = attempts + 1 WHERE batch_id = ? AND line_no IN ({marks})",
            (worker, now + lease_s, batch_id, *nos),
        )
        got = conn.execute(
            "SELECT batch_id, line_no, custom_id, body, attempts FROM llmswitch_batch_lines "
            f"WHERE batch_id = ? AND line_no IN ({marks}) ORDER BY line_no",
            (batch_id, *nos),
        ).fetchall()
    return [ClaimedLine(*r) for r in got]


def _renew(conn: sqlite3.Connection, worker: str, lease_s: float) -> int:
    with transaction(conn):
        return conn.execute(
            "UPDATE llmswitch_batch_lines SET lease_until = ? WHERE lease_owner = ? AND state = 'leased'",
            (time.time() + lease_s, worker),
        ).rowcount


def _release(conn: sqlite3.Connection, batch_id: str, worker: str, line_nos: list[int]) -> None:
    if not line_nos:
        return
    with transaction(conn):
        conn.execute(
            "UPDATE llmswitch_batch_lines SET state = 'pending', lease_owner = NULL, lease_until = NULL "
            f"WHERE batch_id = ? AND lease_owner = ? AND state = 'leased' AND line_no IN ({', '.join('?' * len(line_nos))})",
            (batch_id, worker, *line_nos),
        )


def _finish(conn: sqlite3.Connection, batch_id: str, outcomes: list[LineOutcome]) -> int:
    done = failed = 0
    with transaction(conn):
        for o in outcomes:
            cur = conn.execute(
                "UPDATE llmswitch_batch_lines SET state = 'done', status_code = ?, response = ?, failed = ?, "
                "lease_owner = NULL, lease_until = NULL WHERE batch_id = ? AND line_no = ? AND state <> 'done'",
                (o.status_code, o.response, int(o.failed), batch_id, o.line_no),
            )
            if cur.rowcount:
                done += 1
                failed += o.failed
        if done:
            conn.execute(
                "UPDATE llmswitch_batches SET completed = completed + ?, failed = failed + ? WHERE id = ?",
                (done - failed, failed, batch_id),
            )
    return done


def _states(conn: sqlite3.Connection, batch_id: str) -> dict[str, int]:
    now = time.time()
    rows = conn.execute(
        "SELECT CASE WHEN state = 'leased' AND lease_until < ? THEN 'pending' ELSE state END, count(*) "
        "FROM llmswitch_batch_lines WHERE batch_id = ? GROUP BY 1",
        (now, batch_id),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def _lines(conn: sqlite3.Connection, batch_id: str, after_line: int, limit: int) -> list[DoneLine]:
    rows = conn.execute(
        "SELECT line_no, custom_id, state, status_code, response, failed FROM llmswitch_batch_lines "
        "WHERE batch_id = ? AND line_no > ? ORDER BY line_no LIMIT ?",
        (batch_id, after_line, limit),
    ).fetchall()
    return [DoneLine(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else bool(r[5])) for r in rows]
