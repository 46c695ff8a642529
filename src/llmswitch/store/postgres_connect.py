"""How the PostgreSQL store connects: its URL's own options, and what each pooled connection is set up with.

The options a URL may carry beside asyncpg's own are described in :mod:`llmswitch.store.postgres`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import msgspec

from llmswitch.errors import ConfigError

N = TypeVar("N", int, float)

# options of ours in the URL's query, taken out before asyncpg sees it
_URL_OPTIONS = frozenset({"schema", "connection_limit", "connect_timeout", "pool_timeout", "pgbouncer"})


async def init_connection(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Each pooled connection's codecs, set once when it opens."""
    # jsonb in its binary format (a version byte, 1, then the JSON text): the spend logs' binary COPY needs
    # a binary encoder for every column, and it is as cheap as the text format either way
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_jsonb_binary, decoder=_jsonb_from_binary, format="binary"
    )
    # money columns are NUMERIC (migration 5): a float goes in as the decimal it was written as (asyncpg
    # would send 0.1 as 0.1000000000000000055511151231257827...), and an amount comes back as a float,
    # the type every record holds; sums are taken in NUMERIC, so they never drift
    await conn.set_type_codec("numeric", schema="pg_catalog", encoder=_numeric_text, decoder=float, format="text")


async def keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """What the pool does to a connection given back, beyond rolling back a transaction left open
    (asyncpg always does that): nothing. asyncpg's default also sends a reset query (advisory locks
    released, cursors closed, UNLISTEN, RESET ALL), one round trip per release, every spend batch's
    included; but the pool's connections keep no session state to undo: they take no session lock,
    listen to nothing, set nothing beyond their startup settings and hold no cursor past a transaction.
    Migrations, which take a session lock, use a connection of their own (:meth:`~llmswitch.store.postgres.PostgresStore.migrate`)."""


def _jsonb_binary(value: object) -> bytes:
    return b"\x01" + msgspec.json.encode(value)


def _jsonb_from_binary(data: bytes) -> object:
    if data[:1] != b"\x01":
        raise ValueError(f"jsonb in an unknown binary format version: {data[:1]!r}")
    return msgspec.json.decode(memoryview(data)[1:])


def _numeric_text(value: float | int | Decimal) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def split_url(url: str, masked: str) -> tuple[str, dict[str, str]]:
    """The DSN for asyncpg, and our own options taken out of its query (asyncpg would send them as settings)."""
    parts = urlsplit(url)
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise ConfigError(f"invalid query string in PostgreSQL URL {masked!r}") from exc
    options = {k: v for k, v in query if k in _URL_OPTIONS}
    rest = [(k, v) for k, v in query if k not in _URL_OPTIONS]
    return urlunsplit(parts._replace(query=urlencode(rest))), options


def url_password(url: str) -> str | None:
    """The password in ``url``'s user part or its query, if any."""
    parts = urlsplit(url)
    return parts.password or dict(parse_qsl(parts.query)).get("password") or None


def url_number(options: dict[str, str], name: str, default: N, masked: str, kind: type[N]) -> N:
    """A positive number among the URL's options, ``default`` when it is not given."""
    if name not in options:
        return default
    try:
        value = kind(options[name])
    except ValueError:
        raise ConfigError(f"{name}={options[name]!r} in PostgreSQL URL {masked!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"{name} in PostgreSQL URL {masked!r} must be positive, got {options[name]!r}")
    return value


def quote_ident(name: str) -> str:
    """``name`` as a PostgreSQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'
