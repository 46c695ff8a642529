"""The shared store: PostgreSQL through asyncpg, for several gateway processes or machines.

    >>> store = PostgresStore("postgresql://gw:pw@db:5432/llmswitch?schema=gateway")

A small pool (``max_size`` connections, 5 by default) is plenty: the hot path reads keys from
memory, and the database sees admin calls, the refresher's polls and batched spend writes.

Besides asyncpg's own URL parameters (``sslmode``, ...), the URL may carry the ones a LiteLLM
(Prisma) ``DATABASE_URL`` uses, so one can be reused as is: ``schema`` (created on migrate; tables
live there), ``connection_limit`` (the pool's ``max_size``), ``connect_timeout`` and ``pool_timeout``
(seconds), and ``pgbouncer=true`` (no prepared-statement cache, as PgBouncer's transaction mode needs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from llmswitch.errors import ConfigError
from llmswitch.store.base import COST_PLACES, DailySpend, KeyChanges, Store, check_page
from llmswitch.store.errors import (
    DatabaseMissingError,
    KeyExistsError,
    StoreConnectionError,
    StoreError,
    StoreMigrationError,
    StoreTimeoutError,
)
from llmswitch.store.instances import PostgresInstances
from llmswitch.store.migrations import POSTGRES_MIGRATIONS, VERSION_TABLE
from llmswitch.store.postgres_batches import PostgresBatches
from llmswitch.store.postgres_budgets import PostgresBudgets
from llmswitch.store.postgres_connect import (
    init_connection,
    keep_session,
    quote_ident,
    split_url,
    url_number,
    url_password,
)
from llmswitch.store.postgres_database import create_database, database_name
from llmswitch.store.postgres_migrate import lock_timeout_from_env, run_migrations
from llmswitch.store.postgres_spend_rows import SPEND_COLUMN_TYPES, SPEND_VALUES, spend_json, spend_rows
from llmswitch.store.postgres_subjects import PostgresSubjects, add_logged_spend
from llmswitch.store.records import (
    KEY_FIELDS,
    SPEND_FIELDS,
    KeyRecord,
    SpendGroup,
    SpendRecord,
    spend_by_key,
    spend_group_column,
    utc,
    utcnow,
    validate_key,
    validate_key_update,
    validate_spend_amount,
    validate_spend_records,
)
from llmswitch.store.responses import PostgresResponses
from llmswitch.store.urls import mask_url

_log = logging.getLogger("llmswitch.store")

_COLUMNS = ", ".join(KEY_FIELDS)
_SELECT_KEYS = f"SELECT {_COLUMNS} FROM llmswitch_keys"
_INSERT_KEY = (
    f"INSERT INTO llmswitch_keys ({_COLUMNS}, change_seq) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(KEY_FIELDS) + 2))})"
)
# the row lock this takes is held to commit, so change numbers become visible in order (see base.py)
_BUMP = "UPDATE llmswitch_change_counters SET value = value + 1 WHERE name = 'keys' RETURNING value"
_CURRENT = "SELECT value FROM llmswitch_change_counters WHERE name = 'keys'"
# a batch of spend logs COPY refused (see insert_spend_logs) is one INSERT reading one JSON array, whatever
# its size; json_to_recordset, not jsonb_to_recordset: reading the text directly skips building (and
# key-sorting) a jsonb value per record, about 9% of the database's CPU per record stored
# (bench/spend_postgres.py's figures in docs/benchmarks.md)
_SPEND_COLUMNS = ", ".join(SPEND_FIELDS)
_INSERT_SPEND = (
    f"INSERT INTO llmswitch_spend_logs ({_SPEND_COLUMNS}) SELECT {SPEND_VALUES} FROM json_to_recordset($1::text::json) "
    "AS v(" + ", ".join(f"{name} {SPEND_COLUMN_TYPES[name]}" for name in SPEND_FIELDS) + ") "
    "ON CONFLICT (request_id) DO NOTHING RETURNING key_hash, cost, user_id, team_id"
)
# one statement for every key of the batch; the counter row locked by _BUMP first orders concurrent writers
_ADD_SPEND = (
    "UPDATE llmswitch_keys AS k SET spend = k.spend + v.amount, change_seq = $3 "
    "FROM unnest($1::text[], $2::numeric[]) AS v(token_hash, amount) WHERE k.token_hash = v.token_hash"
)
# failures that mean "the database is not there right now", as opposed to a wrong query
_UNREACHABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)
_TIMED_OUT = (TimeoutError, asyncpg.QueryCanceledError)


class _CopyRefused(Exception):
    """A spend batch's COPY was refused for its data: it goes again as an INSERT. Its args: the level to
    log that at, and PostgreSQL's reason."""


