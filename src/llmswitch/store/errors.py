"""Errors of the gateway's store, hung under llmswitch's one tree (see :mod:`llmswitch.errors`).

    LLMSwitchError
     ├── ConfigError                   an unknown URL scheme or a malformed store URL
     └── StoreError                    the store failed or refused an operation
          ├── StoreConnectionError     the database could not be reached (names the URL, password masked)
          │    ├── StoreTimeoutError   ... or did not answer in time
          │    └── DatabaseMissingError  ... or answered that the database does not exist
          ├── StoreMigrationError      the schema is missing, or newer than this llmswitch knows
          ├── KeyExistsError           ``create_key`` with a token hash that is already stored
          └── SubjectExistsError       ``create_subject`` with a user or team id that is already stored

Other database errors (a constraint we did not expect, a bug) propagate unchanged with their own type,
so they are never mistaken for a transient outage.
"""

from __future__ import annotations

from llmswitch.errors import LLMSwitchError


class StoreError(LLMSwitchError):
    """The store failed or refused an operation."""


class StoreConnectionError(StoreError):
    """The database could not be reached, or the connection broke mid-way.

    ``url`` is the store URL with its password masked, safe to log.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class StoreTimeoutError(StoreConnectionError):
    """The database did not answer within the timeout."""


class DatabaseMissingError(StoreConnectionError):
    """The server answered, but the database the URL names does not exist (``database`` names it)."""

    def __init__(self, message: str, *, url: str, database: str) -> None:
        super().__init__(message, url=url)
        self.database = database


class StoreMigrationError(StoreError):
    """The schema is missing (``migrate()`` was not run) or newer than this version of llmswitch."""


class KeyExistsError(StoreError):
    """A key with this token hash is already stored."""

    def __init__(self, message: str, *, token_hash: str) -> None:
        super().__init__(message)
        self.token_hash = token_hash


class SubjectExistsError(StoreError):
    """A user or team with this id is already stored."""

    def __init__(self, message: str, *, kind: str, subject_id: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.subject_id = subject_id
