"""Running PostgreSQL migrations: on a connection of their own, without timeouts, one instance at a time.

Migrations may take as long as the data makes them: a ``CREATE INDEX`` over a large spend table takes
minutes. So they never run on the pool's connections (their 30 s command timeout would cancel the
statement and roll the migration back at every start); they get a dedicated connection with no command
timeout and ``statement_timeout = 0``, which overrides a timeout set on the role or the database.

One instance migrates at a time: the first takes a session advisory lock (per schema), the others wait
for it (polling, see ``_take_lock``) -- bounded by ``lock_timeout`` seconds, after which they fail with a message saying another
instance is migrating -- and then find nothing left to do.

A migration whose statements are all index statements (``CREATE [UNIQUE] INDEX name ON ...``,
``DROP INDEX name``) runs them one by one ``CONCURRENTLY``, outside a transaction, so the table stays
writable while they run; they are made idempotent (``IF [NOT] EXISTS``), so one interrupted midway is
resumed by the next run. A concurrent build that failed leaves an INVALID index behind, which
``IF NOT EXISTS`` would keep: it is dropped and built again. Any other migration runs in one
transaction, as written (the indexes of a table it creates are built on an empty table).

Through PgBouncer in transaction mode (``pgbouncer=true`` in the URL) a session lock cannot be relied
on: all pending migrations then run in one transaction under a transaction-scoped lock, as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from typing import Any

import asyncpg

from llmswitch.errors import ConfigError
from llmswitch.store.errors import StoreMigrationError
from llmswitch.store.migrations import POSTGRES_VERSION_TABLE_DDL, VERSION_TABLE, Migration, pending
from llmswitch.store.postgres_connect import quote_ident

DEFAULT_LOCK_TIMEOUT_S = 300.0

_CREATE_INDEX = re.compile(
    r"^\s*CREATE\s+(?P<unique>UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>\w+)\s+(?P<rest>ON\s.*)$",
    re.IGNORECASE | re.DOTALL,
)
_DROP_INDEX = re.compile(
    r"^\s*DROP\s+INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?(?P<name>\w+)\s*$", re.IGNORECASE | re.DOTALL
)


def lock_id(schema: str | None) -> int:
    """The advisory lock of one schema's migrations."""
    # per schema, so test sessions and tenants in other schemas of one database do not wait on each other
    digest = hashlib.sha256(f"llmswitch.store.migrate:{schema or ''}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def index_only(migration: Migration) -> bool:
    """Whether every statement of ``migration`` creates or drops an index (so it can run concurrently)."""
    return all(_CREATE_INDEX.match(s) or _DROP_INDEX.match(s) for s in migration.statements)


def lock_timeout_from_env() -> float:
    """How long to wait for another instance's migrations: ``LLMSWITCH_MIGRATION_LOCK_TIMEOUT`` seconds."""
    raw = os.environ.get("LLMSWITCH_MIGRATION_LOCK_TIMEOUT")
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"LLMSWITCH_MIGRATION_LOCK_TIMEOUT={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ConfigError(f"LLMSWITCH_MIGRATION_LOCK_TIMEOUT must be positive, got {raw!r}")
    return value


async def run_migrations(
    conn: asyncpg.Connection[Any],
    migrations: tuple[Migration, ...],
    *,
    schema: str | None,
    url: str,
    lock_timeout: float,
    pooled: bool = False,
) -> list[int]:
    """Apply the pending ``migrations`` on ``conn`` (dedicated: no command or statement timeout), under the
    schema's lock; the versions applied, ``[]`` when another instance applied them first.

    ``pooled``: ``conn`` goes through a transaction-pooling proxy (PgBouncer), where a session lock would
    stay with whichever server connection took it: everything then runs in one transaction under a
    transaction lock, as written (no concurrent index builds, which cannot run in one).
    """
    if pooled:
        async with conn.transaction():
            # session settings do not survive such a proxy: set for this transaction
            await conn.execute("SET LOCAL statement_timeout = 0")
            await _wait_for_lock(conn, "SELECT pg_advisory_xact_lock($1)", lock_id(schema), url, lock_timeout)
            return await _apply(conn, migrations, schema, url, in_transaction=True)
    # the lock is the session's: it goes with the connection, which the caller closes
    await _take_lock(conn, lock_id(schema), url, lock_timeout)
    return await _apply(conn, migrations, schema, url, in_transaction=False)


async def _apply(
    conn: asyncpg.Connection[Any],
    migrations: tuple[Migration, ...],
    schema: str | None,
    url: str,
    *,
    in_transaction: bool,
) -> list[int]:
    if schema and not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
        await conn.execute(f"CREATE SCHEMA {quote_ident(schema)}")
    if schema and await conn.fetchval("SELECT current_schema()") != schema:
        # else the tables would silently land in the next schema on the search path
        raise StoreMigrationError(f"schema {schema!r} is not first on the search path of {url}")
    await conn.execute(POSTGRES_VERSION_TABLE_DDL)
    applied = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}")
    todo = pending(migrations, applied)
    for migration in todo:
        try:
            await _apply_one(conn, migration, in_transaction=in_transaction)
        except (asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError):
            raise  # the server went away: the caller says so
        except asyncpg.PostgresError as exc:
            raise StoreMigrationError(
                f"migration {migration.version} ({migration.name}) failed at {url}: {type(exc).__name__}: {exc}"
            ) from exc
    return [m.version for m in todo]


