"""The embedded store: one SQLite file, the default when no ``database_url`` is set.

SQLite calls block, so every call runs on one dedicated thread that owns the connection: the event
loop never waits on disk, and because that thread runs one call at a time, each call (a whole
transaction) is atomic with respect to the others in this process. Other processes on the same file
are kept in step by SQLite's own locking: WAL mode lets readers run beside the writer, writers take
the write lock up front (``BEGIN IMMEDIATE``) and wait up to ``busy_timeout`` for it.

    >>> store = SQLiteStore("sqlite:///llmswitch.db")
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from llmswitch.store.base import DailySpend, KeyChanges, Store, check_page
from llmswitch.store.errors import KeyExistsError, StoreConnectionError, StoreError, StoreMigrationError
from llmswitch.store.instances import SQLiteInstances
from llmswitch.store.migrations import SQLITE_MIGRATIONS, SQLITE_VERSION_TABLE_DDL, VERSION_TABLE, pending
from llmswitch.store.records import (
    KEY_FIELDS,
    KeyRecord,
    SpendGroup,
    SpendRecord,
    spend_group_column,
    utcnow,
    validate_key,
    validate_key_update,
    validate_spend_amount,
    validate_spend_records,
)
from llmswitch.store.responses import SQLiteResponses
from llmswitch.store.sqlite_batches import SQLiteBatches
from llmswitch.store.sqlite_budgets import SQLiteBudgets
from llmswitch.store.sqlite_common import (
    CHUNK,
    CURRENT_KEY_SEQ,
    decode_fields,
    encode_value,
    next_key_seq,
    register_money,
)
from llmswitch.store.sqlite_common import iso as _iso
from llmswitch.store.sqlite_common import transaction as _transaction
from llmswitch.store.sqlite_spend import _daily_spend, _insert_spend_logs, _list_spend_logs, _spend_filters, _sum_spend
from llmswitch.store.sqlite_subjects import SQLiteSubjects
from llmswitch.store.urls import MEMORY, mask_url, sqlite_path

P = ParamSpec("P")
T = TypeVar("T")

_COLUMNS = ", ".join(KEY_FIELDS)
_SELECT_KEYS = f"SELECT {_COLUMNS} FROM llmswitch_keys"
_INSERT_KEY = f"INSERT INTO llmswitch_keys ({_COLUMNS}, change_seq) VALUES ({', '.join('?' * (len(KEY_FIELDS) + 1))})"


class SQLiteStore(SQLiteBatches, SQLiteInstances, SQLiteResponses, SQLiteSubjects, SQLiteBudgets, Store):
    """Keys, users and teams in one SQLite file (or in memory, for tests), reached through a dedicated thread."""

    def __init__(self, url: str, *, busy_timeout: float = 5.0) -> None:
        self.url = mask_url(url)
        self.path = sqlite_path(url)
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._conn is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmswitch-sqlite")
        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(executor, self._connect)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise StoreConnectionError(f"cannot open the SQLite store {self.path!r}: {exc}", url=self.url) from exc
        self._executor = executor

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        # switching a new file to WAL needs a moment alone with it, and SQLite answers "database is
        # locked" at once (no busy wait) while another process (a second worker starting) does the
        # same: retry within busy_timeout. This runs on the store's own thread, never the loop.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly one call
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        try:
            if self.path != MEMORY:
                self._enable_wal(conn)
            # an answered admin call must survive a power cut, not only a crash; writes are rare
            conn.execute("PRAGMA synchronous=FULL")
            register_money(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        conn, executor = self._conn, self._executor
        self._conn = self._executor = None
        if conn is None or executor is None:
            return
        try:
            # queued behind any call still running, so those finish first
            await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        finally:
            executor.shutdown(wait=False)

    async def _call(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        conn, executor = self._conn, self._executor
        if conn is None or executor is None:
            raise StoreError(f"the store {self.url} is not open; call open() first")
        job = functools.partial(fn, conn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, job)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise StoreMigrationError(f"the store {self.url} has no schema yet; call migrate() first") from exc
            raise

    # -- migrations ------------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        return await self._call(_migrate)

    async def schema_version(self) -> int:
        return await self._call(_schema_version)

    # -- keys ------------------------------------------------------------------------------------

    async def create_key(self, rec: KeyRecord) -> KeyRecord:
        return await self._call(_create_key, validate_key(rec))

    async def get_key(self, token_hash: str) -> KeyRecord | None:
        return await self._call(_get_key, token_hash)

    async def update_key(self, token_hash: str, /, **fields: Any) -> KeyRecord | None:
        checked = validate_key_update(fields)
        if not checked:
            return await self.get_key(token_hash)
        return await self._call(_update_key, token_hash, checked)

    async def delete_keys(self, token_hashes: Iterable[str]) -> int:
        unique = list(dict.fromkeys(token_hashes))
        return await self._call(_delete_keys, unique) if unique else 0

    async def list_keys(
        self, *, user_id: str | None = None, team_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[KeyRecord]:
        check_page(limit, offset)
        return await self._call(_list_keys, user_id, team_id, limit, offset)

    async def count_keys(self, *, user_id: str | None = None, team_id: str | None = None) -> int:
        return await self._call(_count_keys, user_id, team_id)

    async def keys_changed_since(self, cursor: int) -> KeyChanges:
        return await self._call(_keys_changed_since, cursor)

    async def add_key_spend(self, token_hash: str, amount: float) -> float | None:
        return await self._call(_add_key_spend, token_hash, validate_spend_amount(amount))

    # -- spend logs ------------------------------------------------------------------------------

    async def insert_spend_logs(self, records: Sequence[SpendRecord]) -> int:
        checked = validate_spend_records(records)
        return await self._call(_insert_spend_logs, checked) if checked else 0

    async def list_spend_logs(
        self,
        *,
        key_hash: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        request_id: str | None = None,
        model_group: str | None = None,
        status: int | None = None,
    ) -> list[SpendRecord]:
        check_page(limit, offset)
        equal: dict[str, str | int | None] = {
            "key_hash": key_hash,
            "user_id": user_id,
            "team_id": team_id,
            "request_id": request_id,
            "model_group": model_group,
            "status": status,
        }
        where, params = _spend_filters(equal, start, end)
        return await self._call(_list_spend_logs, where, params, limit, offset)

    async def spend_since(self, column: str, value: str, start: datetime, *, model_group: str | None = None) -> float:
        if column not in ("key_hash", "user_id", "team_id"):
            raise ValueError(f"cannot sum spend by {column!r}")
        equal: dict[str, str | None] = {column: value, "model_group": model_group}
        where, params = _spend_filters(equal, start, None)
        return await self._call(_sum_spend, where, params)

    async def daily_spend(
        self,
        group_by: SpendGroup,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        team_id: str | None = None,
    ) -> list[DailySpend]:
        column = spend_group_column(group_by)
        where, params = _spend_filters({"team_id": team_id}, start, end)
        return await self._call(_daily_spend, column, where, params)


# Everything below runs on the store's thread, one call at a time.


def _migrate(conn: sqlite3.Connection) -> list[int]:
    with _transaction(conn):
        conn.execute(SQLITE_VERSION_TABLE_DDL)
        applied = conn.execute(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}").fetchone()[0]
        todo = pending(SQLITE_MIGRATIONS, applied)
        for migration in todo:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {VERSION_TABLE} (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, _iso(utcnow())),
            )
    return [m.version for m in todo]


def _schema_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)).fetchone()
    if exists is None:
        return 0
    return int(conn.execute(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}").fetchone()[0])


def _create_key(conn: sqlite3.Connection, rec: KeyRecord) -> KeyRecord:
    with _transaction(conn):
        seq = next_key_seq(conn)
        try:
            conn.execute(_INSERT_KEY, (*_encode(rec), seq))
        except sqlite3.IntegrityError as exc:
            raise KeyExistsError("a key with this token hash already exists", token_hash=rec.token_hash) from exc
        # a key deleted and created again is live: its old tombstone must not delete it on refresh
        conn.execute("DELETE FROM llmswitch_key_tombstones WHERE token_hash = ?", (rec.token_hash,))
    return rec


def _get_key(conn: sqlite3.Connection, token_hash: str) -> KeyRecord | None:
    row = conn.execute(f"{_SELECT_KEYS} WHERE token_hash = ?", (token_hash,)).fetchone()
    return None if row is None else _decode(row)


def _update_key(conn: sqlite3.Connection, token_hash: str, fields: dict[str, Any]) -> KeyRecord | None:
    # field names come from validate_key_update's allow-list, never from the caller unchecked
    assignments = ", ".join(f"{name} = ?" for name in fields)
    values = [encode_value(name, value) for name, value in fields.items()]
    with _transaction(conn):
        seq = next_key_seq(conn)
        cursor = conn.execute(
            f"UPDATE llmswitch_keys SET {assignments}, updated_at = ?, change_seq = ? WHERE token_hash = ?",
            (*values, _iso(utcnow()), seq, token_hash),
        )
        if cursor.rowcount == 0:
            return None
        row = conn.execute(f"{_SELECT_KEYS} WHERE token_hash = ?", (token_hash,)).fetchone()
    return _decode(row)


def _delete_keys(conn: sqlite3.Connection, token_hashes: list[str]) -> int:
    deleted_at = _iso(utcnow())
    count = 0
    with _transaction(conn):
        seq = next_key_seq(conn)
        for start in range(0, len(token_hashes), CHUNK):
            chunk = token_hashes[start : start + CHUNK]
            marks = ", ".join("?" * len(chunk))
            found = [
                r[0]
                for r in conn.execute(f"SELECT token_hash FROM llmswitch_keys WHERE token_hash IN ({marks})", chunk)
            ]
            if not found:
                continue
            conn.execute(f"DELETE FROM llmswitch_keys WHERE token_hash IN ({', '.join('?' * len(found))})", found)
            conn.executemany(
                "INSERT OR REPLACE INTO llmswitch_key_tombstones (token_hash, change_seq, deleted_at) VALUES (?, ?, ?)",
                [(h, seq, deleted_at) for h in found],
            )
            count += len(found)
    return count


def _list_keys(
    conn: sqlite3.Connection, user_id: str | None, team_id: str | None, limit: int, offset: int
) -> list[KeyRecord]:
    where, params = [], []
    if user_id is not None:
        where.append("user_id = ?")
        params.append(user_id)
    if team_id is not None:
        where.append("team_id = ?")
        params.append(team_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"{_SELECT_KEYS}{clause} ORDER BY created_at, token_hash LIMIT ? OFFSET ?", (*params, limit, offset)
    )
    return [_decode(row) for row in rows]


def _count_keys(conn: sqlite3.Connection, user_id: str | None, team_id: str | None) -> int:
    where, params = [], []
    for column, value in (("user_id", user_id), ("team_id", team_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return int(conn.execute(f"SELECT count(*) FROM llmswitch_keys{clause}", params).fetchone()[0])


def _keys_changed_since(conn: sqlite3.Connection, cursor: int) -> KeyChanges:
    # one read transaction, so the counter and the rows come from the same snapshot
    with _transaction(conn, "DEFERRED"):
        current = int(conn.execute(CURRENT_KEY_SEQ).fetchone()[0])
        rows = conn.execute(f"{_SELECT_KEYS} WHERE change_seq > ? ORDER BY change_seq", (cursor,)).fetchall()
        deleted: list[str] = []
        if cursor > 0:
            deleted = [
                r[0]
                for r in conn.execute(
                    "SELECT token_hash FROM llmswitch_key_tombstones WHERE change_seq > ? ORDER BY change_seq",
                    (cursor,),
                )
            ]
    return KeyChanges([_decode(row) for row in rows], deleted, current)


def _add_key_spend(conn: sqlite3.Connection, token_hash: str, amount: float) -> float | None:
    with _transaction(conn):
        seq = next_key_seq(conn)
        cursor = conn.execute(
            "UPDATE llmswitch_keys SET spend = money_add(spend, ?), change_seq = ? WHERE token_hash = ?",
            (amount, seq, token_hash),
        )
        if cursor.rowcount == 0:
            return None
        return float(conn.execute("SELECT spend FROM llmswitch_keys WHERE token_hash = ?", (token_hash,)).fetchone()[0])


def _encode(rec: KeyRecord) -> tuple[Any, ...]:
    return tuple(encode_value(name, getattr(rec, name)) for name in KEY_FIELDS)


def _decode(row: tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(**decode_fields(KEY_FIELDS, row))
