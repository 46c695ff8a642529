"""Spend journal directories: one per gateway instance, under the configured journal directory.

Each gateway instance (a worker process, or several in one process as tests run them) journals into
``w-<pid>-<token>``. At start, what processes that died (``kill -9``) left behind is shipped to the
store and removed; a directory whose process still runs, or whose journal is locked, is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger("llmswitch.accounting")


def own_journal_name() -> str:
    """A new instance's directory name: its pid (for the liveness check) and a random token."""
    return f"w-{os.getpid()}-{uuid.uuid4().hex[:8]}"


async def adopt_orphans(base: Path, store: Any, fsync: str) -> None:
    """Ship what gateway processes that died (``kill -9``) left in their journals, then drop them."""
    from llmswitch.spend import Journal, JournalLockedError, Shipper

    for d in await asyncio.to_thread(_orphans, base):
        journal = Journal(d, fsync=fsync)  # type: ignore[arg-type]
        try:
            await journal.open()
        except JournalLockedError:
            continue  # a live process owns it
        try:
            async with Shipper(journal, store) as shipper:
                await shipper.drain()
                shipped = shipper.stats.shipped
        finally:
            await journal.close()
        await asyncio.to_thread(remove_journal_dir, d)
        log.warning("replayed %d spend records left by a stopped gateway process (%s)", shipped, d.name)


def _orphans(base: Path) -> list[Path]:
    """The instance directories under ``base`` whose process is gone, in name order."""
    return [d for d in sorted(base.glob("w-*")) if d.is_dir() and not _owner_alive(d.name)]


def remove_journal_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        for f in directory.iterdir():
            f.unlink()
        directory.rmdir()


def _owner_alive(name: str) -> bool:
    """Whether the process that made journal directory ``w-<pid>-<token>`` still runs (on this host):
    a live process's journal is never taken over, even in the instant before it locks it."""
    try:
        pid = int(name.split("-")[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False  # an earlier instance in this process: its lock tells (JournalLockedError)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
