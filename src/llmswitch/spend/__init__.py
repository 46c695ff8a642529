"""Spend records: journaled on local disk before a response finishes, shipped to the store in batches.

    >>> async def serve() -> None:
    ...     async with (
    ...         open_store("postgresql://gw@db/llmswitch") as store,
    ...         Journal("/var/lib/llmswitch/spend", fsync="always") as journal,
    ...         Shipper(journal, store),
    ...     ):
    ...         ...
    ...         # per answered request, before the response's last byte:
    ...         await journal.append(SpendRecord(request_id=rid, key_hash=h, model_group="gpt-4o", cost=0.0021))

Nothing answered is lost: :meth:`Journal.append` returns once the record is durable on local disk
(group commit keeps that cheap), and :class:`Shipper` stores journaled records idempotently by
request id, adding each new record's cost to its key's spend in the same transaction, so the replay
after a crash (even ``kill -9`` mid-batch) neither loses nor double-counts anything. A database
outage only delays shipping. Reading spend back is the store's job:
:meth:`~llmswitch.store.Store.list_spend_logs` and :meth:`~llmswitch.store.Store.daily_spend`.

Modules: ``framing`` (the line format), ``segments`` (files on disk), ``writer`` (durable appends),
``journal`` (group commit, the reading API), ``shipper`` (the background task).
"""

from __future__ import annotations

from llmswitch.spend.errors import JournalError, JournalLockedError
from llmswitch.spend.journal import FsyncMode, Journal, JournalStats
from llmswitch.spend.segments import Position, ReadResult
from llmswitch.spend.shipper import Shipper, ShipperStats
from llmswitch.store.records import SpendRecord

__all__ = [
    "FsyncMode",
    "Journal",
    "JournalError",
    "JournalLockedError",
    "JournalStats",
    "Position",
    "ReadResult",
    "Shipper",
    "ShipperStats",
    "SpendRecord",
]
