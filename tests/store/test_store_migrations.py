"""Migrations and the store's lifecycle and failure modes, on every backend."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from old_schema import write_keys_as_of_old_schema

from llmswitch.errors import ConfigError
from llmswitch.store import Store, StoreConnectionError, StoreError, StoreMigrationError, open_store
from llmswitch.store.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, pending
from llmswitch.store.records import KeyRecord, SpendRecord
from llmswitch.store.urls import sqlite_path

LATEST = SQLITE_MIGRATIONS[-1].version


def test_migration_lists_are_numbered_1_to_n_and_in_step() -> None:
    for migrations in (SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS):
        assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
        assert all(m.statements for m in migrations)
    assert [m.name for m in SQLITE_MIGRATIONS] == [m.name for m in POSTGRES_MIGRATIONS]


def test_pending_refuses_a_database_newer_than_the_code() -> None:
    assert pending(SQLITE_MIGRATIONS, 0) == list(SQLITE_MIGRATIONS)
    assert pending(SQLITE_MIGRATIONS, LATEST) == []
    with pytest.raises(StoreMigrationError, match=f"version {LATEST + 1}, newer"):
        pending(SQLITE_MIGRATIONS, LATEST + 1)


def test_migrate_is_versioned_and_idempotent(store_url: str, raw_rows: Callable[[str, str], list[Any]]) -> None:
    async def main() -> None:
        store = open_store(store_url)
        await store.open()
        try:
            assert await store.schema_version() == 0
            assert await store.migrate() == list(range(1, LATEST + 1))
            assert await store.schema_version() == LATEST
            assert await store.migrate() == []
            assert await store.migrate() == []
            assert await store.list_keys() == []
        finally:
            await store.close()

    asyncio.run(main())
    versions = raw_rows(store_url, "SELECT version, name FROM llmswitch_schema_version ORDER BY version")
    assert versions == [(m.version, m.name) for m in SQLITE_MIGRATIONS]


def test_concurrent_migrators_apply_each_version_once(
    store_url: str, raw_rows: Callable[[str, str], list[Any]]
) -> None:
    async def main() -> list[list[int]]:
        stores = [open_store(store_url) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        try:
            return await asyncio.gather(*(s.migrate() for s in stores))
        finally:
            await asyncio.gather(*(s.close() for s in stores))

    applied = asyncio.run(main())
    assert sorted(applied) == [[], [], [], list(range(1, LATEST + 1))]
    assert raw_rows(store_url, "SELECT count(*) FROM llmswitch_schema_version") == [(LATEST,)]


def test_two_gateway_processes_starting_at_once_migrate_once(
    store_url: str, raw_rows: Callable[[str, str], list[Any]]
) -> None:
    script = (
        "import asyncio, sys\n"
        "from llmswitch.store import open_store\n"
        "async def main():\n"
        "    store = open_store(sys.argv[1])\n"
        "    await store.open()\n"
        "    print(await store.migrate())\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, store_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err.decode() for _, err in outputs]
    assert sorted(out.decode().strip() for out, _ in outputs) == [str(list(range(1, LATEST + 1))), "[]"]
    assert raw_rows(store_url, "SELECT count(*) FROM llmswitch_schema_version") == [(LATEST,)]


def test_a_schema_newer_than_the_code_is_refused(
    store_url: str, run_store: Callable[..., Any], raw_rows: Callable[[str, str], list[Any]]
) -> None:
    async def noop(store: Store) -> None:
        return None

    run_store(store_url, noop)
    raw_rows(
        store_url,
        f"INSERT INTO llmswitch_schema_version (version, name, applied_at) VALUES ({LATEST + 1}, 'future', CURRENT_TIMESTAMP)",
    )
    with pytest.raises(StoreMigrationError, match="upgrade llmswitch"):
        run_store(store_url, noop)


def test_calls_before_migrate_say_so(store_url: str) -> None:
    async def main() -> None:
        store = open_store(store_url)
        await store.open()
        try:
            with pytest.raises(StoreMigrationError, match="migrate"):
                await store.get_key("0" * 64)
        finally:
            await store.close()

    asyncio.run(main())


def test_calls_on_a_closed_store_say_so(store_url: str) -> None:
    async def main() -> None:
        store = open_store(store_url)
        with pytest.raises(StoreError, match="not open"):
            await store.list_keys()
        async with store:
            pass
        await store.close()  # twice is fine
        with pytest.raises(StoreError, match="not open"):
            await store.create_key(KeyRecord.for_key("sk-abcdefghijklmnopqrstuvwxyz"))

    asyncio.run(main())


def test_unreachable_postgres_names_the_url_without_its_password() -> None:
    async def main() -> None:
        # port 1 on loopback: nothing listens there, so the connection is refused at once
        async with open_store("postgresql://gw:hunter2@127.0.0.1:1/llmswitch", connect_timeout=5):
            pass

    with pytest.raises(StoreConnectionError) as info:
        asyncio.run(main())
    message = str(info.value)
    assert "postgresql://gw:***@127.0.0.1:1/llmswitch" in message
    assert "hunter2" not in message and "hunter2" not in info.value.url


def test_a_malformed_postgres_url_is_a_config_error_with_the_url_masked() -> None:
    async def main() -> None:
        async with open_store("postgresql://gw:hunter2@127.0.0.1:not-a-port/llmswitch"):
            pass

    with pytest.raises(ConfigError, match=r"gw:\*\*\*@127.0.0.1:not-a-port") as info:
        asyncio.run(main())
    assert "hunter2" not in str(info.value)


def test_postgres_refusing_the_login_is_a_connection_error(postgres_url: str) -> None:
    url = urlunsplit(urlsplit(postgres_url)._replace(path="/llmswitch_no_such_database"))

    async def main() -> None:
        async with open_store(url):
            pass

    with pytest.raises(StoreConnectionError, match="llmswitch_no_such_database"):
        asyncio.run(main())


def test_unopenable_sqlite_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "keys.db"

    async def main() -> None:
        async with open_store(f"sqlite:///{path}"):
            pass

    with pytest.raises(StoreConnectionError, match="missing-dir"):
        asyncio.run(main())


def test_postgres_tables_live_in_the_schema_of_the_url(
    postgres_url: str, run_store: Callable[..., Any], raw_rows: Callable[[str, str], list[Any]]
) -> None:
    async def noop(store: Store) -> None:
        return None

    run_store(postgres_url, noop)
    schema = postgres_url.rsplit("schema=", 1)[1]
    rows = raw_rows(
        postgres_url,
        "SELECT DISTINCT table_schema FROM information_schema.tables WHERE table_name = 'llmswitch_keys'",
    )
    assert (schema,) in rows and ("public",) not in rows


# ---------------------------------------------------------------- migration 4: leaner spend-log indexes


def _spend_indexes(url: str, raw_rows: Callable[[str, str], list[Any]]) -> dict[str, str]:
    if url.startswith("sqlite"):
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'llmswitch_spend_logs'"
    else:
        query = (
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'llmswitch_spend_logs' AND schemaname = current_schema()"
        )
    return {name: sql or "" for name, sql in raw_rows(url, query)}


def test_spend_logs_keep_only_the_indexes_queries_use(
    store_url: str, run_store: Callable[..., Any], raw_rows: Callable[[str, str], list[Any]]
) -> None:
    async def body(store: Store) -> None:
        return None

    run_store(store_url, body)
    indexes = _spend_indexes(store_url, raw_rows)
    assert "llmswitch_spend_logs_model_group" not in indexes
    assert {"llmswitch_spend_logs_time", "llmswitch_spend_logs_key_hash"} <= set(indexes)
    for column in ("user_id", "team_id"):
        # partial: the many rows without a user or team are in neither index
        definition = indexes[f"llmswitch_spend_logs_{column}"]
        assert "WHERE" in definition and f"{column} IS NOT NULL" in definition, definition


def test_a_user_or_team_query_reads_its_partial_index(sqlite_url: str, run_store: Callable[..., Any]) -> None:
    async def body(store: Store) -> None:
        return None

    run_store(sqlite_url, body)
    with sqlite3.connect(sqlite_path(sqlite_url)) as conn:
        for column in ("user_id", "team_id"):
            plan = " ".join(
                str(row[-1])
                for row in conn.execute(
                    f"EXPLAIN QUERY PLAN SELECT request_id FROM llmswitch_spend_logs WHERE {column} = ? AND time >= ? "
                    "ORDER BY time DESC",
                    ("x", "2025-01-01"),
                )
            )
            assert f"llmswitch_spend_logs_{column}" in plan, plan


def test_a_version_3_database_with_spend_logs_upgrades_and_keeps_them(
    store_url: str, raw_rows: Callable[[str, str], list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        store = open_store(store_url)
        await store.open()
        try:
            # as an llmswitch that knew versions 1 to 3 left it
            backend = sys.modules[type(store).__module__]
            name = "SQLITE_MIGRATIONS" if hasattr(backend, "SQLITE_MIGRATIONS") else "POSTGRES_MIGRATIONS"
            monkeypatch.setattr(backend, name, getattr(backend, name)[:3])
            assert await store.migrate() == [1, 2, 3]
            monkeypatch.undo()
            key = KeyRecord.for_key("sk-abcdefghijklmnopqrstuvwxyz")
            write_keys_as_of_old_schema(monkeypatch, store)
            await store.create_key(key)
            monkeypatch.undo()
            rows = [
                SpendRecord(request_id="r1", key_hash=key.token_hash, user_id="u1", team_id="t1", cost=0.5),
                SpendRecord(request_id="r2", key_hash=key.token_hash, model_group="m", cost=0.25),
            ]
            # stored as that llmswitch stored them: the columns of version 3, and the key's spend added
            when = "'2026-01-01T00:00:00.000000+00:00'"
            for sql in (
                "INSERT INTO llmswitch_spend_logs (request_id, time, key_hash, user_id, team_id, cost, status, "
                f"cache_hit, stream) VALUES ('r1', {when}, '{key.token_hash}', 'u1', 't1', 0.5, 200, FALSE, FALSE)",
                "INSERT INTO llmswitch_spend_logs (request_id, time, key_hash, model_group, cost, status, "
                f"cache_hit, stream) VALUES ('r2', {when}, '{key.token_hash}', 'm', 0.25, 200, FALSE, FALSE)",
                "UPDATE llmswitch_keys SET spend = 0.75",
            ):
                await asyncio.to_thread(raw_rows, store_url, sql)
            assert await store.migrate() == list(range(4, LATEST + 1))
            assert [r.request_id for r in await store.list_spend_logs(user_id="u1")] == ["r1"]
            assert [r.request_id for r in await store.list_spend_logs(team_id="t1")] == ["r1"]
            assert sorted(r.request_id for r in await store.list_spend_logs(key_hash=key.token_hash)) == ["r1", "r2"]
            assert {d.group for d in await store.daily_spend("model")} == {"m", None}
            assert await store.insert_spend_logs([*rows, SpendRecord(request_id="r3", user_id="u1")]) == 1
            assert (await store.get_key(key.token_hash)).spend == 0.75  # type: ignore[union-attr]
        finally:
            await store.close()

    asyncio.run(main())
    assert raw_rows(store_url, "SELECT count(*) FROM llmswitch_spend_logs") == [(3,)]
