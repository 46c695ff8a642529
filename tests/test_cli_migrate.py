"""``llmswitch migrate``: the store's migrations run as a command of their own, on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from llmswitch.store.migrations import POSTGRES_MIGRATIONS
from llmswitch.store.postgres_migrate import lock_id

POSTGRES_URL = os.environ.get("LLMSWITCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
LATEST = POSTGRES_MIGRATIONS[-1].version


async def _execute(query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"llmswitch_test_{uuid.uuid4().hex[:12]}"
    yield name
    asyncio.run(_execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


def _migrate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmswitch.cli", "migrate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _messages(stderr: str) -> list[str]:
    return [json.loads(line)["msg"] for line in stderr.splitlines() if line.startswith("{")]


def test_migrate_applies_the_pending_versions_then_finds_none(schema: str) -> None:
    url = f"{POSTGRES_URL}?schema={schema}"
    first = _migrate("--database-url", url)
    assert first.returncode == 0, first.stderr
    assert f"applied versions {list(range(1, LATEST + 1))}" in " ".join(_messages(first.stderr))
    rows = asyncio.run(_execute(f'SELECT max(version) FROM "{schema}".llmswitch_schema_version'))
    assert rows[0][0] == LATEST
    again = _migrate("--database-url", url)
    assert again.returncode == 0, again.stderr
    assert any("is up to date" in m for m in _messages(again.stderr))


def test_migrate_reads_the_store_from_the_config(schema: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list: []\n"
        f"general_settings:\n  master_key: sk-test-master\n  database_url: {POSTGRES_URL}?schema={schema}\n"
    )
    done = _migrate("--config", str(config))
    assert done.returncode == 0, done.stderr
    rows = asyncio.run(_execute(f'SELECT count(*) FROM "{schema}".llmswitch_schema_version'))
    assert rows[0][0] == LATEST


def test_migrate_while_another_instance_holds_the_lock_fails_with_the_reason(schema: str) -> None:
    async def main() -> subprocess.CompletedProcess[str]:
        holder = await asyncpg.connect(POSTGRES_URL)
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", lock_id(schema))
            return await asyncio.to_thread(
                _migrate,
                "--database-url",
                f"{POSTGRES_URL}?schema={schema}",
                env={"LLMSWITCH_MIGRATION_LOCK_TIMEOUT": "1"},
            )
        finally:
            await holder.close()

    done = asyncio.run(main())
    assert done.returncode == 3, done.stderr
    assert any("another instance is migrating the database" in m for m in _messages(done.stderr)), done.stderr


def test_migrate_of_an_unreachable_database_exits_3() -> None:
    done = _migrate("--database-url", "postgresql://gw:hunter2@127.0.0.1:1/llmswitch")
    assert done.returncode == 3, done.stderr
    assert "hunter2" not in done.stderr and "127.0.0.1:1" in done.stderr