async def _apply_one(conn: asyncpg.Connection[Any], migration: Migration, *, in_transaction: bool) -> None:
    if in_transaction:
        for statement in migration.statements:
            await conn.execute(statement)
        await _record(conn, migration)
    elif index_only(migration):
        for statement in migration.statements:
            await _run_concurrently(conn, statement)
        await _record(conn, migration)
    else:
        async with conn.transaction():
            for statement in migration.statements:
                await conn.execute(statement)
            await _record(conn, migration)


async def _wait_for_lock(conn: asyncpg.Connection[Any], query: str, lock: int, url: str, timeout: float) -> None:
    # in a transaction (pooled): waited for in one statement, bounded by lock_timeout; nothing in this mode
    # builds an index concurrently, so the wait cannot deadlock with one
    started = time.monotonic()
    await conn.execute(f"SET LOCAL lock_timeout = {max(1, int(timeout * 1000))}")
    try:
        await conn.execute(query, lock)
    except asyncpg.LockNotAvailableError as exc:
        raise StoreMigrationError(_busy(url, time.monotonic() - started)) from exc
    await conn.execute("SET LOCAL lock_timeout = 0")


def _busy(url: str, waited: float) -> str:
    return (
        f"another instance is migrating the database at {url}; waited {waited:.0f} s for it to finish "
        "(LLMSWITCH_MIGRATION_LOCK_TIMEOUT sets how long): start again once it has, or run "
        "`llmswitch migrate` alone"
    )


async def _take_lock(conn: asyncpg.Connection[Any], lock: int, url: str, timeout: float) -> None:
    # a session lock, not a transaction's: concurrent index builds cannot run inside a transaction. Tried
    # and retried, never waited for in one statement: CREATE INDEX CONCURRENTLY waits for every
    # transaction older than its snapshot to end, a waiter's included, while the waiter waits for it
    started = time.monotonic()
    pause = 0.05
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock):
        waited = time.monotonic() - started
        if waited >= timeout:
            raise StoreMigrationError(_busy(url, waited))
        await asyncio.sleep(min(pause, timeout - waited))
        pause = min(pause * 2, 1.0)


async def _run_concurrently(conn: asyncpg.Connection[Any], statement: str) -> None:
    created = _CREATE_INDEX.match(statement)
    if created is None:
        dropped = _DROP_INDEX.match(statement)
        if dropped is None:  # index_only() said every statement is one of the two
            raise StoreMigrationError(f"not an index statement: {statement}")
        await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {dropped['name']}")
        return
    name = created["name"]
    valid = await conn.fetchval(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = $1 AND n.nspname = current_schema()",
        name,
    )
    if valid is False:
        # an earlier concurrent build failed (or was cancelled) midway: IF NOT EXISTS would keep the husk
        await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    unique = "UNIQUE " if created["unique"] else ""
    await conn.execute(f"CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {name} {created['rest']}")


async def _record(conn: asyncpg.Connection[Any], migration: Migration) -> None:
    await conn.execute(
        f"INSERT INTO {VERSION_TABLE} (version, name) VALUES ($1, $2)", migration.version, migration.name
    )
