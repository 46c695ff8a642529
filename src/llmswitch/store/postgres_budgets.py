"""Budget period resets in the PostgreSQL store (see :mod:`llmswitch.store.budget_periods`)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import asyncpg

from llmswitch.store.budget_periods import DueReset, due_reset

_DUE_KEYS = (
    "SELECT token_hash, budget_duration, budget_reset_at FROM llmswitch_keys "
    "WHERE budget_duration IS NOT NULL AND budget_reset_at <= $1"
)
_DUE_SUBJECTS = (
    "SELECT kind, id, budget_duration, budget_reset_at FROM llmswitch_subjects "
    "WHERE budget_duration IS NOT NULL AND budget_reset_at <= $1"
)
_RESET_KEY = (
    "UPDATE llmswitch_keys SET budget_reset_at = $1, change_seq = $2, spend = "
    "(SELECT COALESCE(SUM(cost::numeric), 0) FROM llmswitch_spend_logs WHERE key_hash = $3 AND time >= $4) "
    "WHERE token_hash = $3 AND budget_reset_at = $5"
)
_RESET_SUBJECT = (
    "UPDATE llmswitch_subjects SET budget_reset_at = $1, change_seq = $2, spend = "
    "(SELECT COALESCE(SUM(cost::numeric), 0) FROM llmswitch_spend_logs WHERE {column} = $3 AND time >= $4) "
    "WHERE kind = $5 AND id = $3 AND budget_reset_at = $6"
)

if TYPE_CHECKING:
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]


class _Pooled(Protocol):
    def _connection(self) -> AbstractAsyncContextManager[Connection]: ...


class PostgresBudgets:
    """``reset_budgets`` of the PostgreSQL store; ``self`` is the store (anything with its ``_connection``)."""

    async def reset_budgets(self: _Pooled, now: datetime) -> list[DueReset]:
        async with self._connection() as conn:
            keys, subjects = await _due(conn, now)  # a read first: nothing is written when nothing is due
            if not keys and not subjects:
                return []
            done: list[DueReset] = []
            async with conn.transaction():
                if keys:
                    # the counter row's lock (keys before subjects, as every writer takes them) orders
                    # gateways resetting at once; the second finds budget_reset_at moved and changes nothing
                    seq = await conn.fetchval(
                        "UPDATE llmswitch_change_counters SET value = value + 1 WHERE name = 'keys' RETURNING value"
                    )
                    for due in keys:
                        status = await conn.execute(_RESET_KEY, due.end, seq, due.id, due.start, due.old_reset_at)
                        if status != "UPDATE 0":
                            done.append(due)
                if subjects:
                    seq = await conn.fetchval(
                        "UPDATE llmswitch_change_counters SET value = value + 1 WHERE name = 'subjects' RETURNING value"
                    )
                    for due in subjects:
                        column = "user_id" if due.kind == "user" else "team_id"
                        status = await conn.execute(
                            _RESET_SUBJECT.format(column=column),
                            due.end, seq, due.id, due.start, due.kind, due.old_reset_at,
                        )  # fmt: skip
                        if status != "UPDATE 0":
                            done.append(due)
            return done


async def _due(conn: Connection, now: datetime) -> tuple[list[DueReset], list[DueReset]]:
    keys = [due_reset("key", h, d, r, now) for h, d, r in await conn.fetch(_DUE_KEYS, now)]
    subjects = [due_reset(kind, ident, d, r, now) for kind, ident, d, r in await conn.fetch(_DUE_SUBJECTS, now)]
    return [k for k in keys if k is not None], [s for s in subjects if s is not None]
