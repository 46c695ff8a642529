"""Fixtures for the dashboard's tests: the gateway harness of tests/server (a real gateway on loopback,
the fake upstream behind it), one gateway per module on SQLite and, where a test asks, on PostgreSQL."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from gateway_harness import POSTGRES_URL

from llmswitch.testing import FakeUpstream


@pytest.fixture(scope="session", autouse=True)
def journal_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the spend journal of gateways under test out of the tree."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMSWITCH_JOURNAL_DIR", str(tmp_path_factory.mktemp("journal")))
        yield


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


async def _pg_execute(query: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(query)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL in a fresh schema (created by migrate), dropped after the module."""
    try:
        asyncio.run(_pg_execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} ({exc})", pytrace=False)
    schema = f"llmswitch_ui_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_URL}?schema={schema}"
    asyncio.run(_pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
