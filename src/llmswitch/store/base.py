"""The one interface every store backend implements.

Two readers use it: the gateway's admin API (create, update, list, delete keys) and a background
refresher that keeps every key in memory, so that authenticating a request never queries the
database. The refresher polls :meth:`Store.keys_changed_since` with an opaque cursor:

    >>> async def refresh(store: Store, keys: dict[str, KeyRecord], cursor: int) -> int:
    ...     changed, deleted, cursor = await store.keys_changed_since(cursor)
    ...     keys.update((rec.token_hash, rec) for rec in changed)
    ...     for token_hash in deleted:
    ...         keys.pop(token_hash, None)
    ...     return cursor

**Why the cursor is a database sequence, not a timestamp.** Every write to a key (create, update,
spend, delete) takes the next number of one counter row in the same transaction. That row lock
serializes writers, so numbers become visible in the order they were handed out: once a reader sees
number N, every change numbered below N is already visible. Wall-clock timestamps from several
gateway hosts give no such guarantee (a slow clock writes "in the past" behind a reader's cursor).
Deletions leave a tombstone carrying its own number, so they propagate the same way. Tombstones are
one short row per deleted key and are kept; pruning them will need a "reload from 0" signal for
refreshers whose cursor is older than the pruned ones.

**Spend logs** arrive in batches from the spend journal's shipper (:mod:`llmswitch.spend`), which
replays its journal after a crash: :meth:`Store.insert_spend_logs` therefore skips request ids it
already has, and adds to keys' spend only the cost of rows it really inserted, in the same
transaction, so a replay never counts spend twice.

**Users and teams** ("subjects": budgets and limits shared by all of a user's or a team's keys) follow
the same design on a change counter of their own: :meth:`Store.subjects_changed_since` feeds the
gateway's in-memory copy, and every write to a subject takes the next number of the ``subjects``
counter. :meth:`Store.insert_spend_logs` adds each new record's cost to its user's and its team's
spend too, in the same transaction, so a replayed journal counts it once there as well. A transaction
that bumps both counters always takes ``keys`` first, so two writers never wait on each other in a cycle.

Backends so far: SQLite (embedded default, one file) and PostgreSQL (several gateway processes).
Batch jobs come next, as a new migration and new methods on this class.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, NamedTuple, Self

from llmswitch.store.budget_periods import DueReset
from llmswitch.store.instances import InstanceRecord
from llmswitch.store.records import KeyRecord, SpendGroup, SpendRecord, SubjectKind, SubjectRecord
from llmswitch.store.responses import StoredResponse


class KeyChanges(NamedTuple):
    """What changed since a cursor: unpacks as ``(records, deleted_hashes, new_cursor)``."""

    records: list[KeyRecord]
    deleted: list[str]
    cursor: int


class SubjectChanges(NamedTuple):
    """What changed since a cursor: unpacks as ``(records, deleted, new_cursor)``; ``deleted`` holds
    ``(kind, id)`` pairs."""

    records: list[SubjectRecord]
    deleted: list[tuple[SubjectKind, str]]
    cursor: int


COST_PLACES = 10
"""Decimal places a summed cost is exact to: each record's cost is rounded to them, then added exactly."""


class DailySpend(NamedTuple):
    """One row of :meth:`Store.daily_spend`: a UTC day and one key, user, team or model's totals.

    ``group`` is ``None`` for requests that had none (e.g. no team). ``cost`` sums known costs only, each
    rounded to :data:`COST_PLACES` decimal places and added without float noise.
    """

    day: date
    group: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cost: float
    # answers served from the response cache, and what they cost when first made (USD, summed as ``cost``)
    cache_hits: int = 0
    cache_saved_cost: float = 0.0


