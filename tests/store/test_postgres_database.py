"""A missing PostgreSQL database: its own error on open, created when the role may, one clear error when not."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from llmswitch.store import DatabaseMissingError, KeyRecord, generate_key, open_store
from llmswitch.store.postgres import PostgresStore
from llmswitch.store.postgres_database import database_name

POSTGRES_URL = os.environ.get("LLMSWITCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def fetchval(query: str, *args: Any) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def url_of(name: str, role: str | None = None) -> str:
    parts = urlsplit(POSTGRES_URL)
    netloc = parts.netloc if role is None else f"{role}@{parts.netloc.rpartition('@')[2]}"
    return parts._replace(netloc=netloc, path=f"/{name}").geturl()


@pytest.fixture
def missing(postgres_server: list[str]) -> Iterator[str]:
    name = f"llmswitch_dbtest_{uuid.uuid4().hex[:12]}"
    yield name
    fetchval(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def exists(name: str) -> bool:
    return bool(fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))


@pytest.mark.parametrize(
    ("dsn", "name"),
    [
        ("postgresql://u@h:5432/gw", "gw"),
        ("postgresql://u@h/with%20space", "with space"),
        ("postgresql://u@h/?dbname=other", "other"),
        ("postgresql://u@h", None),
    ],
)
def test_database_name(dsn: str, name: str | None) -> None:
    assert database_name(dsn) == name


def test_opening_a_missing_database_is_its_own_error_then_it_can_be_created(missing: str) -> None:
    async def main() -> None:
        store = open_store(url_of(missing))
        assert isinstance(store, PostgresStore)
        with pytest.raises(DatabaseMissingError) as caught:
            await store.open()
        assert caught.value.database == missing
        assert await store.create_database() == missing
        assert await store.create_database() == missing  # created meanwhile (another gateway): fine
        async with store:
            await store.create_key(KeyRecord.for_key(generate_key(), key_alias="in-a-new-database"))

    assert not exists(missing)
    asyncio.run(main())
    assert exists(missing)


@pytest.fixture
def role_without_createdb(postgres_server: list[str]) -> Iterator[str]:
    role = f"llmswitch_nocreate_{uuid.uuid4().hex[:12]}"
    fetchval(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    yield role
    fetchval(f'DROP ROLE IF EXISTS "{role}"')


def test_a_role_that_may_not_create_it_gets_an_error_naming_database_role_and_statement(
    missing: str, role_without_createdb: str
) -> None:
    store = open_store(url_of(missing, role_without_createdb))
    assert isinstance(store, PostgresStore)
    with pytest.raises(DatabaseMissingError) as caught:
        asyncio.run(store.create_database())
    message = str(caught.value)
    assert f"database {missing!r} does not exist" in message
    assert f"role {role_without_createdb!r} may not create it" in message
    assert f'CREATE DATABASE "{missing}"' in message
    assert caught.value.database == missing
    assert not exists(missing)
