"""The gateway's persistent state: virtual keys, users and teams, spend logs now; batch jobs next.

    >>> store = open_store("sqlite:///llmswitch.db")            # embedded default, one file
    >>> store = open_store("postgresql://gw:pw@db/llmswitch")   # several gateway processes
    >>> async def main() -> None:
    ...     async with store:                                    # connects and applies migrations
    ...         await store.create_key(KeyRecord.for_key(generate_key(), user_id="alice"))

Backends are found by URL scheme and imported on first use (as uvicorn does), so a gateway on
SQLite never imports asyncpg; third-party backends plug in with :func:`register_backend`.
Nothing here is imported by ``import llmswitch``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from llmswitch.errors import ConfigError
from llmswitch.store.base import DailySpend, KeyChanges, Store, SubjectChanges
from llmswitch.store.durations import add_duration, parse_duration
from llmswitch.store.errors import (
    DatabaseMissingError,
    KeyExistsError,
    StoreConnectionError,
    StoreError,
    StoreMigrationError,
    StoreTimeoutError,
    SubjectExistsError,
)
from llmswitch.store.instances import InstanceRecord
from llmswitch.store.keys import generate_key, hash_key, mask_key
from llmswitch.store.records import KeyRecord, SpendGroup, SpendRecord, SubjectKind, SubjectRecord
from llmswitch.store.urls import mask_url, url_scheme

__all__ = [
    "DailySpend",
    "DatabaseMissingError",
    "InstanceRecord",
    "KeyChanges",
    "KeyExistsError",
    "KeyRecord",
    "SpendGroup",
    "SpendRecord",
    "Store",
    "StoreConnectionError",
    "StoreError",
    "StoreMigrationError",
    "StoreTimeoutError",
    "SubjectChanges",
    "SubjectExistsError",
    "SubjectKind",
    "SubjectRecord",
    "add_duration",
    "generate_key",
    "hash_key",
    "mask_key",
    "mask_url",
    "open_store",
    "parse_duration",
    "register_backend",
]

_BACKENDS: dict[str, str | Callable[..., Store]] = {
    "sqlite": "llmswitch.store.sqlite:SQLiteStore",
    "postgresql": "llmswitch.store.postgres:PostgresStore",
    "postgres": "llmswitch.store.postgres:PostgresStore",
}


def register_backend(scheme: str, backend: str | Callable[..., Store]) -> None:
    """Serve ``scheme://`` URLs with a :class:`Store` class taking ``(url, **options)``.

    Give the class itself, or ``"module:Class"`` to import it only when such a URL is opened.
    """
    _BACKENDS[scheme.lower()] = backend


def open_store(url: str, **options: Any) -> Store:
    """The store a URL names, not yet connected: ``async with`` it, or call ``open()`` and ``migrate()``.

    ``options`` go to the backend (e.g. ``max_size=10`` for PostgreSQL's pool). An unknown scheme
    is a :class:`ConfigError`.

        >>> open_store("sqlite://:memory:").url
        'sqlite://:memory:'
    """
    scheme = url_scheme(url)
    target = _BACKENDS.get(scheme)
    if target is None:
        raise ConfigError(
            f"unknown store URL scheme {scheme!r} in {mask_url(url)!r}; known: {', '.join(sorted(_BACKENDS))}"
        )
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = _BACKENDS[scheme] = getattr(importlib.import_module(module), attr)
    store: Store = target(url, **options)
    return store
