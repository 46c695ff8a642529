"""Fixtures for the gateway's tests: one fake upstream per session, one gateway per module (see gateway_harness)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from gateway_harness import POSTGRES_URL, Closing, ServedGateway, gateway_config

from llmswitch.testing import FakeUpstream


@pytest.fixture
def closing() -> Iterator[Closing]:
    keep = Closing()
    yield keep
    for client in reversed(keep.opened):
        client.close()


@pytest.fixture(scope="session", autouse=True)
def journal_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Gateways on PostgreSQL journal spend in ./llmswitch-journal by default: keep tests out of the tree."""
    import os

    old = os.environ.get("LLMSWITCH_JOURNAL_DIR")
    os.environ["LLMSWITCH_JOURNAL_DIR"] = str(tmp_path_factory.mktemp("journal"))
    yield
    if old is None:
        os.environ.pop("LLMSWITCH_JOURNAL_DIR", None)
    else:
        os.environ["LLMSWITCH_JOURNAL_DIR"] = old


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """The shared fake upstream, with nothing scripted or recorded before the test."""
    upstream.reset()
    upstream.responder = None
    yield upstream
    upstream.reset()


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    """The module's gateway: the three groups, master key, SQLite store, no retries (faults surface at once)."""
    db = tmp_path_factory.mktemp("gw") / "keys.db"
    with ServedGateway(gateway_config(upstream, str(db), num_retries=0)) as served:
        yield served


async def _pg_execute(query: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(query)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose store lives in a fresh schema (``?schema=``, created by migrate), dropped after."""
    try:
        asyncio.run(_pg_execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({exc}); start it or set LLMSWITCH_TEST_POSTGRES_URL",
            pytrace=False,
        )
    schema = f"llmswitch_gw_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_URL}?schema={schema}"
    asyncio.run(_pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
