"""Spend journal directories: one per gateway instance, under the configured journal directory.

Each gateway instance (a worker process, or several in one process as tests run them) journals into
``w-<pid>-<token>``, and its :class:`~llmswitch.spend.Journal` holds that directory's ``lock`` file
``flock``-ed for as long as it runs. The kernel drops the lock when the process dies, however it dies,
so **a directory is live exactly while its lock is held**: the pid in the name, and the ``owner.json``
written beside it (pid, boot id, instance id, host, start time), only tell a person whose it was. A pid
cannot be trusted: in containers pids start again at 1, and a new container on the same journal volume
can run as the pid of the one that was killed.

Every gateway adopts, at start and then every few seconds in the background (never on a request's
path), each directory whose lock it can take: it ships the records left there (idempotent by request
id, so a record already stored changes nothing), keeps ``rejected.journal`` (records the store refused)
as ``rejected/<directory>.journal`` at the journal root, and removes the directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from llmswitch.spend.segments import REJECTED, segment_path

if TYPE_CHECKING:
    from llmswitch.spend import Journal

log = logging.getLogger("llmswitch.accounting")

OWNER = "owner.json"
#: where rejected records of removed directories are kept, under the journal root
REJECTED_DIR = "rejected"
#: how often a running gateway looks for directories left by gateways that died
ADOPT_EVERY_S = 5.0
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# a directory being removed after adoption: out of the ``w-*`` listing, so no one adopts it twice
_RETIRING = ".retiring-"


def own_journal_name() -> str:
    """A new instance's directory name: its pid (for a person reading the listing) and a random token."""
    return f"w-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def boot_id() -> str | None:
    """This kernel's boot id (Linux): an owner with another one ran before a reboot, or on another machine."""
    try:
        return _BOOT_ID.read_text().strip() or None
    except OSError:
        return None


async def open_own_journal(base: Path, fsync: str) -> Journal:
    """Open a journal in a new directory of this instance's under ``base``, locked, with its owner file.

    Another gateway's adoption may take a new directory in the instant between its creation and its
    lock (it is then empty, so nothing is lost): the instance tries again under a new name.
    """
    from llmswitch.spend import Journal, JournalError

    for attempt in range(3):
        directory = base / own_journal_name()
        journal = Journal(directory, fsync=fsync)  # type: ignore[arg-type]
        try:
            await journal.open()
        except JournalError:
            if attempt == 2:
                raise
            continue
        await asyncio.to_thread(_write_owner, directory)
        return journal
    raise AssertionError("unreachable")


def _write_owner(directory: Path) -> None:
    owner = {
        "pid": os.getpid(),
        "boot_id": boot_id(),
        "instance": directory.name.rsplit("-", 1)[-1],
        "host": socket.gethostname(),
        "started": time.time(),
    }
    with contextlib.suppress(OSError):  # only for people and logs: the lock is what counts
        (directory / OWNER).write_bytes(msgspec.json.encode(owner))


def _read_owner(directory: Path) -> dict[str, Any]:
    try:
        owner = msgspec.json.decode((directory / OWNER).read_bytes())
    except (OSError, msgspec.DecodeError):
        return {}
    return owner if isinstance(owner, dict) else {}


async def adopt_orphans(base: Path, store: Any, fsync: str, *, timeout: float | None = None) -> int:
    """Ship what stopped gateways left in their journals under ``base``, then remove those directories.

    A directory whose lock another journal holds (a live gateway, in this process or another) is left
    alone. ``timeout`` bounds the wait for the store per directory: a directory that cannot be shipped
    yet stays for the next round. Returns how many records were shipped.
    """
    total = 0
    for directory in await asyncio.to_thread(_candidates, base):
        shipped = await _adopt(base, directory, store, fsync, timeout)
        total += shipped or 0
    return total


