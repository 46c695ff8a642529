"""Backends by URL scheme, imported lazily; URLs masked and parsed."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import llmswitch.store
from llmswitch.errors import ConfigError
from llmswitch.store import open_store, register_backend
from llmswitch.store.postgres import PostgresStore
from llmswitch.store.sqlite import SQLiteStore
from llmswitch.store.urls import mask_url, sqlite_path


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///keys.db", "keys.db"),
        ("sqlite:///data/keys.db", "data/keys.db"),
        ("sqlite:////var/lib/llmswitch/keys.db", "/var/lib/llmswitch/keys.db"),
        ("sqlite://:memory:", ":memory:"),
        ("sqlite://", ":memory:"),
        (":memory:", ":memory:"),
        ("/tmp/keys.db", "/tmp/keys.db"),
        ("relative/keys.db", "relative/keys.db"),
        ("sqlite:///with%20space.db", "with space.db"),
    ],
)
def test_sqlite_urls_read_as_sqlalchemy_reads_them(url: str, path: str) -> None:
    assert sqlite_path(url) == path
    store = open_store(url)
    assert isinstance(store, SQLiteStore) and store.path == path


def test_sqlite_url_with_a_host_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sqlite:////absolute"):
        sqlite_path("sqlite://keys.db")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://gw:s3cret@db:5432/llmswitch", "postgresql://gw:***@db:5432/llmswitch"),
        ("postgres://gw:p@ss/word@db/x?sslmode=require", "postgres://gw:***@ss/word@db/x?sslmode=require"),
        ("postgresql://gw:p%40ss@db/x", "postgresql://gw:***@db/x"),
        ("postgresql://gw@db/x", "postgresql://gw@db/x"),
        ("postgresql://db/x?user=gw&password=s3cret", "postgresql://db/x?user=gw&password=***"),
        ("sqlite:///keys.db", "sqlite:///keys.db"),
    ],
)
def test_mask_url_hides_passwords(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_postgres_urls_by_either_scheme_and_litellm_options() -> None:
    store = open_store(
        "postgres://gw:pw@db/llmswitch?schema=gateway&connection_limit=12&sslmode=disable&pgbouncer=true"
    )
    assert isinstance(store, PostgresStore)
    assert (
        store.schema == "gateway"
        and store.url
        == "postgres://gw:***@db/llmswitch?schema=gateway&connection_limit=12&sslmode=disable&pgbouncer=true"
    )
    assert isinstance(open_store("postgresql://db/x"), PostgresStore)
    with pytest.raises(ConfigError, match="connection_limit='many'"):
        open_store("postgresql://gw:pw@db/x?connection_limit=many")


def test_unknown_scheme_is_a_config_error_with_the_url_masked() -> None:
    with pytest.raises(ConfigError, match=r"'mysql'.*mysql://u:\*\*\*@h/d.*known: postgres, postgresql, sqlite"):
        open_store("mysql://u:secret@h/d")


class MemoryStore(SQLiteStore):
    def __init__(self, url: str, **options: Any) -> None:
        super().__init__("sqlite://:memory:", **options)


def test_third_party_backends_register_by_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llmswitch.store, "_BACKENDS", dict(llmswitch.store._BACKENDS))
    register_backend("mem", MemoryStore)
    register_backend("lazy", "llmswitch.store.postgres:PostgresStore")
    assert isinstance(open_store("mem://anything"), MemoryStore)
    assert type(open_store("lazy://db/x")) is PostgresStore


def test_nothing_heavy_is_imported_before_it_is_needed() -> None:
    code = (
        "import sys, llmswitch\n"
        "assert 'llmswitch.store' not in sys.modules, 'import llmswitch imported the store'\n"
        "from llmswitch.store import open_store\n"
        "open_store('sqlite://:memory:')\n"
        "assert 'asyncpg' not in sys.modules, 'a SQLite store imported asyncpg'\n"
        "open_store('postgresql://db/x')\n"
        "assert 'asyncpg' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
