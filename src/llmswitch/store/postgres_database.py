"""Creating the PostgreSQL database a store URL names, when it does not exist yet and the role may.

A new deployment's URL usually names a database nobody has created: rather than failing on every start,
the gateway creates it (``CREATE DATABASE``) through the server's maintenance database, with the URL's
own role and credentials. A role without the CREATEDB privilege gets one error that names the database
and the statement to run.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import asyncpg

from llmswitch.store.errors import DatabaseMissingError, StoreConnectionError
from llmswitch.store.postgres_connect import quote_ident

# where a role can connect while its own database is missing: every cluster has them
_MAINTENANCE_DATABASES = ("postgres", "template1")


def database_name(dsn: str) -> str | None:
    """The database a PostgreSQL URL names (its path, or a ``database``/``dbname`` parameter)."""
    parts = urlsplit(dsn)
    name = unquote(parts.path.lstrip("/"))
    if name:
        return name
    query = dict(parse_qsl(parts.query))
    return query.get("database") or query.get("dbname") or None


async def create_database(dsn: str, *, masked_url: str, timeout: float = 10.0) -> str:
    """Create the database ``dsn`` names and return its name; one created meanwhile by another process is fine.

    Raises :class:`DatabaseMissingError` when the role may not create it (or cannot reach a maintenance
    database to do so), :class:`StoreConnectionError` when the server does not answer.
    """
    name = database_name(dsn)
    if name is None:
        raise DatabaseMissingError(f"the PostgreSQL URL {masked_url} names no database", url=masked_url, database="")
    conn = await _connect_to_maintenance(dsn, name, masked_url, timeout)
    try:
        role = await conn.fetchval("SELECT current_user")
        try:
            await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
        except asyncpg.DuplicateDatabaseError:
            pass  # another gateway starting at the same time created it
        except asyncpg.InsufficientPrivilegeError as exc:
            raise DatabaseMissingError(
                f"PostgreSQL database {name!r} does not exist at {masked_url} and role {role!r} may not create it: "
                f"run CREATE DATABASE {quote_ident(name)} as a role that may (or grant {role!r} CREATEDB)",
                url=masked_url,
                database=name,
            ) from exc
    finally:
        await conn.close()
    return name


async def _connect_to_maintenance(dsn: str, name: str, masked_url: str, timeout: float) -> asyncpg.Connection:
    last: BaseException | None = None
    for other in _MAINTENANCE_DATABASES:
        if other == name:
            continue
        try:
            conn: asyncpg.Connection = await asyncpg.connect(
                urlsplit(dsn)._replace(path="/" + other).geturl(), timeout=timeout, database=other
            )
        except (
            asyncpg.InvalidCatalogNameError,
            asyncpg.InvalidAuthorizationSpecificationError,
            asyncpg.InsufficientPrivilegeError,
        ) as exc:
            last = exc  # that one is missing too, or closed to this role (pg_hba.conf, no CONNECT): try the next
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise StoreConnectionError(f"cannot reach PostgreSQL at {masked_url}: {exc}", url=masked_url) from exc
        else:
            return conn
    raise DatabaseMissingError(
        f"PostgreSQL database {name!r} does not exist at {masked_url}, and creating it needs a connection to the "
        f"server's postgres or template1 database, which this role cannot open ({last}): create the database first",
        url=masked_url,
        database=name,
    ) from last