async def _charge(conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], stored: Sequence[Any]) -> None:
    """Add stored spend records' known cost to their keys, users and teams, given
    ``(key_hash, cost, user_id, team_id)`` per record, inside the transaction that stored them."""
    totals = spend_by_key((row[0], row[1]) for row in stored)
    if totals:
        seq = await conn.fetchval(_BUMP)
        await conn.execute(_ADD_SPEND, [h for h, _ in totals], [amount for _, amount in totals], seq)
    # after the keys' counter: every transaction taking both takes them in this order
    await add_logged_spend(conn, [(row[2], row[3], row[1]) for row in stored])


class PostgresStore(PostgresBatches, PostgresInstances, PostgresResponses, PostgresSubjects, PostgresBudgets, Store):
    """Keys, users and teams in PostgreSQL, shared by every gateway process that points at the same database."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 5,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
        migration_lock_timeout: float | None = None,
    ) -> None:
        self.url = mask_url(url)
        self._dsn, options = split_url(url, self.url)
        self._password = url_password(url)
        self.schema: str | None = options.get("schema") or None
        self._min_size = min_size
        self._max_size = url_number(options, "connection_limit", max_size, self.url, int)
        self._connect_timeout = url_number(options, "connect_timeout", connect_timeout, self.url, float)
        self._acquire_timeout = url_number(options, "pool_timeout", command_timeout, self.url, float)
        self._command_timeout = command_timeout
        # how long migrate() waits for another instance's migrations before it gives up
        self._migration_lock_timeout = (
            migration_lock_timeout if migration_lock_timeout is not None else lock_timeout_from_env()
        )
        self._statement_cache_size = 0 if options.get("pgbouncer", "").lower() == "true" else 100
        self._pool: asyncpg.Pool | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        settings = {"search_path": quote_ident(self.schema)} if self.schema else None
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=min(self._min_size, self._max_size),
                max_size=self._max_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                statement_cache_size=self._statement_cache_size,
                server_settings=settings,
                init=init_connection,
                reset=keep_session,
            )
        except ValueError as exc:
            # asyncpg's ClientConfigurationError is one, and so is a bad port number
            raise ConfigError(f"invalid PostgreSQL URL {self.url!r}: {self._scrub(exc)}") from exc
        except _TIMED_OUT as exc:
            raise StoreTimeoutError(f"PostgreSQL at {self.url} did not answer in time", url=self.url) from exc
        except asyncpg.InvalidCatalogNameError as exc:
            # its own type: the caller may create it (create_database) and open again
            raise DatabaseMissingError(
                f"cannot reach PostgreSQL at {self.url}: {self._scrub(exc)}",
                url=self.url,
                database=database_name(self._dsn) or "",
            ) from exc
        except (*_UNREACHABLE, asyncpg.PostgresError) as exc:
            # a wrong password included: the server's reason is in the message
            raise StoreConnectionError(
                f"cannot reach PostgreSQL at {self.url}: {self._scrub(exc)}", url=self.url
            ) from exc

    async def create_database(self) -> str:
        """Create the (missing) database the URL names with the URL's role, and return its name; see
        :mod:`llmswitch.store.postgres_database`."""
        return await create_database(self._dsn, masked_url=self.url, timeout=self._connect_timeout)

    def _scrub(self, exc: BaseException) -> str:
        """An error's text with the password blanked, should a driver ever quote the DSN back."""
        text = str(exc)
        return text.replace(self._password, "***") if self._password else text

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), self._command_timeout)
        except TimeoutError:
            # a connection stuck in a query must not hang shutdown
            pool.terminate()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[asyncpg.Record]]:
        pool = self._pool
        if pool is None:
            raise StoreError(f"the store {self.url} is not open; call open() first")
        try:
            async with pool.acquire(timeout=self._acquire_timeout) as conn:
                yield conn
        except asyncpg.UndefinedTableError as exc:
            raise StoreMigrationError(f"the store {self.url} has no schema yet; call migrate() first") from exc
        except _TIMED_OUT as exc:
            raise StoreTimeoutError(f"PostgreSQL at {self.url} did not answer in time", url=self.url) from exc
        except _UNREACHABLE as exc:
            raise StoreConnectionError(f"lost PostgreSQL at {self.url}: {self._scrub(exc)}", url=self.url) from exc

    # -- migrations ------------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        # a connection of its own, without the pool's command timeout nor any statement timeout set on the
        # role or database: an index over a large table takes as long as it takes (see postgres_migrate)
        settings = {"statement_timeout": "0", **({"search_path": quote_ident(self.schema)} if self.schema else {})}
        try:
            conn = await asyncpg.connect(
                self._dsn,
                timeout=self._connect_timeout,
                command_timeout=None,
                statement_cache_size=0,
                server_settings=settings,
            )
        except _TIMED_OUT as exc:
            raise StoreTimeoutError(f"PostgreSQL at {self.url} did not answer in time", url=self.url) from exc
        except (*_UNREACHABLE, asyncpg.PostgresError) as exc:
            raise StoreConnectionError(
                f"cannot reach PostgreSQL at {self.url}: {self._scrub(exc)}", url=self.url
            ) from exc
        try:
            lock_timeout, pooled = self._migration_lock_timeout, self._statement_cache_size == 0  # pgbouncer=true
            return await run_migrations(
                conn, POSTGRES_MIGRATIONS, schema=self.schema, url=self.url, lock_timeout=lock_timeout, pooled=pooled
            )
        except _UNREACHABLE as exc:
            raise StoreConnectionError(f"lost PostgreSQL at {self.url}: {self._scrub(exc)}", url=self.url) from exc
        finally:
            await conn.close()

    async def schema_version(self) -> int:
        async with self._connection() as conn:
            if await conn.fetchval("SELECT to_regclass($1)", VERSION_TABLE) is None:
                return 0
            return int(await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}"))

    # -- keys ------------------------------------------------------------------------------------

    async def create_key(self, rec: KeyRecord) -> KeyRecord:
        rec = validate_key(rec)
        async with self._connection() as conn, conn.transaction():
            seq = await conn.fetchval(_BUMP)
            try:
                await conn.execute(_INSERT_KEY, *(getattr(rec, name) for name in KEY_FIELDS), seq)
            except asyncpg.UniqueViolationError as exc:
                raise KeyExistsError("a key with this token hash already exists", token_hash=rec.token_hash) from exc
            # a key deleted and created again is live: its old tombstone must not delete it on refresh
            await conn.execute("DELETE FROM llmswitch_key_tombstones WHERE token_hash = $1", rec.token_hash)
        return rec

    async def get_key(self, token_hash: str) -> KeyRecord | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(f"{_SELECT_KEYS} WHERE token_hash = $1", token_hash)
        return None if row is None else _decode(row)

    async def update_key(self, token_hash: str, /, **fields: Any) -> KeyRecord | None:
        checked = validate_key_update(fields)
        if not checked:
            return await self.get_key(token_hash)
        # field names come from validate_key_update's allow-list, never from the caller unchecked
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(checked, start=1))
        n = len(checked)
        query = (
            f"UPDATE llmswitch_keys SET {assignments}, updated_at = ${n + 1}, change_seq = ${n + 2} "
            f"WHERE token_hash = ${n + 3} RETURNING {_COLUMNS}"
        )
        async with self._connection() as conn, conn.transaction():
            seq = await conn.fetchval(_BUMP)
            row = await conn.fetchrow(query, *checked.values(), utcnow(), seq, token_hash)
        return None if row is None else _decode(row)

    async def delete_keys(self, token_hashes: Iterable[str]) -> int:
        unique = list(dict.fromkeys(token_hashes))
        if not unique:
            return 0
        async with self._connection() as conn, conn.transaction():
            seq = await conn.fetchval(_BUMP)
            rows = await conn.fetch(
                "DELETE FROM llmswitch_keys WHERE token_hash = ANY($1::text[]) RETURNING token_hash", unique
            )
            found = [row[0] for row in rows]
            if found:
                await conn.execute(
                    "INSERT INTO llmswitch_key_tombstones (token_hash, change_seq, deleted_at) "
                    "SELECT h, $2, now() FROM unnest($1::text[]) AS h "
                    "ON CONFLICT (token_hash) DO UPDATE SET change_seq = EXCLUDED.change_seq, deleted_at = now()",
                    found,
                    seq,
                )
        return len(found)

    async def list_keys(
        self, *, user_id: str | None = None, team_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[KeyRecord]:
        check_page(limit, offset)
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("user_id", user_id), ("team_id", team_id)):
            if value is not None:
                params.append(value)
                where.append(f"{column} = ${len(params)}")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        n = len(params)
        query = f"{_SELECT_KEYS}{clause} ORDER BY created_at, token_hash LIMIT ${n + 1} OFFSET ${n + 2}"
        async with self._connection() as conn:
            rows = await conn.fetch(query, *params, limit, offset)
        return [_decode(row) for row in rows]

    async def count_keys(self, *, user_id: str | None = None, team_id: str | None = None) -> int:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("user_id", user_id), ("team_id", team_id)):
            if value is not None:
                params.append(value)
                where.append(f"{column} = ${len(params)}")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        async with self._connection() as conn:
            return int(await conn.fetchval(f"SELECT count(*) FROM llmswitch_keys{clause}", *params))

    async def keys_changed_since(self, cursor: int) -> KeyChanges:
        # one snapshot for the counter and the rows: everything numbered up to the counter is in it
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            current = await conn.fetchval(_CURRENT)
            rows = await conn.fetch(f"{_SELECT_KEYS} WHERE change_seq > $1 ORDER BY change_seq", cursor)
            deleted: list[str] = []
            if cursor > 0:
                tombstones = await conn.fetch(
                    "SELECT token_hash FROM llmswitch_key_tombstones WHERE change_seq > $1 ORDER BY change_seq", cursor
                )
                deleted = [row[0] for row in tombstones]
        return KeyChanges([_decode(row) for row in rows], deleted, int(current))

    async def add_key_spend(self, token_hash: str, amount: float) -> float | None:
        amount = validate_spend_amount(amount)
        async with self._connection() as conn, conn.transaction():
            seq = await conn.fetchval(_BUMP)
            spend = await conn.fetchval(
                "UPDATE llmswitch_keys SET spend = spend + $2, change_seq = $3 WHERE token_hash = $1 RETURNING spend",
                token_hash,
                amount,
                seq,
            )
        return None if spend is None else float(spend)

    # -- spend logs ------------------------------------------------------------------------------

    async def insert_spend_logs(self, records: Sequence[SpendRecord]) -> int:
        checked = validate_spend_records(records)
        if not checked:
            return 0
        async with self._connection() as conn:
            # first as a binary COPY: PostgreSQL then skips parsing JSON and probing the primary key before
            # each row, and writes the rows a page at a time. A request id stored before (a batch replayed
            # after a crash) or a value COPY refuses (a NUL) undoes it, and the batch goes again as an
            # INSERT that skips stored ids and scrubs NULs.
            try:
                async with conn.transaction():
                    try:
                        await conn.copy_records_to_table(
                            "llmswitch_spend_logs", records=spend_rows(checked), columns=SPEND_FIELDS
                        )
                    except asyncpg.UniqueViolationError as exc:
                        raise _CopyRefused(logging.INFO, str(exc)) from exc
                    except asyncpg.DataError as exc:
                        # a client can put a NUL in every request: no log line per batch at the default level
                        raise _CopyRefused(logging.DEBUG, str(exc)) from exc
                    await _charge(conn, [(rec.key_hash, rec.cost, rec.user_id, rec.team_id) for rec in checked])
                return len(checked)
            except _CopyRefused as refused:
                level, reason = refused.args
                _log.log(
                    level,
                    "a spend batch of %d records goes again as an INSERT: COPY refused it: %s",
                    len(checked),
                    reason,
                )
            async with conn.transaction():
                try:
                    # RETURNING lists only rows really inserted: a request id already stored adds no spend
                    inserted = await conn.fetch(_INSERT_SPEND, spend_json(checked))
                except asyncpg.DataError as exc:
                    # the same batch would fail again: say so in the type, so a caller can set it aside
                    raise ValueError(f"PostgreSQL cannot store a spend record of this batch: {exc}") from exc
                await _charge(conn, inserted)
        return len(inserted)

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
        n = len(params)
        query = (
            f"SELECT {_SPEND_COLUMNS} FROM llmswitch_spend_logs{where} "
            f"ORDER BY time DESC, request_id DESC LIMIT ${n + 1} OFFSET ${n + 2}"
        )
        async with self._connection() as conn:
            rows = await conn.fetch(query, *params, limit, offset)
        return [SpendRecord(**{name: row[name] for name in SPEND_FIELDS}) for row in rows]

    async def spend_since(self, column: str, value: str, start: datetime, *, model_group: str | None = None) -> float:
        if column not in ("key_hash", "user_id", "team_id"):
            raise ValueError(f"cannot sum spend by {column!r}")
        equal: dict[str, str | None] = {column: value, "model_group": model_group}
        where, params = _spend_filters(equal, start, None)
        async with self._connection() as conn:
            return float(
                await conn.fetchval(f"SELECT COALESCE(SUM(cost::numeric), 0) FROM llmswitch_spend_logs{where}", *params)
            )

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
        query = (
            f"SELECT (time AT TIME ZONE 'UTC')::date AS day, {column} AS grp, count(*), "
            f"sum(input_tokens)::bigint, sum(output_tokens)::bigint, coalesce(sum(round(cost::numeric, {COST_PLACES})), 0), "
            f"count(*) FILTER (WHERE cache_hit), coalesce(sum(round(cache_saved_cost::numeric, {COST_PLACES})), 0) "
            f"FROM llmswitch_spend_logs{where} GROUP BY day, grp ORDER BY day, grp NULLS LAST"
        )
        async with self._connection() as conn:
            rows = await conn.fetch(query, *params)
        return [
            DailySpend(row[0], row[1], row[2], row[3], row[4], float(row[5]), row[6], float(row[7])) for row in rows
        ]


def _spend_filters(
    equal: Mapping[str, str | int | None], start: datetime | None, end: datetime | None
) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in equal.items():
        if value is not None:
            params.append(value)
            where.append(f"{column} = ${len(params)}")
    for op, bound in ((">=", utc(start)), ("<", utc(end))):
        if bound is not None:
            params.append(bound)
            where.append(f"time {op} ${len(params)}")
    return (f" WHERE {' AND '.join(where)}" if where else ""), params


def _decode(row: asyncpg.Record) -> KeyRecord:
    return KeyRecord(**{name: row[name] for name in KEY_FIELDS})
