"""Store URLs: which backend a URL names, and how to show one without its password.

>>> mask_url("postgresql://gw:s3cret@db.internal:5432/llmswitch")
'postgresql://gw:***@db.internal:5432/llmswitch'
>>> sqlite_path("sqlite:////var/lib/llmswitch/keys.db"), sqlite_path("sqlite:///keys.db")
('/var/lib/llmswitch/keys.db', 'keys.db')
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from llmswitch.errors import ConfigError

MEMORY = ":memory:"
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def url_scheme(url: str) -> str:
    """The scheme of a store URL, lower-cased; a bare filesystem path is SQLite."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else "sqlite"


def mask_url(url: str) -> str:
    """``url`` with the password of its user-info replaced by ``***``; safe for logs and errors."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # libpq also takes the password as a query parameter
    rest = _QUERY_PASSWORD.sub(r"\1***", rest)
    # the authority ends at the first "/", "?" or "#"; its user-info ends at its last "@"
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return f"{scheme}://{rest}"
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{tail}"


def sqlite_path(url: str) -> str:
    """The file a SQLite URL names, as SQLAlchemy reads them; ``":memory:"`` for an in-memory database.

    ``sqlite:///relative.db`` (three slashes) is relative to the working directory,
    ``sqlite:////abs/path.db`` (four) is absolute; ``sqlite://:memory:``, ``sqlite://`` and
    ``:memory:`` are in memory; a string without ``://`` is a path as given.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if scheme.lower() != "sqlite":
        raise ConfigError(f"not a SQLite URL: {mask_url(url)!r}")
    rest = rest.split("?", 1)[0]
    if rest in ("", MEMORY, "/" + MEMORY):
        return MEMORY
    if not rest.startswith("/"):
        raise ConfigError(
            f"SQLite URL {url!r} names a host; use sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    return unquote(rest[1:])
