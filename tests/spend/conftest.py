"""Fixtures for the spend tests: a real store on each backend (and PostgreSQL behind a plug).

PostgreSQL is real and required, as in ``tests/store``: each test gets a fresh schema, dropped after
it. Set ``LLMSWITCH_TEST_POSTGRES_URL`` to use another server than the local default.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from llmswitch.store.urls import mask_url

POSTGRES_URL = os.environ.get("LLMSWITCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg_execute(query: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(query)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_server() -> None:
    """Fails (never skips) when PostgreSQL is down."""
    try:
        asyncio.run(_pg_execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is not reachable at {mask_url(POSTGRES_URL)} ({exc})", pytrace=False)


@pytest.fixture
def postgres_url(postgres_server: None) -> Iterator[str]:
    """A URL whose store lives in a fresh schema of its own (created by ``migrate``)."""
    schema = f"llmswitch_spend_test_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}"
    asyncio.run(_pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'llmswitch.db'}"


@pytest.fixture(params=("sqlite", "postgresql"))
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty store, once per backend."""
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    return url


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "spend-journal"
