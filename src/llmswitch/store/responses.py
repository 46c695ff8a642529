"""The Responses API's stored responses, in the store every worker and instance shares.

A row is one response the gateway answered with ``store`` on: its id, the key that made it (``owner``:
another key's request gets a 404, as for an id that does not exist), the input items it answered (a
continuation puts them before its own), the response object as sent, and when it expires. Rows past
their expiry are never returned and are deleted now and then as new ones are written.

    await store.put_response(StoredResponse(response_id="resp_…", owner=h, input=b"[…]", response=b"{…}",
                                            created_at=now, expires_at=now + ttl))
    row = await store.get_response("resp_…")   # None when absent or expired
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import msgspec

from llmswitch.store.records import utcnow
from llmswitch.store.sqlite_common import iso, transaction

P = ParamSpec("P")
T = TypeVar("T")

_COLUMNS = "response_id, owner, input, response, created_at, expires_at"
# expired rows are deleted on one write in this many (a few per second at most on a busy gateway)
_PURGE_EVERY = 200


class StoredResponse(msgspec.Struct, kw_only=True, frozen=True):
    """One stored response: ``input`` and ``response`` are the JSON the gateway read and sent."""

    response_id: str
    owner: str
    input: bytes
    response: bytes
    created_at: datetime
    expires_at: datetime


# -- PostgreSQL -----------------------------------------------------------------------------------


class _Pooled(Protocol):
    _responses_written: int

    def _connection(self) -> AbstractAsyncContextManager[Any]: ...


class PostgresResponses:
    """The stored-response methods of the PostgreSQL store."""

    _responses_written = 0

    async def put_response(self: _Pooled, row: StoredResponse) -> None:
        self._responses_written += 1
        purge = self._responses_written % _PURGE_EVERY == 1
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO llmswitch_responses ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) "
                "ON CONFLICT (response_id) DO NOTHING",
                row.response_id,
                row.owner,
                row.input.decode(),
                row.response.decode(),
                row.created_at,
                row.expires_at,
            )
            if purge:
                await conn.execute("DELETE FROM llmswitch_responses WHERE expires_at < now()")

    async def get_response(self: _Pooled, response_id: str) -> StoredResponse | None:
        async with self._connection() as conn:
            found = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM llmswitch_responses WHERE response_id = $1 AND expires_at > now()",
                response_id,
            )
        if found is None:
            return None
        return StoredResponse(
            response_id=found["response_id"],
            owner=found["owner"],
            input=found["input"].encode(),
            response=found["response"].encode(),
            created_at=found["created_at"],
            expires_at=found["expires_at"],
        )

    async def delete_response(self: _Pooled, response_id: str) -> bool:
        async with self._connection() as conn:
            status = await conn.execute("DELETE FROM llmswitch_responses WHERE response_id = $1", response_id)
        return bool(str(status).endswith(" 1"))


# -- SQLite ---------------------------------------------------------------------------------------


class _Caller(Protocol):
    _responses_written: int

    def _call(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


class SQLiteResponses:
    """The stored-response methods of the SQLite store."""

    _responses_written = 0

    async def put_response(self: _Caller, row: StoredResponse) -> None:
        self._responses_written += 1
        await self._call(_put, row, self._responses_written % _PURGE_EVERY == 1)

    async def get_response(self: _Caller, response_id: str) -> StoredResponse | None:
        return await self._call(_get, response_id)

    async def delete_response(self: _Caller, response_id: str) -> bool:
        return await self._call(_delete, response_id)


def _put(conn: sqlite3.Connection, row: StoredResponse, purge: bool) -> None:
    with transaction(conn):
        conn.execute(
            f"INSERT INTO llmswitch_responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (response_id) DO NOTHING",
            (
                row.response_id,
                row.owner,
                row.input.decode(),
                row.response.decode(),
                iso(row.created_at),
                iso(row.expires_at),
            ),
        )
        if purge:
            conn.execute("DELETE FROM llmswitch_responses WHERE expires_at < ?", (iso(utcnow()),))


def _get(conn: sqlite3.Connection, response_id: str) -> StoredResponse | None:
    found = conn.execute(
        f"SELECT {_COLUMNS} FROM llmswitch_responses WHERE response_id = ? AND expires_at > ?",
        (response_id, iso(utcnow())),
    ).fetchone()
    if found is None:
        return None
    return StoredResponse(
        response_id=found[0],
        owner=found[1],
        input=found[2].encode(),
        response=found[3].encode(),
        created_at=datetime.fromisoformat(found[4]),
        expires_at=datetime.fromisoformat(found[5]),
    )


def _delete(conn: sqlite3.Connection, response_id: str) -> bool:
    with transaction(conn):
        return conn.execute("DELETE FROM llmswitch_responses WHERE response_id = ?", (response_id,)).rowcount > 0
