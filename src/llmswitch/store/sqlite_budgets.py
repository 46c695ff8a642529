"""Budget period resets in the SQLite store (see :mod:`llmswitch.store.budget_periods`), on its thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from llmswitch.store.budget_periods import DueReset, due_reset
from llmswitch.store.sqlite_common import iso, transaction

P = ParamSpec("P")
T = TypeVar("T")

_DUE_KEYS = (
    "SELECT token_hash, budget_duration, budget_reset_at FROM llmswitch_keys "
    "WHERE budget_duration IS NOT NULL AND budget_reset_at <= ?"
)
_DUE_SUBJECTS = (
    "SELECT kind, id, budget_duration, budget_reset_at FROM llmswitch_subjects "
    "WHERE budget_duration IS NOT NULL AND budget_reset_at <= ?"
)
_RESET_KEY = (
    "UPDATE llmswitch_keys SET budget_reset_at = ?, change_seq = ?, spend = "
    "(SELECT COALESCE(money_sum(cost), 0) FROM llmswitch_spend_logs WHERE key_hash = ? AND time >= ?) "
    "WHERE token_hash = ? AND budget_reset_at = ?"
)
_RESET_SUBJECT = (
    "UPDATE llmswitch_subjects SET budget_reset_at = ?, change_seq = ?, spend = "
    "(SELECT COALESCE(money_sum(cost), 0) FROM llmswitch_spend_logs WHERE {column} = ? AND time >= ?) "
    "WHERE kind = ? AND id = ? AND budget_reset_at = ?"
)


class _Caller(Protocol):
    def _call(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]: ...


class SQLiteBudgets:
    """``reset_budgets`` of the SQLite store; ``self`` is the store (anything with its ``_call``)."""

    async def reset_budgets(self: _Caller, now: datetime) -> list[DueReset]:
        return await self._call(_reset_budgets, now)


def _due(conn: sqlite3.Connection, now: datetime) -> tuple[list[DueReset], list[DueReset]]:
    at = iso(now)
    keys = [due_reset("key", h, d, datetime.fromisoformat(r), now) for h, d, r in conn.execute(_DUE_KEYS, (at,))]
    subjects = [
        due_reset(kind, ident, d, datetime.fromisoformat(r), now)
        for kind, ident, d, r in conn.execute(_DUE_SUBJECTS, (at,))
    ]
    return [k for k in keys if k is not None], [s for s in subjects if s is not None]


def _reset_budgets(conn: sqlite3.Connection, now: datetime) -> list[DueReset]:
    keys, subjects = _due(conn, now)  # a read first: nothing is written when nothing is due
    if not keys and not subjects:
        return []
    done: list[DueReset] = []
    with transaction(conn):
        keys, subjects = _due(conn, now)  # again under the write lock: another process may have reset them
        if keys:
            conn.execute("UPDATE llmswitch_change_counters SET value = value + 1 WHERE name = 'keys'")
            seq = conn.execute("SELECT value FROM llmswitch_change_counters WHERE name = 'keys'").fetchone()[0]
            for due in keys:
                args: tuple[Any, ...] = (iso(due.end), seq, due.id, iso(due.start), due.id, iso(due.old_reset_at))
                if conn.execute(_RESET_KEY, args).rowcount:
                    done.append(due)
        if subjects:
            conn.execute("UPDATE llmswitch_change_counters SET value = value + 1 WHERE name = 'subjects'")
            seq = conn.execute("SELECT value FROM llmswitch_change_counters WHERE name = 'subjects'").fetchone()[0]
            for due in subjects:
                column = "user_id" if due.kind == "user" else "team_id"
                args = (iso(due.end), seq, due.id, iso(due.start), due.kind, due.id, iso(due.old_reset_at))
                if conn.execute(_RESET_SUBJECT.format(column=column), args).rowcount:
                    done.append(due)
    return done