class Store(abc.ABC):
    """Persistent gateway state: virtual keys, users and teams, spend logs; batches will join them.

    ``async with`` opens the store and applies pending migrations, which is what a gateway wants
    on start; call :meth:`open` and :meth:`migrate` yourself to separate the two.

        >>> async def main() -> None:
        ...     async with open_store("sqlite:///llmswitch.db") as store:
        ...         key = generate_key()
        ...         await store.create_key(KeyRecord.for_key(key, user_id="alice", max_budget=10.0))
        ...         rec = await store.get_key(hash_key(key))

    Every method is safe to call from many tasks at once.
    """

    #: the store's URL with any password masked, safe to log
    url: str

    async def __aenter__(self) -> Self:
        await self.open()
        try:
            await self.migrate()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- lifecycle -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect; raises :class:`StoreConnectionError` naming the (masked) URL if that fails."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads; safe to call twice."""

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Apply pending migrations in order and return their versions (``[]`` when up to date).

        Safe to run twice and from several processes at once. Raises :class:`StoreMigrationError`
        if the database was migrated by a newer llmswitch than this one.
        """

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The highest migration applied to the database (0 before the first)."""

    # -- instances (see llmswitch.store.instances) -----------------------------------------------

    async def beat_instance(self, instance: InstanceRecord, *, dead_after_s: float) -> list[InstanceRecord]:
        """Record that ``instance`` is live now, forget instances silent for ``dead_after_s`` seconds, and
        return the other live ones. A backend that does not track instances raises NotImplementedError."""
        raise NotImplementedError(f"{type(self).__name__} does not track gateway instances")

    async def remove_instance(self, instance_id: str) -> None:
        """Forget ``instance_id`` (a gateway stopping cleanly)."""
        raise NotImplementedError(f"{type(self).__name__} does not track gateway instances")

    # -- stored responses (see llmswitch.store.responses) -----------------------------------------

    async def put_response(self, row: StoredResponse) -> None:
        """Keep a Responses API response until ``row.expires_at`` (a second put of its id changes nothing)."""
        raise NotImplementedError(f"{type(self).__name__} does not store responses")

    async def get_response(self, response_id: str) -> StoredResponse | None:
        """The stored response ``response_id``; None when there is none or it expired."""
        raise NotImplementedError(f"{type(self).__name__} does not store responses")

    async def delete_response(self, response_id: str) -> bool:
        """Forget ``response_id``; whether there was one."""
        raise NotImplementedError(f"{type(self).__name__} does not store responses")

    # -- keys ------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_key(self, rec: KeyRecord) -> KeyRecord:
        """Store a new key and return it as stored; :class:`KeyExistsError` if its hash is taken."""

    @abc.abstractmethod
    async def get_key(self, token_hash: str) -> KeyRecord | None:
        """The key with this hash, or ``None``."""

    @abc.abstractmethod
    async def update_key(self, token_hash: str, /, **fields: Any) -> KeyRecord | None:
        """Change some fields of a key; the updated record, or ``None`` if there is no such key.

        ``TypeError`` for a field that cannot be updated (``token_hash``, ``created_at``,
        ``updated_at``), ``ValueError`` for a value of the wrong type.

            >>> await store.update_key(token_hash, rpm_limit=60, blocked=True)  # doctest: +SKIP
        """

    @abc.abstractmethod
    async def delete_keys(self, token_hashes: Iterable[str]) -> int:
        """Delete keys by hash; how many existed."""

    @abc.abstractmethod
    async def list_keys(
        self, *, user_id: str | None = None, team_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[KeyRecord]:
        """Keys, oldest first, optionally only one user's or team's; page with ``limit``/``offset``."""

    @abc.abstractmethod
    async def count_keys(self, *, user_id: str | None = None, team_id: str | None = None) -> int:
        """How many keys :meth:`list_keys` would page through with the same filters."""

    @abc.abstractmethod
    async def keys_changed_since(self, cursor: int) -> KeyChanges:
        """Keys created or changed, and hashes deleted, after ``cursor``; plus the cursor to pass next.

        Cursor ``0`` is a full load: every key, and no deletions (there is nothing to delete from).
        A returned cursor lower than the one passed in means the database was replaced: reload from 0.
        """

    @abc.abstractmethod
    async def add_key_spend(self, token_hash: str, amount: float) -> float | None:
        """Add ``amount`` (USD) to a key's spend atomically; its new spend, or ``None`` if no such key."""

    # -- users and teams -------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_subject(self, rec: SubjectRecord) -> SubjectRecord:
        """Store a new user or team and return it as stored; :class:`SubjectExistsError` if its id is taken.

        >>> await store.create_subject(SubjectRecord(kind="team", id="research", max_budget=100.0))  # doctest: +SKIP
        """

    @abc.abstractmethod
    async def get_subject(self, kind: SubjectKind, subject_id: str) -> SubjectRecord | None:
        """The user or team with this id, or ``None``."""

    @abc.abstractmethod
    async def update_subject(self, kind: SubjectKind, subject_id: str, /, **fields: Any) -> SubjectRecord | None:
        """Change some fields of a user or team; the updated record, or ``None`` if there is no such one.

        ``TypeError`` for a field that cannot be updated (``kind``, ``id``, ``created_at``, ``updated_at``),
        ``ValueError`` for a bad value.

            >>> await store.update_subject("user", "alice", rpm_limit=60, blocked=True)  # doctest: +SKIP
        """

    @abc.abstractmethod
    async def delete_subjects(self, kind: SubjectKind, subject_ids: Iterable[str]) -> int:
        """Delete users or teams by id; how many existed. Their keys are left alone."""

    @abc.abstractmethod
    async def list_subjects(self, kind: SubjectKind, *, limit: int = 100, offset: int = 0) -> list[SubjectRecord]:
        """Users or teams, oldest first; page with ``limit``/``offset``."""

    @abc.abstractmethod
    async def count_subjects(self, kind: SubjectKind) -> int:
        """How many users or teams :meth:`list_subjects` would page through."""

    @abc.abstractmethod
    async def subjects_changed_since(self, cursor: int) -> SubjectChanges:
        """Users and teams created or changed, and ``(kind, id)`` pairs deleted, after ``cursor``; plus
        the cursor to pass next. Same rules as :meth:`keys_changed_since`, on a counter of its own."""

    @abc.abstractmethod
    async def add_subject_spend(self, kind: SubjectKind, subject_id: str, amount: float) -> float | None:
        """Add ``amount`` (USD) to a user's or team's spend atomically; the new spend, or ``None`` if none."""

    # -- budget periods --------------------------------------------------------------------------

    @abc.abstractmethod
    async def reset_budgets(self, now: datetime) -> list[DueReset]:
        """Start the current period of every key, user and team budget whose ``budget_reset_at`` has
        passed (those with a ``budget_duration``): ``budget_reset_at`` moves to the end of the period
        holding ``now`` and ``spend`` becomes the spend logs' total since its start. What was reset.

        Safe to run from several gateways at once: each budget is reset once per period.

            >>> [due.id for due in await store.reset_budgets(datetime.now(UTC))]  # doctest: +SKIP
            ['9f2c...', 'research']
        """

    # -- spend logs ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def insert_spend_logs(self, records: Sequence[SpendRecord]) -> int:
        """Store spend records, skipping request ids already stored; how many were new.

        One transaction: the new rows, and for each key among them one increment of its spend by
        their total known cost (as :meth:`add_key_spend` would, so key refreshers see it); the same
        for each stored user and team named by the new rows (as :meth:`add_subject_spend` would). Records
        whose request id is already stored add nothing, which makes a replay harmless.
        ``ValueError`` (and nothing written) for a record with a wrongly typed field or one this
        database cannot hold: retrying cannot help, so the spend shipper sets such records aside.

            >>> await store.insert_spend_logs([SpendRecord(request_id="r1", key_hash=h, cost=0.5)])  # doctest: +SKIP
            1
        """

    @abc.abstractmethod
    async def list_spend_logs(
        self,
        *,
        key_hash: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        request_id: str | None = None,
        model_group: str | None = None,
        status: int | None = None,
    ) -> list[SpendRecord]:
        """Spend records, newest first, filtered by any of key, user, team, model group, HTTP status and
        ``start <= time < end``.

        Page with ``limit``/``offset``. Naive datetimes are taken to be UTC.
        """

    @abc.abstractmethod
    async def spend_since(self, column: str, value: str, start: datetime, *, model_group: str | None = None) -> float:
        """The summed cost of the spend records with ``column`` (``key_hash``, ``user_id`` or ``team_id``)
        equal to ``value`` since ``start``: what a budget period has spent so far. With ``model_group``,
        only that model group's records (a key's per-model budget)."""

    @abc.abstractmethod
    async def daily_spend(
        self,
        group_by: SpendGroup,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        team_id: str | None = None,
    ) -> list[DailySpend]:
        """Totals per UTC day and per key (its hash), user, team or model (``model_group``).

        Only records with ``start <= time < end`` (and of team ``team_id`` when given); ordered by day,
        then group (``None`` last).

            >>> await store.daily_spend("team", start=datetime(2025, 6, 1, tzinfo=UTC))  # doctest: +SKIP
            [DailySpend(day=datetime.date(2025, 6, 1), group='research', requests=42, ...)]
        """


def check_page(limit: int, offset: int) -> None:
    """Shared argument check for ``list_*`` methods."""
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must not be negative, got limit={limit}, offset={offset}")
