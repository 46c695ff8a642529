"""The background task that moves journaled spend records into the store, in batches.

    >>> async def serve(store: Store) -> None:
    ...     async with Journal("/var/lib/llmswitch/spend") as journal, Shipper(journal, store):
    ...         ...  # the gateway runs; journal.append(record) for each answered request

On start it resumes where the last run stopped (the journal's checkpoint, or the oldest segment
left) and then follows new commits. A batch is up to ``batch_size`` records, one store
transaction (:meth:`~llmswitch.store.Store.insert_spend_logs`); while the gateway is busy batches
follow each other at once, and when it is quiet the shipper waits ``interval`` after a commit so a
batch gathers more than one record. A segment is deleted only after the store has committed every
record in it.

**Exactly once, by construction.** The store skips request ids it already has and adds spend for
new rows only, in the same transaction. So a crash anywhere (after the store committed, before the
checkpoint moved) means some records are sent again and change nothing: the checkpoint is a hint
that saves time, not something correctness rests on. That is also why it is saved at most every
``checkpoint_interval`` (1 s) while batches follow each other, rather than after each batch: each
save is a hop to the journal's thread and a file replaced, and a crash then sends at most that much
again. A drain or a stop saves it at once, and a journal gone quiet within the interval.

**When the store is down** (or answers with errors), the journal keeps every record, appends are
not slowed at all, and the shipper retries the same batch with exponential backoff and full
jitter. It logs a warning once when the trouble starts, and once more when shipping resumes.
A batch the store rejects as invalid (``ValueError``: a record it cannot hold) is retried one record
at a time, and only the records refused on their own are set aside in the journal's
``rejected.journal``, logged as errors, so one bad record never stops the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from llmswitch.errors import ConfigError
from llmswitch.procid import RNG
from llmswitch.spend.journal import Journal
from llmswitch.spend.segments import Position
from llmswitch.store.base import Store
from llmswitch.store.errors import StoreConnectionError
from llmswitch.store.records import SpendRecord

T = TypeVar("T")

_log = logging.getLogger("llmswitch.spend")


@dataclass(slots=True)
class ShipperStats:
    """Counters since the shipper started; read them, do not set them."""

    #: records the store has confirmed, new or already stored
    shipped: int = 0
    #: of those, the ones that were new
    inserted: int = 0
    batches: int = 0
    failed_attempts: int = 0
    rejected: int = 0
    #: torn or corrupt journal lines passed over
    skipped_lines: int = 0


class Shipper:
    """Ships ``journal``'s records to ``store``; ``async with`` it, or :meth:`start` and :meth:`stop`.

    Stop the shipper before closing the journal. ``retry_initial`` and ``retry_max`` (seconds) bound
    the backoff between attempts while the store is failing.

    Batches are small (``batch_size`` 100) and frequent (``interval`` 20 ms) on purpose: shipping runs
    beside the event loop and takes its share of the GIL and the cores, and a short burst delays a
    request by a fraction of a millisecond where a batch of a thousand held it for several (measured:
    the gateway's p99 at one connection went from about 4 ms to about 1.3 ms on two cores).

    A shipper that falls behind takes bigger batches: after a full batch the next one may be twice
    as big, up to ``max_batch_size`` (1000), and once it has caught up it goes back to ``batch_size``.
    That matters when the event loop is saturated: each of a batch's round trips to the database then
    waits a whole turn of the loop (milliseconds), so batches of 100 ship far fewer records a second
    than a busy worker answers, and the backlog would grow for as long as the load lasts (measured:
    about 3,500 records/s shipped against 7,800 answered, at one worker on two cores).

    ``load`` says how many requests the process is answering. While ``busy_requests`` or more are in
    flight, the shipper waits ``busy_interval`` (80 ms) after a commit and takes up to
    ``busy_batch_size`` records at once (by default four times ``batch_size``: 400). Each request then
    already waits its turn behind the others, and fewer, bigger batches cost the worker and the
    database less per record (measured, two processes on one PostgreSQL: 51 µs of CPU a record in
    batches of 60, 33 in batches of 240, when batches went in as a JSON INSERT; still 71 and 40 as a COPY
    on a slower machine, docs/benchmarks.md). With one or a few requests in flight, the small, frequent
    batches keep their tail latency.
    """

    def __init__(
        self,
        journal: Journal,
        store: Store,
        *,
        batch_size: int = 100,
        max_batch_size: int = 1000,
        interval: float = 0.02,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        checkpoint_interval: float = 1.0,
        load: Callable[[], int] | None = None,
        busy_requests: int = 8,
        busy_interval: float = 0.08,
        busy_batch_size: int | None = None,
    ) -> None:
        if batch_size < 1 or interval < 0 or retry_initial <= 0 or retry_max < retry_initial:
            raise ConfigError("spend shipper needs batch_size >= 1, interval >= 0 and 0 < retry_initial <= retry_max")
        if checkpoint_interval < 0:
            raise ConfigError(f"spend shipper needs checkpoint_interval >= 0; got {checkpoint_interval}")
        if max_batch_size < batch_size:
            raise ConfigError(f"spend shipper needs max_batch_size >= batch_size ({batch_size}); got {max_batch_size}")
        if busy_batch_size is None:
            busy_batch_size = min(4 * batch_size, max_batch_size)
        if busy_interval < interval or not batch_size <= busy_batch_size <= max_batch_size:
            raise ConfigError(
                "spend shipper needs busy_interval >= interval and batch_size <= busy_batch_size <= max_batch_size"
            )
        self.journal = journal
        self.store = store
        self.batch_size = batch_size
        self.max_batch_size = max_batch_size
        self.interval = interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.checkpoint_interval = checkpoint_interval
        self.load = load
        self.busy_requests = busy_requests
        self.busy_interval = busy_interval
        self.busy_batch_size = busy_batch_size
        self.stats = ShipperStats()
        #: the error the last attempt failed with, ``None`` while things work: for health checks
        self.last_error: BaseException | None = None
        #: when (``time.monotonic()``) the shipper last had every committed record in hand: a record
        #: not yet stored was committed about then or later, so ``now - caught_up_at`` bounds how long
        #: records have waited (the metrics' shipper lag; meaningful while some are waiting)
        self.caught_up_at = time.monotonic()
        self._position: Position | None = None
        # the checkpoint saved last, and when (time.monotonic())
        self._saved: Position | None = None
        self._saved_at = 0.0
        # what the shipper awaits while its checkpoint is not saved: the next commit, a quiet interval or a drain
        self._quiet: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self._hurry = asyncio.Event()
        self._drainers = 0
        self._failing_since: int | None = None

    async def __aenter__(self) -> Shipper:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def position(self) -> Position | None:
        """Everything in the journal before this is in the store (``None`` until the task has started)."""
        return self._position

    async def start(self) -> None:
        """Start the background task (replaying what earlier runs left unshipped first)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="llmswitch-spend-shipper")

    async def stop(self, timeout: float = 5.0) -> None:
        """Ship what is committed (giving up after ``timeout`` seconds), then end the task.

        Whatever is left stays in the journal and ships on the next start.
        """
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(self._drain(task), timeout)
        except TimeoutError:
            _log.warning("spend shipper stopped with records not yet stored; they ship on the next start")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drain(self) -> None:
        """Return once every record committed to the journal before this call is in the store.

        Waits as long as the store is down: bound it with ``asyncio.timeout`` if need be.
        """
        if self._task is None:
            raise RuntimeError("the spend shipper is not running; call start() first")
        await self._drain(self._task)

    async def _drain(self, task: asyncio.Task[None]) -> None:
        target = self.journal.committed
        self._drainers += 1
        self._hurry.set()
        if self._quiet is not None:  # the shipper waits for a commit with its checkpoint not saved
            _end(self._quiet)
        try:
            # stored, and the checkpoint saved (so the segments shipped are deleted) up to the target
            while (self._saved is None or self._saved < target) and not task.done():
                await self._progress.wait()
        finally:
            self._drainers -= 1
            if not self._drainers:
                self._hurry.clear()

    # -- the task --------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            position = self._position = self._saved = await self._retrying(self.journal.resume_position)
            self._saved_at = time.monotonic()
            limit = self.batch_size
            while True:
                read = functools.partial(self.journal.read, position, limit)
                batch = await self._retrying(read)
                if batch.records:
                    await self._store(batch.records)
                self.stats.skipped_lines += batch.skipped
                if batch.end != position:
                    # a drain returns with the checkpoint saved and the shipped segments deleted
                    if self._drainers or time.monotonic() - self._saved_at >= self.checkpoint_interval:
                        await self._save(batch.end)
                    position = self._position = batch.end  # a drain waits for the save (_save wakes it)
                if len(batch.records) >= limit:  # more is waiting: behind, so take more at once
                    limit = min(2 * limit, self.max_batch_size)
                else:  # caught up with the journal
                    self.caught_up_at = time.monotonic()
                    await self._wait_for_commit(position)
                    self.caught_up_at = time.monotonic()  # caught up until this commit
                    # let a few more records arrive so the next batch is more than one, unless draining;
                    # more of them while many requests are in flight (the class docstring says why)
                    limit, wait = self.batch_size, self.interval
                    if self.load is not None and self.load() >= self.busy_requests:
                        limit, wait = self.busy_batch_size, self.busy_interval
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._hurry.wait(), wait)
        finally:
            self._progressed()  # wakes drain() so it sees the task has ended

    async def _save(self, position: Position) -> None:
        """Save the checkpoint (and delete the segments wholly shipped): a hop to the journal's thread."""
        await self._retrying(functools.partial(self.journal.acknowledge, position))
        self._saved, self._saved_at = position, time.monotonic()
        self._progressed()

    async def _wait_for_commit(self, position: Position) -> None:
        """Wait for the next commit. A checkpoint not yet saved is saved when a drain asks for it, or
        once the journal has been quiet for the rest of ``checkpoint_interval``."""
        if self._saved != position and not self._drainers:
            waiter = self.journal.next_commit(position)
            if waiter is None:
                return
            quiet = self._saved_at + self.checkpoint_interval - time.monotonic()
            timer = asyncio.get_running_loop().call_later(max(0.0, quiet), _end, waiter)
            self._quiet = waiter  # a drain ends it too
            try:
                await waiter
            finally:
                timer.cancel()
                self._quiet = None
            if self.journal.committed > position and not self._drainers:
                return  # more to ship: the checkpoint waits for its interval
        if self._saved != position:
            await self._save(position)
        await self.journal.wait_for_commit(position)

    async def _store(self, records: list[SpendRecord]) -> None:
        """Store ``records``, waiting out outages; records the store refuses on their own are set aside."""
        try:
            inserted = await self._retrying(functools.partial(self.store.insert_spend_logs, records), ValueError)
        except ValueError as exc:
            if len(records) > 1:
                for record in records:  # find the bad ones; a batch with one bad record is rare
                    await self._store([record])
                return
            await self._retrying(functools.partial(self.journal.reject, records))
            self.stats.rejected += 1
            _log.error(
                "spend record %s refused by the store, set aside in %s: %s",
                records[0].request_id,
                self.journal.directory / "rejected.journal",
                exc,
            )
            return
        self.stats.shipped += len(records)
        self.stats.inserted += inserted
        self.stats.batches += 1

    async def _retrying(self, call: Callable[[], Awaitable[T]], give_up_on: type[Exception] | None = None) -> T:
        """``await call()`` until it succeeds (or raises ``give_up_on``), backing off between attempts."""
        attempt = 0
        while True:
            try:
                result = await call()
            except Exception as exc:
                if give_up_on is not None and isinstance(exc, give_up_on):
                    raise
                attempt += 1
                self._failed(exc)
                # full jitter: replicas that lost the same database do not come back in step
                await asyncio.sleep(RNG.uniform(0, min(self.retry_max, self.retry_initial * 2 ** (attempt - 1))))
                continue
            if self._failing_since is not None:
                _log.info(
                    "spend shipping resumed after %d failed attempts",
                    self.stats.failed_attempts - self._failing_since,
                )
                self._failing_since = None
                self.last_error = None
            return result

    def _failed(self, exc: Exception) -> None:
        self.stats.failed_attempts += 1
        self.last_error = exc
        if self._failing_since is not None:
            _log.debug("spend shipping still failing: %s", exc)
            return
        self._failing_since = self.stats.failed_attempts - 1
        _log.warning(
            "spend shipping paused: %s: %s. Records stay in the journal at %s and ship when this clears; "
            "retrying with backoff",
            type(exc).__name__,
            exc,
            self.journal.directory,
            # an outage explains itself; anything else may be a bug and needs its traceback
            exc_info=not isinstance(exc, StoreConnectionError),
        )

    def _progressed(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()


def _end(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
