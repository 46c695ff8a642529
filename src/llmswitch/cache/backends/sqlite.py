"""Entries in a SQLite file (LiteLLM's ``type: disk``), read and written on a thread of its own."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from llmswitch.cache.settings import CacheSettings

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS llmswitch_cache (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL NOT NULL)"
)
_PRUNE_EVERY = 1000


class SQLiteBackend:
    name = "sqlite"
    local = False

    def __init__(self, settings: CacheSettings) -> None:
        directory = settings.disk_cache_dir or ".llmswitch_cache"
        self.path = os.path.join(directory, "cache.sqlite")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmswitch-cache")
        self._conn: sqlite3.Connection | None = None
        self._writes = 0

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # a cache: losing the last writes to a power cut is fine
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def set_nowait(self, key: str, value: bytes, ttl: float) -> None:
        raise NotImplementedError("only a local backend stores at once")

    def get_nowait(self, key: str) -> bytes | None:
        raise NotImplementedError("the disk cache is read on its own thread")

    def _get(self, key: str) -> bytes | None:
        row = (
            self._db()
            .execute("SELECT value FROM llmswitch_cache WHERE key = ? AND expires > ?", (key, time.time()))
            .fetchone()
        )
        return bytes(row[0]) if row else None

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._run(self._get, key)
        return value

    def _set(self, key: str, value: bytes, ttl: float) -> None:
        db = self._db()
        db.execute("INSERT OR REPLACE INTO llmswitch_cache VALUES (?, ?, ?)", (key, value, time.time() + ttl))
        self._writes += 1
        if self._writes % _PRUNE_EVERY == 0:
            db.execute("DELETE FROM llmswitch_cache WHERE expires <= ?", (time.time(),))

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._run(self._set, key, value, ttl)

    def _delete(self, keys: list[str]) -> int:
        db = self._db()
        return sum(db.execute("DELETE FROM llmswitch_cache WHERE key = ?", (k,)).rowcount for k in keys)

    async def delete(self, keys: list[str]) -> int:
        n: int = await self._run(self._delete, keys)
        return n

    def _flush(self) -> int:
        n: int = self._db().execute("DELETE FROM llmswitch_cache").rowcount
        return n

    async def flush(self) -> int:
        n: int = await self._run(self._flush)
        return n

    async def ping(self) -> None:
        await self._run(lambda: self._db().execute("SELECT 1").fetchone())

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def aclose(self) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=False)
