"""The Batch API's files, batches and lines in the PostgreSQL store, shared by every gateway instance.

Lines are claimed with ``FOR UPDATE SKIP LOCKED``: instances working on one batch never wait on each
other's rows, and a line whose lease ran out (its instance was killed) is claimed by the next instance
that looks. Leases are timed by PostgreSQL's clock, so hosts whose clocks disagree still agree on them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

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

_FILE_COLUMNS = ", ".join(FILE_FIELDS)
_BATCH_COLUMNS = ", ".join(BATCH_FIELDS)
_NOW = "extract(epoch from clock_timestamp())::double precision"
_ACTIVE = ["validating", "in_progress", "finalizing", "cancelling"]


class _Pooled(Protocol):
    def _connection(self) -> AbstractAsyncContextManager[Any]: ...


def _file(row: Any) -> FileRecord:
    return FileRecord(**{f: row[f] for f in FILE_FIELDS})


def _batch(row: Any) -> BatchRecord:
    return BatchRecord(**{f: decode_json(row[f]) if f in BATCH_JSON_FIELDS else row[f] for f in BATCH_FIELDS})


def _newest_first(
    table: str, columns: str, owner: str | None, equal: dict[str, Any], limit: int, after: str | None
) -> tuple[str, list[Any]]:
    """The query for a page of ``table`` (owned by ``owner`` unless ``None``, and with each column of ``equal``
    whose value is not ``None`` equal to it), newest first, after the row ``after``; and its parameters."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("owner", owner), *equal.items()):
        if value is not None:
            params.append(value)
            where.append(f"{column} = ${len(params)}")
    if after is not None:
        params.append(after)
        where.append(f"(created_at, id) < (SELECT created_at, id FROM {table} WHERE id = ${len(params)})")
    params.append(limit)
    filters = " WHERE " + " AND ".join(where) if where else ""
    return f"SELECT {columns} FROM {table}{filters} ORDER BY created_at DESC, id DESC LIMIT ${len(params)}", params


