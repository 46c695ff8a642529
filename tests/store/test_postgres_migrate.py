"""PostgreSQL migrations run apart from the pool's timeouts, one instance at a time, indexes concurrently.

Slow migrations are made with ``pg_sleep`` in a migration appended to the list for the test (as a large
table's index build would be slow), on the real server.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from llmswitch.store import StoreMigrationError, open_store
from llmswitch.store import postgres as backend
from llmswitch.store.migrations import POSTGRES_MIGRATIONS, Migration
from llmswitch.store.postgres_migrate import index_only, lock_id

LATEST = POSTGRES_MIGRATIONS[-1].version
POSTGRES_URL = os.environ.get("LLMSWITCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg_execute(query: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(query)
    finally:
        await conn.close()


def _slow(seconds: float) -> Migration:
    return Migration(LATEST + 1, "slow", (f"SELECT pg_sleep({seconds})",))


async def _fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    dsn, _, schema = url.partition("?schema=")
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema} if schema else None)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def test_index_statements_are_recognised() -> None:
    assert index_only(POSTGRES_MIGRATIONS[3])  # the leaner spend indexes: drops and creates only
    assert not index_only(POSTGRES_MIGRATIONS[1])  # creates the spend table too


# "&pgbouncer=true": as through PgBouncer's transaction mode, where migrations run in one transaction
PROXIES = ("", "&pgbouncer=true")


@pytest.mark.parametrize("proxy", PROXIES)
def test_a_migration_outlasting_the_pool_command_timeout_completes(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:
    monkeypatch.setattr(backend, "POSTGRES_MIGRATIONS", (*POSTGRES_MIGRATIONS, _slow(1.5)))

    async def main() -> list[int]:
        store = open_store(postgres_url + proxy, command_timeout=0.5)
        await store.open()
        try:
            return await store.migrate()
        finally:
            await store.close()

    assert asyncio.run(main()) == [*range(1, LATEST + 1), LATEST + 1]


@pytest.fixture
def slow_role(postgres_server: list[str]) -> Iterator[str]:
    """A role whose every statement is cancelled after 300 ms (``ALTER ROLE ... SET statement_timeout``)."""
    role = f"llmswitch_test_role_{uuid.uuid4().hex[:10]}"
    database = urlsplit(POSTGRES_URL).path.lstrip("/")
    asyncio.run(_pg_execute(f"CREATE ROLE {role} LOGIN"))
    asyncio.run(_pg_execute(f'GRANT CREATE ON DATABASE "{database}" TO {role}'))
    asyncio.run(_pg_execute(f"ALTER ROLE {role} SET statement_timeout = '300ms'"))
    yield role
    asyncio.run(_pg_execute(f"DROP OWNED BY {role} CASCADE"))
    asyncio.run(_pg_execute(f"DROP ROLE {role}"))


def test_a_statement_timeout_set_on_the_role_does_not_cancel_migrations(
    slow_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = urlsplit(POSTGRES_URL)
    netloc = f"{slow_role}@{parts.hostname}:{parts.port or 5432}"
    url = urlunsplit(parts._replace(netloc=netloc)) + f"?schema={slow_role}"
    monkeypatch.setattr(backend, "POSTGRES_MIGRATIONS", (*POSTGRES_MIGRATIONS, _slow(1.0)))

    async def main() -> tuple[list[int], str]:
        store = open_store(url)
        await store.open()
        try:
            applied = await store.migrate()
        finally:
            await store.close()
        rows = await _fetch(url, "SHOW statement_timeout")  # the role's setting is really there
        return applied, rows[0][0]

    applied, timeout = asyncio.run(main())
    assert applied == [*range(1, LATEST + 1), LATEST + 1]
    assert timeout == "300ms"


@pytest.mark.parametrize("proxy", PROXIES)
def test_a_second_migrator_waits_for_the_first_then_finds_nothing_to_do(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:
    monkeypatch.setattr(backend, "POSTGRES_MIGRATIONS", (*POSTGRES_MIGRATIONS, _slow(2.0)))

    async def migrate(delay: float) -> tuple[list[int], float]:
        await asyncio.sleep(delay)
        store = open_store(postgres_url + proxy, migration_lock_timeout=60)
        await store.open()
        started = time.monotonic()
        try:
            applied = await store.migrate()
        finally:
            await store.close()
        return applied, time.monotonic() - started

    async def main() -> list[tuple[list[int], float]]:
        return await asyncio.gather(migrate(0.0), migrate(0.5))

    (first, _), (second, second_took) = asyncio.run(main())
    assert first == [*range(1, LATEST + 1), LATEST + 1]
    assert second == []
    # it waited out most of the first's 2 s migration rather than failing or migrating alongside
    assert second_took >= 1.0, second_took


@pytest.mark.parametrize("proxy", PROXIES)
def test_a_lock_held_past_the_lock_timeout_says_another_instance_is_migrating(postgres_url: str, proxy: str) -> None:
    schema = postgres_url.rsplit("schema=", 1)[1]

    async def main() -> None:
        holder = await asyncpg.connect(POSTGRES_URL)
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", lock_id(schema))
            store = open_store(postgres_url + proxy, migration_lock_timeout=1.0)
            await store.open()
            started = time.monotonic()
            try:
                with pytest.raises(
                    StoreMigrationError, match=r"another instance is migrating the database.*waited 1 s"
                ):
                    await store.migrate()
                assert time.monotonic() - started < 10
            finally:
                await store.close()
        finally:
            await holder.close()

    asyncio.run(main())


def test_an_index_migration_interrupted_midway_is_resumed(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    leaner = POSTGRES_MIGRATIONS[3]

    async def main() -> list[int]:
        store = open_store(postgres_url)
        await store.open()
        try:
            monkeypatch.setattr(backend, "POSTGRES_MIGRATIONS", POSTGRES_MIGRATIONS[:3])
            assert await store.migrate() == [1, 2, 3]
            monkeypatch.undo()
            # as a process killed after the first three statements of migration 4 left it
            for statement in leaner.statements[:3]:
                await _fetch(postgres_url, statement)
            return await store.migrate()
        finally:
            await store.close()

    assert asyncio.run(main()) == list(range(4, LATEST + 1))
    rows = asyncio.run(
        _fetch(
            postgres_url,
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'llmswitch_spend_logs'",
        )
    )
    indexes = dict(rows)  # type: ignore[arg-type]
    assert "llmswitch_spend_logs_model_group" not in indexes
    assert "user_id IS NOT NULL" in indexes["llmswitch_spend_logs_user_id"]
    assert "team_id IS NOT NULL" in indexes["llmswitch_spend_logs_team_id"]


def test_an_invalid_index_left_by_a_failed_concurrent_build_is_rebuilt(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = Migration(
        LATEST + 1, "deployment_index", ("CREATE INDEX llmswitch_spend_logs_x ON llmswitch_spend_logs (deployment_id)",)
    )

    async def main() -> list[int]:
        store = open_store(postgres_url)
        await store.open()
        try:
            assert await store.migrate() == list(range(1, LATEST + 1))
            for request_id in ("r1", "r2"):
                await _fetch(
                    postgres_url,
                    "INSERT INTO llmswitch_spend_logs (request_id, time, deployment_id, status, cache_hit, stream) "
                    "VALUES ($1, now(), 'd', 200, false, false)",
                    request_id,
                )
            # a concurrent build that failed (here: duplicates under UNIQUE) leaves an INVALID index by that name
            with pytest.raises(asyncpg.UniqueViolationError):
                await _fetch(
                    postgres_url,
                    "CREATE UNIQUE INDEX CONCURRENTLY llmswitch_spend_logs_x ON llmswitch_spend_logs (deployment_id)",
                )
            monkeypatch.setattr(backend, "POSTGRES_MIGRATIONS", (*POSTGRES_MIGRATIONS, extra))
            return await store.migrate()
        finally:
            await store.close()

    assert asyncio.run(main()) == [LATEST + 1]
    rows = asyncio.run(
        _fetch(
            postgres_url,
            "SELECT i.indisvalid, i.indisunique FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = 'llmswitch_spend_logs_x' AND n.nspname = current_schema()",
        )
    )
    assert [tuple(r) for r in rows] == [(True, False)]


def test_spend_logs_stay_writable_while_an_index_migration_waits(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn, _, schema = postgres_url.partition("?schema=")
    insert = "INSERT INTO llmswitch_spend_logs (request_id, time, status, cache_hit, stream) VALUES ($1, now(), 200, false, false)"

    async def main() -> list[int]:
        store = open_store(postgres_url)
        await store.open()
        holder = writer = None
        try:
            monkeypatch.setattr(backend, "POSTGRES_MIGRATIONS", POSTGRES_MIGRATIONS[:3])
            assert await store.migrate() == [1, 2, 3]
            monkeypatch.undo()
            settings = {"search_path": schema}
            holder = await asyncpg.connect(dsn, server_settings=settings)
            writer = await asyncpg.connect(dsn, server_settings={**settings, "lock_timeout": "3s"})
            # a spend batch in flight: migration 4's index statements must wait for it to commit
            held = holder.transaction()
            await held.start()
            await holder.execute(insert, "r0")
            migrating = asyncio.create_task(store.migrate())
            for _ in range(200):
                waiting = await writer.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%llmswitch_spend_logs_model_group%'"
                )
                if waiting:
                    break
                await asyncio.sleep(0.05)
            assert not migrating.done()
            # meanwhile other writers go on: a plain DROP INDEX would queue them behind its exclusive lock
            await writer.execute(insert, "r1")
            await held.commit()
            return await asyncio.wait_for(migrating, 60)
        finally:
            for conn in (holder, writer):
                if conn is not None:
                    await conn.close()
            await store.close()

    assert asyncio.run(main()) == list(range(4, LATEST + 1))
    assert len(asyncio.run(_fetch(postgres_url, "SELECT request_id FROM llmswitch_spend_logs"))) == 2


@pytest.mark.parametrize("proxy", PROXIES)
def test_a_failing_migration_is_named_and_leaves_its_version_unapplied(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:
    broken = Migration(LATEST + 1, "broken", ("ALTER TABLE llmswitch_no_such_table ADD COLUMN x TEXT",))
    monkeypatch.setattr(backend, "POSTGRES_MIGRATIONS", (*POSTGRES_MIGRATIONS, broken))

    async def main() -> int:
        store = open_store(postgres_url + proxy)
        await store.open()
        try:
            with pytest.raises(
                StoreMigrationError, match=rf"migration {LATEST + 1} \(broken\) failed at .*no_such_table"
            ):
                await store.migrate()
            monkeypatch.undo()
            return await store.schema_version()
        finally:
            await store.close()

    # in one transaction through a pooling proxy, the versions before it are rolled back with it
    assert asyncio.run(main()) == (LATEST if not proxy else 0)
