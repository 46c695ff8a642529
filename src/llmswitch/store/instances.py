"""The gateway instances using a store: each beats every few seconds, so any of them can tell who else is live.

An instance is one serving process (a worker of ``serve --workers N`` is one). Limits counted in each
process (no Redis) are exact only while one instance uses the store: with N, every budget and rate
limit allows N times its amount. The gateway beats off the hot path (see
:mod:`llmswitch.server.instances`) and says so, or refuses to start, when it finds others.

The methods (mixed into both stores) record a beat and return the other instances seen within
``dead_after_s`` seconds; rows older than that are deleted on the way, so the table holds the live
instances and those that just died. PostgreSQL's clock times the beats, so hosts whose clocks
disagree still agree on who is live; SQLite is one machine, its clock is this process's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import msgspec

from llmswitch.store.records import utcnow
from llmswitch.store.sqlite_common import iso, transaction

P = ParamSpec("P")
T = TypeVar("T")

_FIELDS = ("instance_id", "host", "pid", "limits", "started_at", "last_seen")
_COLUMNS = ", ".join(_FIELDS)


class InstanceRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One gateway process: ``limits`` is its limiter's name (``memory``: counted in this process alone)."""

    instance_id: str
    host: str
    pid: int
    limits: str
    started_at: datetime | None = None
    last_seen: datetime | None = None

    def describe(self) -> str:
        """``host pid N`` and since when, for a log line."""
        since = f", started {self.started_at:%Y-%m-%d %H:%M:%S} UTC" if self.started_at else ""
        return f"{self.host} pid {self.pid}{since}"


# -- PostgreSQL -----------------------------------------------------------------------------------


class _Pooled(Protocol):
    def _connection(self) -> AbstractAsyncContextManager[Any]: ...


class PostgresInstances:
    """The instance methods of the PostgreSQL store."""

    async def beat_instance(self: _Pooled, instance: InstanceRecord, *, dead_after_s: float) -> list[InstanceRecord]:
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO llmswitch_instances ({_COLUMNS}) VALUES ($1, $2, $3, $4, now(), now()) "
                "ON CONFLICT (instance_id) DO UPDATE SET last_seen = now()",
                instance.instance_id,
                instance.host,
                instance.pid,
                instance.limits,
            )
            await conn.execute(
                "DELETE FROM llmswitch_instances WHERE last_seen < now() - make_interval(secs => $1)", dead_after_s
            )
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM llmswitch_instances WHERE instance_id <> $1 ORDER BY started_at",
                instance.instance_id,
            )
        return [InstanceRecord(**dict(row)) for row in rows]

    async def remove_instance(self: _Pooled, instance_id: str) -> None:
        async with self._connection() as conn:
            await conn.execute("DELETE FROM llmswitch_instances WHERE instance_id = $1", instance_id)


# -- SQLite ---------------------------------------------------------------------------------------


class _Caller(Protocol):
    def _call(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


class SQLiteInstances:
    """The instance methods of the SQLite store."""

    async def beat_instance(self: _Caller, instance: InstanceRecord, *, dead_after_s: float) -> list[InstanceRecord]:
        return await self._call(_beat, instance, dead_after_s)

    async def remove_instance(self: _Caller, instance_id: str) -> None:
        await self._call(_remove, instance_id)


def _beat(conn: sqlite3.Connection, instance: InstanceRecord, dead_after_s: float) -> list[InstanceRecord]:
    now = utcnow()
    with transaction(conn):
        conn.execute(
            f"INSERT INTO llmswitch_instances ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (instance_id) DO UPDATE SET last_seen = excluded.last_seen",
            (instance.instance_id, instance.host, instance.pid, instance.limits, iso(now), iso(now)),
        )
        conn.execute(
            "DELETE FROM llmswitch_instances WHERE last_seen < ?", (iso(now - timedelta(seconds=dead_after_s)),)
        )
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM llmswitch_instances WHERE instance_id <> ? ORDER BY started_at",
            (instance.instance_id,),
        ).fetchall()
    return [
        InstanceRecord(
            instance_id=r[0],
            host=r[1],
            pid=r[2],
            limits=r[3],
            started_at=datetime.fromisoformat(r[4]),
            last_seen=datetime.fromisoformat(r[5]),
        )
        for r in rows
    ]


def _remove(conn: sqlite3.Connection, instance_id: str) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM llmswitch_instances WHERE instance_id = ?", (instance_id,))
