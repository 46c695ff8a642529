"""Writing a key into a database left at an older schema version, as the llmswitch of that version did.

Tests of a migration migrate to an old version, write rows, then migrate the rest. A key written with
today's record would name columns the old table does not have yet; :func:`write_keys_as_of_old_schema`
makes the store write only the columns every older version had, until the test's ``monkeypatch``
is undone.
"""

from __future__ import annotations

import sys

import pytest

from llmswitch.store import Store
from llmswitch.store.records import KEY_FIELDS

# key columns added by a migration after version 5, newest last
LATER_KEY_COLUMNS = (
    "aliases", "tags", "soft_budget", "model_rpm_limit", "model_tpm_limit", "model_max_budget",
)  # fmt: skip


def write_keys_as_of_old_schema(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    backend = sys.modules[type(store).__module__]
    fields = tuple(name for name in KEY_FIELDS if name not in LATER_KEY_COLUMNS)
    if hasattr(backend, "SQLITE_MIGRATIONS"):
        values = ", ".join("?" * (len(fields) + 1))
    else:
        values = ", ".join(f"${i}" for i in range(1, len(fields) + 2))
    monkeypatch.setattr(backend, "KEY_FIELDS", fields)
    monkeypatch.setattr(
        backend, "_INSERT_KEY", f"INSERT INTO llmswitch_keys ({', '.join(fields)}, change_seq) VALUES ({values})"
    )


# subject columns added by a migration after version 5, newest last
LATER_SUBJECT_COLUMNS = ("members_with_roles",)


def write_subjects_as_of_old_schema(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    """As :func:`write_keys_as_of_old_schema`, for users and teams."""
    from llmswitch.store import postgres_subjects, sqlite_subjects
    from llmswitch.store.records import SUBJECT_FIELDS

    sqlite = hasattr(sys.modules[type(store).__module__], "SQLITE_MIGRATIONS")
    module = sqlite_subjects if sqlite else postgres_subjects
    fields = tuple(name for name in SUBJECT_FIELDS if name not in LATER_SUBJECT_COLUMNS)
    if sqlite:
        values = ", ".join("?" * (len(fields) + 1))
    else:
        values = ", ".join(f"${i}" for i in range(1, len(fields) + 2))
    monkeypatch.setattr(module, "SUBJECT_FIELDS", fields)
    monkeypatch.setattr(
        module, "_INSERT", f"INSERT INTO llmswitch_subjects ({', '.join(fields)}, change_seq) VALUES ({values})"
    )
