"""Where one process's metric values live, and how a scrape reads every worker's.

Values are doubles in a fixed array of slots. A series (a metric with one set of label values) gets
its slots on first use: a counter or gauge one, a histogram one per bucket plus one for the sum. On
the hot path an update is ``values[slot] += x`` on a ``memoryview``: no lock (one event loop writes),
nothing allocated.

With several workers (``llmswitch serve --workers N``) the array is a file of its own per process in a
shared directory (``LLMSWITCH_METRICS_DIR``, made by the supervisor), mapped into memory, and beside
it a ``.keys`` file naming each slot (one JSON line appended per new series, before the slot is
written). Whichever worker answers a scrape reads every worker's files and adds them up, so one scrape
sees all workers at once. A worker holds a shared ``flock`` on its file while it lives; a file nobody
holds belongs to a worker that has exited (or was killed): its counters and histograms still count,
so totals never go back when a worker is replaced, and its gauges (in-flight requests...) no longer do.
Everything counted up to the moment a worker dies is in its file: the kernel keeps the mapped pages.

With one process the array is anonymous memory and nothing touches the disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
import time
from pathlib import Path
from typing import Any

# 2**16 doubles: 512 KiB of address space per process (a sparse file: pages untouched cost nothing).
# Cardinality caps (metrics.py) keep a gateway far below it; a series past it is counted in slot 0,
# which nothing reads, rather than failing a request.
CAPACITY = 1 << 16
ENV_DIR = "LLMSWITCH_METRICS_DIR"

# (family, label values, width): what a slot (or, for a histogram, a run of slots) holds
SeriesKey = tuple[str, tuple[str, ...]]


class Slots:
    """One process's values. ``values[i]`` is slot ``i``; :meth:`slot` hands out slots per series."""

    __slots__ = ("_fd", "_keys", "_map", "_next", "directory", "index", "path", "values")

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory
        self.index: dict[SeriesKey, int] = {}
        self._next = 1  # slot 0: the sink for series past CAPACITY
        self._keys: Any = None
        self._fd: int | None = None
        self.path: str | None = None
        size = CAPACITY * 8
        if directory is None:
            self._map = mmap.mmap(-1, size)
        else:
            os.makedirs(directory, exist_ok=True)
            # the pid and a clock reading: a pid the kernel hands out again names another file
            base = os.path.join(directory, f"{os.getpid()}-{time.time_ns()}")
            fd = os.open(base + ".db", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            os.ftruncate(fd, size)
            fcntl.flock(fd, fcntl.LOCK_SH)  # "alive" for as long as this process is
            self._fd = fd
            self.path = base + ".db"
            self._map = mmap.mmap(fd, size)
            self._keys = open(base + ".keys", "ab", buffering=0)  # noqa: SIM115 - kept open for the process's life
        self.values = memoryview(self._map).cast("d")

    def slot(self, family: str, labels: tuple[str, ...], width: int = 1) -> int:
        """The first of ``width`` slots for this series, given out once and named in the keys file."""
        key = (family, labels)
        i = self.index.get(key)
        if i is None:
            i = self._next
            if i + width > CAPACITY:
                return 0 if width == 1 else self._sink(width)
            self._next = i + width
            if self._keys is not None:
                # written before any value: a reader never meets a slot it cannot name
                self._keys.write(json.dumps([i, width, family, labels], separators=(",", ":")).encode() + b"\n")
            self.index[key] = i
        return i

    def _sink(self, width: int) -> int:
        # past CAPACITY: a histogram's run of slots at the very end, shared by every such series, never read
        return CAPACITY - width

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.values.release()
            self._map.close()
        if self._keys is not None:
            self._keys.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Snapshot:
    """One worker's series as a scrape reads them: (family, labels) -> values (one, or a histogram's run)."""

    __slots__ = ("alive", "series")

    def __init__(self, alive: bool) -> None:
        self.alive = alive
        self.series: dict[SeriesKey, list[float]] = {}


def own_snapshot(slots: Slots, widths: dict[str, int]) -> Snapshot:
    snap = Snapshot(alive=True)
    values = slots.values
    for (family, labels), i in slots.index.items():
        width = widths.get(family, 1)
        snap.series[(family, labels)] = list(values[i : i + width])
    return snap


def other_snapshots(directory: str, own_path: str | None) -> list[Snapshot]:
    """Every other worker's series in ``directory``: live ones and those of workers gone."""
    out: list[Snapshot] = []
    for db in sorted(Path(directory).glob("*.db")):
        if str(db) == own_path:
            continue
        snap = _read(db)
        if snap is not None:
            out.append(snap)
    return out


def _read(db: Path) -> Snapshot | None:
    try:
        fd = os.open(db, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            alive = True
        else:
            alive = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        try:
            keys = db.with_suffix(".keys").read_bytes()
        except OSError:
            return None
        snap = Snapshot(alive)
        entries = []
        end = 0
        for line in keys.split(b"\n"):
            try:
                i, width, family, labels = json.loads(line)
            except ValueError:
                continue  # the last line may be half written
            entries.append((i, width, family, tuple(labels)))
            end = max(end, i + width)
        raw = os.pread(fd, end * 8, 0)
        values = memoryview(raw).cast("d") if len(raw) == end * 8 else memoryview(b"").cast("d")
        if len(values) < end:
            return snap
        for i, width, family, labels in entries:
            snap.series[(family, labels)] = list(values[i : i + width])
        return snap
    finally:
        os.close(fd)


def remove_directory(directory: str) -> None:
    """The supervisor's cleanup: the workers' files (nothing else), then the directory if that empties it."""
    for pattern in ("*.db", "*.keys"):
        for path in Path(directory).glob(pattern):
            with contextlib.suppress(OSError):
                path.unlink()
    with contextlib.suppress(OSError):
        os.rmdir(directory)