async def _adopt(base: Path, directory: Path, store: Any, fsync: str, timeout: float | None) -> int | None:
    """Adopt one directory if its lock is free: the records shipped, or ``None`` if it was left as it was."""
    from llmswitch.spend import Journal, JournalError, Shipper

    journal = Journal(directory, fsync=fsync, create=False)  # type: ignore[arg-type]
    try:
        await journal.open()
    except JournalError:
        return None  # locked: its owner lives; or gone: another gateway adopted it
    # opening started a segment: an empty file per round, should this directory wait out an outage
    started = segment_path(directory, journal.committed.segment)
    retiring: Path | None = None
    try:
        owner = await asyncio.to_thread(_read_owner, directory)
        shipper = Shipper(journal, store)
        await shipper.start()
        try:
            async with asyncio.timeout(timeout):
                await shipper.drain()
        except TimeoutError:
            await shipper.stop(timeout=0)
            log.warning("spend records left in %s not shipped yet (the store is not answering)", directory.name)
            return None
        await shipper.stop()
        shipped = shipper.stats.shipped
        # still holding the lock: nobody else can be reading it while it moves out of sight
        retiring = await asyncio.to_thread(_retire, base, directory, fsync == "always")
    finally:
        await journal.close()
        if retiring is None:
            with contextlib.suppress(OSError):
                if started.stat().st_size == 0:
                    started.unlink()
    assert retiring is not None
    await asyncio.to_thread(remove_journal_dir, retiring)
    log.log(
        logging.WARNING if shipped else logging.INFO,
        "replayed %d spend records left by a stopped gateway process (%s: pid %s, %s)",
        shipped,
        directory.name,
        owner.get("pid", "unknown"),
        _boot_note(owner),
    )
    return shipped


def _boot_note(owner: dict[str, Any]) -> str:
    theirs = owner.get("boot_id")
    if theirs is None:
        return "boot unknown"
    return "this boot" if theirs == boot_id() else f"boot {theirs}"


def _candidates(base: Path) -> list[Path]:
    """Instance directories under ``base``, in name order; what an earlier adoption left half removed
    (everything in it shipped) is removed on the way."""
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    for name in names:
        if name.startswith(_RETIRING):
            remove_journal_dir(base / name)
    return [base / name for name in names if name.startswith("w-") and (base / name).is_dir()]


def _retire(base: Path, directory: Path, sync: bool) -> Path:
    """Keep ``directory``'s rejected records, then move it out of the listing; its new path."""
    keep_rejected(directory, sync=sync)
    retiring = base / f"{_RETIRING}{directory.name}"
    os.replace(directory, retiring)
    return retiring


def keep_rejected(directory: Path, *, sync: bool = False) -> Path | None:
    """Move ``directory``'s ``rejected.journal`` to ``rejected/<directory>.journal`` beside it, so that
    removing the directory does not remove the records the store refused; where it went, if anywhere."""
    source = directory / REJECTED
    if not source.exists():
        return None
    kept = directory.parent / REJECTED_DIR
    kept.mkdir(exist_ok=True)
    target = kept / f"{directory.name}.journal"
    os.replace(source, target)
    if sync:
        from llmswitch.spend.writer import sync_directory

        sync_directory(kept)
    log.warning("spend records the store refused are kept in %s", target)
    return target


def remove_journal_dir(directory: Path) -> None:
    """Remove an instance directory whose records are all stored (its rejected ones are kept first)."""
    with contextlib.suppress(OSError):
        keep_rejected(directory)
    with contextlib.suppress(OSError):
        for f in directory.iterdir():
            f.unlink()
        directory.rmdir()


class Adopter:
    """Adopts the directories of gateways that died, every ``every`` seconds, in a background task."""

    def __init__(self, base: Path, store: Any, fsync: str, *, every: float = ADOPT_EVERY_S) -> None:
        self.base = base
        self.store = store
        self.fsync = fsync
        self.every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="llmswitch-journal-adopter")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                # a store that does not answer leaves the directory for a later round
                await adopt_orphans(self.base, self.store, self.fsync, timeout=max(self.every, 10.0))
            except Exception as exc:  # the next round tries again
                log.warning("adopting the spend journals of stopped gateways failed: %s", exc)


async def close_journal(shipper: Any, journal: Any, store: Any) -> None:
    """At stop: ship what the journal holds, close it, store directly what the disk never took, and
    remove the directory when everything reached the store (nothing left for the next start to replay)."""
    from llmswitch.spend.framing import decode_line

    drained = False
    if shipper is not None:
        with contextlib.suppress(Exception):
            await shipper.drain()
            drained = shipper.last_error is None
        await shipper.stop()
    if journal is None:
        return
    directory = journal.directory
    await journal.close()
    held = journal.take_held()
    if held:
        # the disk never took them: straight to the store, or they are lost (said loudly)
        drained = False
        records = [r for r in (decode_line(line.rstrip(b"\n")) for line in held) if r is not None]
        try:
            await store.insert_spend_logs(records)
        except Exception as exc:
            log.error("%d spend records lost: neither the journal nor the store took them (%s)", len(records), exc)
        else:
            log.warning("%d spend records the journal could not write were stored directly", len(records))
    if drained:
        await asyncio.to_thread(remove_journal_dir, Path(directory))
