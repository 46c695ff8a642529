"""The spend journal: every answered request's record on local disk before its response finishes.

    >>> async def main() -> None:
    ...     async with Journal("/var/lib/llmswitch/spend") as journal:
    ...         await journal.append(SpendRecord(request_id="req-1", key_hash=key_hash, cost=0.002))
    ...         # returned: the record is on disk and survives kill -9 (and, with fsync="always", power loss)

**Group commit.** An fsync takes from a fraction of a millisecond to several, so one per record
would cap a gateway at a few thousand requests per second, and each fsync must not block the event
loop. Appends therefore queue their line and wait; one flusher task writes every queued line with a
single ``write`` and one ``fdatasync`` in the journal's writer thread, then wakes them all. Whatever
arrives while that runs goes in the next commit, so batches grow by themselves with load while an
append on an idle gateway pays for one sync only (PostgreSQL's WAL commits the same way).

**fsync modes.** ``"always"`` (the default) syncs each commit to the disk: an answered request's
record survives a power cut or kernel crash. ``"os"`` only hands the bytes to the operating system
(``write`` returns once they are in its page cache): they survive the gateway process being killed
(``kill -9``, OOM killer, a crash), which is what a process restart needs, but a power cut or kernel
crash can lose the last few seconds of records. Choose it when the disk's sync is slow (network
volumes) and the machine is not the weak point; in this mode an append with no commit in flight
writes its line directly from the event loop (a page-cache write takes microseconds, less than the
thread hop). Either way, appends never wait on the database.

One process writes a directory (it takes an exclusive ``flock``); give each gateway process its own.
The directory's layout and line format are described in :mod:`llmswitch.spend.segments` and
:mod:`llmswitch.spend.framing`. POSIX only (``flock``, ``fdatasync``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from llmswitch.errors import ConfigError
from llmswitch.spend.errors import JournalError, JournalLockedError
from llmswitch.spend.framing import encode_line
from llmswitch.spend.held import HeldLines
from llmswitch.spend.recent import RecentLines
from llmswitch.spend.segments import (
    Position,
    ReadResult,
    append_rejected,
    delete_segments_before,
    list_segments,
    read_records,
    resume_position,
    write_checkpoint,
)
from llmswitch.spend.writer import SegmentWriter, sync_directory
from llmswitch.store.records import SpendRecord

T = TypeVar("T")
FsyncMode = Literal["always", "os"]
FSYNC_MODES: tuple[FsyncMode, ...] = ("always", "os")

_log = logging.getLogger("llmswitch.spend")


@dataclass(slots=True)
class JournalStats:
    """Counters since the journal was opened; read them, do not set them."""

    appends: int = 0
    commits: int = 0
    bytes_written: int = 0
    write_errors: int = 0
    #: records held in memory because the disk refused them (see :attr:`Journal.failing`), right now
    held: int = 0
    #: records dropped because the memory bound for held records was reached
    dropped: int = 0


class Journal:
    """An append-only journal of spend records in ``directory``, durable when ``append`` returns.

    ``segment_bytes`` is the size past which writing moves on to a new segment file; a segment is
    deleted once a :class:`~llmswitch.spend.shipper.Shipper` has stored all of its records. With
    ``create=False`` a missing directory is a :class:`JournalError` rather than made.

    When the disk refuses a write (full, failing), the records are held in memory (at most
    ``max_held_bytes``; past it they are dropped and counted in ``stats.dropped``) and :attr:`failing`
    is true; every ``retry_s`` seconds the journal tries to write them, and once it can, it goes on as
    before. The gateway refuses new requests meanwhile. It is logged once every few seconds.

    The last ``recent_lines`` lines written are also kept in memory until read, so a reader keeping up
    takes them from there instead of reading the segment back (see :mod:`llmswitch.spend.recent`);
    0 makes every read go to the disk.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: FsyncMode = "always",
        segment_bytes: int = 16 << 20,
        retry_s: float = 1.0,
        max_held_bytes: int = 64 << 20,
        recent_lines: int = 4096,
        create: bool = True,
    ) -> None:
        if fsync not in FSYNC_MODES:
            raise ConfigError(f"spend journal fsync must be one of {', '.join(FSYNC_MODES)}; got {fsync!r}")
        if segment_bytes <= 0:
            raise ConfigError(f"spend journal segment_bytes must be positive; got {segment_bytes}")
        if recent_lines < 0:
            raise ConfigError(f"spend journal recent_lines must be >= 0; got {recent_lines}")
        self.directory = Path(directory)
        self.fsync: FsyncMode = fsync
        self.segment_bytes = segment_bytes
        # False to take over a directory another process left (see server.journals): one that is gone
        # meanwhile (adopted and removed by another gateway) must not be made again
        self._create = create
        self.stats = JournalStats()
        self._writer: SegmentWriter | None = None
        self._lock_fd: int | None = None
        # appends' writes and syncs; and, apart so it never queues behind them, reads and deletions
        self._write_thread: ThreadPoolExecutor | None = None
        self._side_thread: ThreadPoolExecutor | None = None
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._committed = Position(0, 0)
        # segments below this number are deleted already (acknowledged): not listed again until a
        # later acknowledgement moves past it
        self._deleted_below = 0
        # the lines this run wrote that the reader has not taken yet: a reader keeping up reads these
        # instead of the segment file (see llmswitch.spend.recent)
        self._recent = RecentLines(recent_lines)
        # readers waiting for the next commit (the shipper): woken, and forgotten, by each commit
        self._readers: list[asyncio.Future[None]] = []
        self._closing = False
        #: true while records are held in memory because the disk refused them
        self.failing = False
        self._held = HeldLines(max_bytes=max_held_bytes)
        self._retry_s = retry_s
        self._retrier: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Journal:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        """Take the directory (creating it) and start a new segment; :class:`JournalLockedError` if taken."""
        if self._writer is not None:
            return
        write_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmswitch-journal-write")
        try:
            lock_fd, writer = await asyncio.get_running_loop().run_in_executor(write_thread, self._open)
        except BaseException:
            write_thread.shutdown(wait=False)
            raise
        self._lock_fd, self._writer, self._write_thread = lock_fd, writer, write_thread
        self._recent.clear()
        self._side_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmswitch-journal-io")
        self._committed = writer.position

    def _open(self) -> tuple[int, SegmentWriter]:
        try:
            if not self.directory.is_dir():
                if not self._create:
                    raise FileNotFoundError(f"no directory {self.directory}")
                self.directory.mkdir(parents=True)
                if self.fsync == "always":  # else a power cut could take the new directory, and all in it
                    sync_directory(self.directory.parent)
            lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise self._error(f"cannot open the spend journal in {self.directory}", exc) from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise JournalLockedError(
                f"the spend journal in {self.directory} is in use by another process (or another Journal in "
                "this one); give each gateway process a directory of its own",
                directory=str(self.directory),
            ) from None
        try:
            existing = list_segments(self.directory)
            # never append to an old segment: it may end in a line torn by the crash that ended its run
            first = existing[-1] + 1 if existing else 1
            writer = SegmentWriter(
                self.directory, first=first, segment_bytes=self.segment_bytes, sync=self.fsync == "always"
            )
        except OSError as exc:
            os.close(lock_fd)
            raise self._error(f"cannot start a spend journal segment in {self.directory}", exc) from exc
        except BaseException:
            os.close(lock_fd)
            raise
        return lock_fd, writer

    async def close(self) -> None:
        """Finish the appends already waiting, then release the directory; safe to call twice."""
        if self._writer is None or self._closing:
            return
        self._closing = True
        try:
            if self._flusher is not None:
                await self._flusher
            if self._retrier is not None:
                self._retrier.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._retrier
                self._retrier = None
            if self._held:
                await self._write_held()  # a last attempt; what still fails stays in take_held()
            writer, lock_fd = self._writer, self._lock_fd
            await asyncio.get_running_loop().run_in_executor(self._write_thread, _release, writer, lock_fd)
        finally:
            for thread in (self._write_thread, self._side_thread):
                if thread is not None:
                    thread.shutdown(wait=False)
            self._writer = self._lock_fd = self._write_thread = self._side_thread = None
            self._closing = False
            self._wake_readers()

    # -- appending -------------------------------------------------------------------------------

    async def append(self, record: SpendRecord) -> None:
        """Write ``record`` to the journal; return once it is durable (see the fsync modes above).

        ``ValueError`` if a field has the wrong type, :class:`JournalError` if the journal is not open.
        A record the disk refuses (full, failing) is held in memory until it can be written (see
        :attr:`failing`). Should the awaiting task be cancelled, the record is written all the same.
        """
        if self._writer is None or self._closing:
            raise self._error(f"the spend journal in {self.directory} is not open")
        await self.append_encoded(encode_line(record))

    def append_nowait(self, line: bytes) -> bool:
        """Write ``line`` now if the fsync mode makes that enough: ``True`` once it is as durable as
        :meth:`append` promises; ``False`` and nothing written when it needs a commit awaited (mode
        ``"always"``, or a commit in flight that it must not overtake): then ``await append_encoded(line)``.

        ``line`` is one from :func:`~llmswitch.spend.framing.encode_line` or
        :func:`~llmswitch.spend.framing.encode_spend_line`. The gateway calls this for every answered
        request, so that in mode ``"os"`` a record costs no coroutine, no future and no thread hop.
        """
        if self._writer is None or self._closing:
            raise self._error(f"the spend journal in {self.directory} is not open")
        if self.failing:
            self._hold([line], None)  # after the records held already, in order
            return True
        flusher = self._flusher
        if self.fsync == "os" and not self._queue and (flusher is None or flusher.done()):
            # mode "os" only hands the bytes to the OS page cache: a write() of a few hundred bytes
            # that returns in microseconds, done here rather than through the writer thread, whose
            # hop and wake-up would cost more than the write
            self._append_inline(line)
            return True
        return False

    async def append_encoded(self, line: bytes) -> None:
        """:meth:`append` for a line already encoded (see :meth:`append_nowait`)."""
        if self.append_nowait(line):
            return  # written, or held while the disk refuses writes
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.append((line, done))
        if self._flusher is None or self._flusher.done():
            # started as a task, it runs after the appends already scheduled: they join this commit
            self._flusher = loop.create_task(self._flush())
        await done

    def _append_inline(self, line: bytes) -> None:
        writer = self._writer
        assert writer is not None
        before = self._committed  # exact: no other write is in flight (see append_nowait)
        try:
            position = writer.append(line)
        except Exception as exc:
            self.stats.write_errors += 1
            self._hold([line], exc)
            return
        self._committed = position
        self._recent.add_written(before, position, [line])
        self.stats.appends += 1
        self.stats.commits += 1
        self.stats.bytes_written += len(line)
        self._wake_readers()

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue, []
            lines = [line for line, _ in batch]
            data = b"".join(lines)
            writer = self._writer
            assert writer is not None  # close() waits for this task before dropping the writer
            try:
                before, position = await loop.run_in_executor(self._write_thread, _write, writer, data)
            except asyncio.CancelledError:
                # only at loop teardown: nobody must wait for a commit that will not be reported
                for _, done in batch + self._queue:
                    done.cancel()
                self._queue = []
                raise
            except Exception as exc:
                self.stats.write_errors += 1
                self._hold(lines, exc)
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)  # held: written when the disk takes writes again
                continue
            self._committed = position
            self._recent.add_written(before, position, lines)
            self.stats.appends += len(batch)
            self.stats.commits += 1
            self.stats.bytes_written += len(data)
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
            self._wake_readers()

    # -- holding records the disk refused ---------------------------------------------------------

    def _hold(self, lines: list[bytes], exc: BaseException | None) -> None:
        held = self._held
        for line in lines:
            if not held.add(line):
                self.stats.dropped += 1
                _log.error("spend journal %s: a spend record dropped: %d held already", self.directory, len(held))
        self.stats.held = len(held)
        if exc is not None:
            held.log_failure(self.directory, exc)
        if not self.failing:
            self.failing = True
            self._retrier = asyncio.get_running_loop().create_task(self._retry())

    async def _retry(self) -> None:
        while self._held:
            await asyncio.sleep(self._retry_s)
            await self._write_held()

    async def _write_held(self) -> None:
        """Try to write every record held; on success the journal goes on as before."""
        data, count = self._held.peek()
        writer = self._writer
        if writer is None or not count:
            return
        try:
            before, position = await asyncio.get_running_loop().run_in_executor(
                self._write_thread, _write, writer, data
            )
        except Exception as exc:
            self.stats.write_errors += 1
            self._held.log_failure(self.directory, exc)
            return
        lines = self._held.written(count)
        self._committed = position
        self._recent.add_written(before, position, lines)
        self.stats.appends += count
        self.stats.commits += 1
        self.stats.bytes_written += len(data)
        self.stats.held = len(self._held)
        if not self._held:
            self.failing = False
            self._held.recovered()
            _log.warning("spend journal %s writes again: %d held spend records written", self.directory, count)
        self._wake_readers()

    def take_held(self) -> list[bytes]:
        """The lines still held (the journal closed before the disk took them), forgotten here, so that
        they can be stored another way (see ``Accounting.stop``)."""
        lines = self._held.take()
        self.stats.held = 0
        return lines

    def _error(self, message: str, cause: BaseException | None = None) -> JournalError:
        error = JournalError(f"{message}: {cause}" if cause else message, directory=str(self.directory))
        error.__cause__ = cause
        return error

    def _wake_readers(self) -> None:
        readers = self._readers
        if readers:
            self._readers = []
            for waiter in readers:
                if not waiter.done():
                    waiter.set_result(None)

    # -- reading (for the shipper) ---------------------------------------------------------------

    @property
    def committed(self) -> Position:
        """The end of what is durable: every record before it has been appended and has returned."""
        return self._committed

    async def wait_for_commit(self, after: Position) -> None:
        """Return once something is committed past ``after`` (at once if it already is)."""
        while (waiter := self.next_commit(after)) is not None:
            await waiter

    def next_commit(self, after: Position) -> asyncio.Future[None] | None:
        """A future done at the next commit (or close), if nothing is committed past ``after`` yet; else
        ``None``. Whoever holds it may also end it themselves (a timeout, a wake-up): nothing else waits on it."""
        if self._committed > after:
            return None
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._readers.append(waiter)
        return waiter

    async def read(self, after: Position, limit: int = 500) -> ReadResult:
        """Up to ``limit`` committed records from ``after`` on, and the position after them."""
        recent = self._recent.take(after, limit)
        if recent is not None:  # what this run wrote lately, the usual case: no thread, no file
            return recent
        # snapshot on the loop, before the thread runs: it must not read a write still in progress
        return await self._side(read_records, self.directory, after, limit, self._committed)

    async def resume_position(self) -> Position:
        """Where shipping resumes after a start: the saved checkpoint if believable, else the oldest record."""
        return await self._side(resume_position, self.directory)

    async def acknowledge(self, upto: Position) -> None:
        """Everything before ``upto`` is stored: save that, and delete the segments it covers entirely."""
        if upto > self._committed:
            raise ValueError(f"cannot acknowledge {upto}, past the committed end {self._committed}")
        await self._side(_acknowledge, self.directory, upto, upto.segment > self._deleted_below)
        self._deleted_below = max(self._deleted_below, upto.segment)

    async def reject(self, records: list[SpendRecord]) -> None:
        """Set aside records the database refused for good, in ``rejected.journal`` beside the segments."""
        lines = b"".join(encode_line(record) for record in records)
        await self._side(append_rejected, self.directory, lines, sync=self.fsync == "always")

    async def _side(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        thread = self._side_thread
        if thread is None:
            raise self._error(f"the spend journal in {self.directory} is not open")
        return await asyncio.get_running_loop().run_in_executor(thread, functools.partial(fn, *args, **kwargs))


def _acknowledge(directory: Path, upto: Position, delete: bool) -> None:
    write_checkpoint(directory, upto)
    if not delete:  # nothing below upto.segment is left since the last acknowledgement
        return
    for index in delete_segments_before(directory, upto.segment):
        _log.debug("spend journal %s: deleted shipped segment %d", directory, index)


def _write(writer: SegmentWriter, data: bytes) -> tuple[Position, Position]:
    """Append ``data``; the positions just before and just after it (for :class:`RecentLines`)."""
    before = writer.position
    return before, writer.append(data)


def _release(writer: SegmentWriter, lock_fd: int | None) -> None:
    writer.close()
    if lock_fd is not None:
        os.close(lock_fd)  # closing the descriptor releases the flock
