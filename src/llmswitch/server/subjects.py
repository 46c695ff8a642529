"""Users and teams in memory: their budgets and limits, read on every request without touching the database.

Like the key cache (:mod:`llmswitch.server.auth`), the gateway loads every user and team at start and
then follows the store's change feed (:meth:`~llmswitch.store.Store.subjects_changed_since`) in the
background. A user or team changed on another gateway instance shows here after the next refresh
(``refresh_interval``, one second by default); the admin routes of this instance :meth:`~SubjectCache.put`
what they write at once. ``get`` reads memory only (``None`` when there is no such user or team).

    >>> cache = SubjectCache(store)                          # doctest: +SKIP
    >>> await cache.start()                                  # doctest: +SKIP
    >>> team = cache.get("team", key_record.team_id)         # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from llmswitch.server.refresh import refresh_forever

if TYPE_CHECKING:
    from llmswitch.store import Store, SubjectKind, SubjectRecord

log = logging.getLogger("llmswitch.subjects")


class SubjectCache:
    """User and team records by ``(kind, id)``, in memory, kept fresh from the store in the background.

    With no store (a gateway without virtual keys) it stays empty and :meth:`start` does nothing.
    """

    def __init__(self, store: Store | None, *, refresh_interval: float = 1.0) -> None:
        self._store = store
        self._subjects: dict[tuple[str, str], SubjectRecord] = {}
        self._cursor = 0
        self._interval = refresh_interval
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._subjects)

    async def start(self) -> None:
        """Load every user and team, then refresh in the background; a second call does nothing."""
        if self._store is None or self._task is not None:
            return
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_loop(), name="llmswitch-subject-refresh")

    async def stop(self) -> None:
        """Stop refreshing; what is in memory stays readable."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def refresh(self) -> None:
        """Apply what changed in the store since the last refresh (everything, the first time)."""
        if self._store is None:
            return
        records, deleted, cursor = await self._store.subjects_changed_since(self._cursor)
        if cursor < self._cursor:  # the database was replaced: start over
            records, deleted, cursor = await self._store.subjects_changed_since(0)
            self._subjects.clear()
        for rec in records:
            self._subjects[(rec.kind, rec.id)] = rec
        for kind, subject_id in deleted:
            self._subjects.pop((kind, subject_id), None)
        self._cursor = cursor

    async def _refresh_loop(self) -> None:
        await refresh_forever(self.refresh, self._interval, "users and teams")

    def get(self, kind: SubjectKind, subject_id: str | None) -> SubjectRecord | None:
        """The user or team with this id, or ``None`` (also for a ``None`` id: a key with no team)."""
        if subject_id is None:
            return None
        return self._subjects.get((kind, subject_id))

    def records(self) -> list[SubjectRecord]:
        """Every user and team held in memory."""
        return list(self._subjects.values())

    def put(self, rec: SubjectRecord) -> None:
        """Hold ``rec`` now, before the next refresh brings it (an admin route just wrote it)."""
        self._subjects[(rec.kind, rec.id)] = rec

    def remove(self, kind: SubjectKind, subject_id: str) -> None:
        """Forget a user or team now (an admin route just deleted it)."""
        self._subjects.pop((kind, subject_id), None)