class PostgresBatches:
    """The batch methods of the PostgreSQL store."""

    async def create_file(self: _Pooled, rec: FileRecord, content: bytes | None = None) -> None:
        async with self._connection() as conn:
            await conn.execute(
                f"INSERT INTO llmswitch_files ({_FILE_COLUMNS}, content) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                "ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes, storage = excluded.storage, "
                "content = excluded.content",
                *(getattr(rec, f) for f in FILE_FIELDS),
                content,
            )

    async def get_file(self: _Pooled, file_id: str) -> FileRecord | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(f"SELECT {_FILE_COLUMNS} FROM llmswitch_files WHERE id = $1", file_id)
        return _file(row) if row else None

    async def file_content(self: _Pooled, file_id: str) -> bytes | None:
        async with self._connection() as conn:
            value = await conn.fetchval("SELECT content FROM llmswitch_files WHERE id = $1", file_id)
        return bytes(value) if value is not None else None

    async def list_files(
        self: _Pooled, *, owner: str | None, purpose: str | None = None, limit: int = 100, after: str | None = None
    ) -> list[FileRecord]:
        query, params = _newest_first("llmswitch_files", _FILE_COLUMNS, owner, {"purpose": purpose}, limit, after)
        async with self._connection() as conn:
            rows = await conn.fetch(query, *params)
        return [_file(r) for r in rows]

    async def delete_file(self: _Pooled, file_id: str) -> bool:
        async with self._connection() as conn:
            status = await conn.execute("DELETE FROM llmswitch_files WHERE id = $1", file_id)
        return bool(status != "DELETE 0")

    async def create_batch(self: _Pooled, rec: BatchRecord, lines: Sequence[tuple[str, str]]) -> None:
        values = [encode_json(getattr(rec, f)) if f in BATCH_JSON_FIELDS else getattr(rec, f) for f in BATCH_FIELDS]
        marks = ", ".join(f"${i}" for i in range(1, len(BATCH_FIELDS) + 1))
        async with self._connection() as conn, conn.transaction():
            await conn.execute(f"INSERT INTO llmswitch_batches ({_BATCH_COLUMNS}) VALUES ({marks})", *values)
            await conn.execute(
                "INSERT INTO llmswitch_batch_lines (batch_id, line_no, custom_id, body) "
                "SELECT $1, n, c, b FROM unnest($2::bigint[], $3::text[], $4::text[]) AS v(n, c, b)",
                rec.id,
                list(range(1, len(lines) + 1)),
                [c for c, _ in lines],
                [b for _, b in lines],
            )

    async def get_batch(self: _Pooled, batch_id: str) -> BatchRecord | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(f"SELECT {_BATCH_COLUMNS} FROM llmswitch_batches WHERE id = $1", batch_id)
        return _batch(row) if row else None

    async def list_batches(
        self: _Pooled, *, owner: str | None, api: str | None = None, limit: int = 20, after: str | None = None
    ) -> list[BatchRecord]:
        query, params = _newest_first("llmswitch_batches", _BATCH_COLUMNS, owner, {"api": api}, limit, after)
        async with self._connection() as conn:
            rows = await conn.fetch(query, *params)
        return [_batch(r) for r in rows]

    async def update_batch(
        self: _Pooled, batch_id: str, /, *, when: Collection[str] | None = None, **fields: Any
    ) -> BatchRecord | None:
        bad = set(fields) - BATCH_MUTABLE
        if bad:
            raise TypeError(f"cannot update batch fields {sorted(bad)}")
        params: list[Any] = [batch_id]
        sets = []
        for f, v in fields.items():
            params.append(encode_json(v) if f in BATCH_JSON_FIELDS else v)
            sets.append(f"{f} = ${len(params)}")
        async with self._connection() as conn:
            if not sets:
                row = await conn.fetchrow(f"SELECT {_BATCH_COLUMNS} FROM llmswitch_batches WHERE id = $1", batch_id)
            else:
                sql = f"UPDATE llmswitch_batches SET {', '.join(sets)} WHERE id = $1"
                if when is not None:
                    params.append(list(when))
                    sql += f" AND status = ANY(${len(params)}::text[])"
                row = await conn.fetchrow(sql + f" RETURNING {_BATCH_COLUMNS}", *params)
        return _batch(row) if row else None

    async def active_batches(self: _Pooled) -> list[BatchRecord]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {_BATCH_COLUMNS} FROM llmswitch_batches WHERE status = ANY($1::text[]) ORDER BY created_at",
                _ACTIVE,
            )
        return [_batch(r) for r in rows]

    async def lease_batch(self: _Pooled, batch_id: str, worker: str, lease_s: float) -> bool:
        async with self._connection() as conn:
            status = await conn.execute(
                f"UPDATE llmswitch_batches SET lease_owner = $2, lease_until = {_NOW} + $3 WHERE id = $1 "
                f"AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < {_NOW})",
                batch_id,
                worker,
                lease_s,
            )
        return bool(status != "UPDATE 0")

    async def claim_batch_lines(
        self: _Pooled, batch_id: str, worker: str, lease_s: float, limit: int
    ) -> list[ClaimedLine]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "UPDATE llmswitch_batch_lines AS l SET state = 'leased', lease_owner = $2, "
                f"lease_until = {_NOW} + $3, attempts = l.attempts + 1 "
                "FROM (SELECT line_no FROM llmswitch_batch_lines WHERE batch_id = $1 AND (state = 'pending' "
                f"OR (state = 'leased' AND lease_until < {_NOW})) ORDER BY line_no LIMIT $4 "
                "FOR UPDATE SKIP LOCKED) AS c WHERE l.batch_id = $1 AND l.line_no = c.line_no "
                "RETURNING l.batch_id, l.line_no, l.custom_id, l.body, l.attempts",
                batch_id,
                worker,
                lease_s,
                limit,
            )
        return sorted((ClaimedLine(r[0], r[1], r[2], r[3], r[4]) for r in rows), key=lambda c: c.line_no)

    async def renew_batch_leases(self: _Pooled, worker: str, lease_s: float) -> int:
        async with self._connection() as conn:
            status = await conn.execute(
                f"UPDATE llmswitch_batch_lines SET lease_until = {_NOW} + $2 WHERE lease_owner = $1 AND state = 'leased'",
                worker,
                lease_s,
            )
        return int(status.rsplit(" ", 1)[1])

    async def release_batch_lines(self: _Pooled, batch_id: str, worker: str, line_nos: Sequence[int]) -> None:
        if not line_nos:
            return
        async with self._connection() as conn:
            await conn.execute(
                "UPDATE llmswitch_batch_lines SET state = 'pending', lease_owner = NULL, lease_until = NULL "
                "WHERE batch_id = $1 AND lease_owner = $2 AND state = 'leased' AND line_no = ANY($3::bigint[])",
                batch_id,
                worker,
                list(line_nos),
            )

    async def finish_batch_lines(self: _Pooled, batch_id: str, outcomes: Sequence[LineOutcome]) -> int:
        if not outcomes:
            return 0
        async with self._connection() as conn, conn.transaction():
            rows = await conn.fetch(
                "UPDATE llmswitch_batch_lines AS l SET state = 'done', status_code = v.s, response = v.r, "
                "failed = v.f, lease_owner = NULL, lease_until = NULL "
                "FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::bigint[]) AS v(n, s, r, f) "
                "WHERE l.batch_id = $1 AND l.line_no = v.n AND l.state <> 'done' RETURNING l.failed",
                batch_id,
                [o.line_no for o in outcomes],
                [o.status_code for o in outcomes],
                [o.response for o in outcomes],
                [int(o.failed) for o in outcomes],
            )
            failed = sum(1 for r in rows if r[0])
            if rows:
                await conn.execute(
                    "UPDATE llmswitch_batches SET completed = completed + $2, failed = failed + $3 WHERE id = $1",
                    batch_id,
                    len(rows) - failed,
                    failed,
                )
        return len(rows)

    async def batch_line_states(self: _Pooled, batch_id: str) -> dict[str, int]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT CASE WHEN state = 'leased' AND lease_until < {_NOW} THEN 'pending' ELSE state END AS s, "
                "count(*) AS n FROM llmswitch_batch_lines WHERE batch_id = $1 GROUP BY 1",
                batch_id,
            )
        return {r["s"]: int(r["n"]) for r in rows}

    async def batch_lines(self: _Pooled, batch_id: str, after_line: int, limit: int) -> list[DoneLine]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT line_no, custom_id, state, status_code, response, failed FROM llmswitch_batch_lines "
                "WHERE batch_id = $1 AND line_no > $2 ORDER BY line_no LIMIT $3",
                batch_id,
                after_line,
                limit,
            )
        return [DoneLine(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else bool(r[5])) for r in rows]
