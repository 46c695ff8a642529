"""Fixtures that run one test body against every store backend, on real databases.

PostgreSQL is real and required: each test gets a fresh schema (``?schema=``) that is dropped after
it, so tests and xdist workers never see each other's keys. Set ``LLMSWITCH_TEST_POSTGRES_URL`` to
use another server than the local default.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from llmswitch.store import Store, open_store
from llmswitch.store.urls import mask_url, sqlite_path, url_scheme

T = TypeVar("T")

POSTGRES_URL = os.environ.get("LLMSWITCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


RunStore = Callable[..., Any]
RawRows = Callable[[str, str], list[tuple[Any, ...]]]


def _run_store(url: str, body: Callable[[Store], Awaitable[T]], **options: Any) -> T:
    """Open and migrate the store at ``url``, run ``body`` with it in a fresh event loop, close it."""

    async def main() -> T:
        async with open_store(url, **options) as store:
            return await body(store)

    return asyncio.run(main())


def _raw_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of a query run straight on the database behind a store URL, bypassing the store."""
    if url_scheme(url) == "sqlite":
        with sqlite3.connect(sqlite_path(url)) as conn:
            return list(conn.execute(query))

    async def fetch() -> list[tuple[Any, ...]]:
        dsn, _, schema = url.partition("?schema=")
        conn = await asyncpg.connect(dsn, server_settings={"search_path": schema} if schema else None)
        try:
            return [tuple(row) for row in await conn.fetch(query)]
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.fixture
def run_store() -> RunStore:
    """``run_store(url, body, **options)``: open and migrate a store, await ``body(store)``, close it."""
    return _run_store


@pytest.fixture
def raw_rows() -> RawRows:
    """``raw_rows(url, query)``: rows straight from the database behind a store URL."""
    return _raw_rows


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


async def _pg_execute(query: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(query)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[list[str]]:
    """Fails (never skips) when PostgreSQL is down; yields the list of schemas to drop at the end."""
    try:
        asyncio.run(_pg_execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {mask_url(POSTGRES_URL)} ({exc}). Start it "
            "(.ci/run starts it: pg_ctlcluster <version> main start) or set LLMSWITCH_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    schemas: list[str] = []
    yield schemas
    for schema in schemas:  # whatever a failed teardown left behind
        asyncio.run(_pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture
def postgres_url(postgres_server: list[str]) -> Iterator[str]:
    """A URL whose store lives in a fresh schema of its own (created by ``migrate``)."""
    schema = f"llmswitch_test_{uuid.uuid4().hex[:12]}"
    postgres_server.append(schema)
    yield _with_schema(POSTGRES_URL, schema)
    asyncio.run(_pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    postgres_server.remove(schema)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'llmswitch.db'}"


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty store, once per backend."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url
