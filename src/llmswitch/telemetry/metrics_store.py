"""Where one process's metric values live, and how a scrape reads every worker's.

Values are floats in one Python list of slots. A series (a metric with one set of label values) gets
its slots on first use: a counter or gauge one, a histogram one per bucket plus one for the sum. On
the hot path an update is ``values[slot] += x``: no lock (one event loop writes), nothing allocated
(a list item costs about a third of a ``memoryview`` item over shared memory, measured).

With several workers (``llmswitch serve --workers N``) each process also has a file of its own in a
shared directory (``LLMSWITCH_METRICS_DIR``, made by the supervisor): :meth:`Slots.flush` writes the
values there (every second, from the metrics collector, and when the worker stops), and a ``.keys`` file
beside it names each slot (one JSON line appended per new series). Whichever worker answers a scrape
reads its own values from memory and the others' files, and adds them up, so one scrape sees all
workers. A worker holds a shared ``flock`` on its file while it lives; a file nobody holds belongs to a
worker that has exited (or was killed): its counters and histograms still count, so totals never go
back when a worker is replaced, and its gauges (in-flight requests...) no longer do. A worker killed
with SIGKILL loses what it counted since its last flush (a second at most); one that stops loses nothing.

With one process nothing touches the disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from array import array
from pathlib import Path
from typing import Any

# slots per process at most (8 bytes each in its file). Cardinality caps (metrics.py) keep a gateway far
# below it; a series past it is counted in a sink slot that nothing reads, rather than failing a request.
CAPACITY = 1 << 18
ENV_DIR = "LLMSWITCH_METRICS_DIR"

# (family, label values, width): what a slot (or, for a histogram, a run of slots) holds
SeriesKey = tuple[str, tuple[str, ...]]


class Slots:
    """One process's values. ``values[i]`` is slot ``i``; :meth:`slot` hands out slots per series."""

    __slots__ = ("_fd", "_keys", "directory", "index", "path", "values")

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory
        self.index: dict[SeriesKey, int] = {}
        self.values: list[float] = [0.0] * _SINK_WIDTH  # the sink: slots 0.._SINK_WIDTH-1, never read
        self._keys: Any = None
        self._fd: int | None = None
        self.path: str | None = None
        if directory is not None:
            os.makedirs(directory, exist_ok=True)
            # the pid and a clock reading: a pid the kernel hands out again names another file
            base = os.path.join(directory, f"{os.getpid()}-{time.time_ns()}")
            fd = os.open(base + ".db", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_SH)  # "alive" for as long as this process is
            self._fd = fd
            self.path = base + ".db"
            self._keys = open(base + ".keys", "ab", buffering=0)  # noqa: SIM115 - kept open for the process's life

    def slot(self, family: str, labels: tuple[str, ...], width: int = 1) -> int:
        """The first of ``width`` slots for this series, given out once and named in the keys file."""
        key = (family, labels)
        i = self.index.get(key)
        if i is None:
            i = len(self.values)
            if i + width > CAPACITY:
                return 0
            self.values.extend([0.0] * width)
            if self._keys is not None:
                self._keys.write(json.dumps([i, width, family, labels], separators=(",", ":")).encode() + b"\n")
            self.index[key] = i
        return i

    def run(self, family: str, series: list[tuple[str, ...]]) -> int:
        """Slots for several one-slot series of ``family``, consecutive: the first's index. Series given
        out before (one at a time) are moved to the run; their old slots are left behind, unread."""
        first = self.index.get((family, series[0]))
        if first is not None and all(self.index.get((family, labels)) == first + i for i, labels in enumerate(series)):
            return first
        if len(self.values) + len(series) > CAPACITY:
            return 0
        first = len(self.values)
        for i, labels in enumerate(series):
            old = self.index.pop((family, labels), None)
            self.values.append(self.values[old] if old is not None else 0.0)
            if old is not None:
                self.values[old] = 0.0
            self.index[(family, labels)] = first + i
            if self._keys is not None:
                self._keys.write(json.dumps([first + i, 1, family, labels], separators=(",", ":")).encode() + b"\n")
        return first

    def flush(self) -> None:
        """Write the values to this process's file, for the other workers' scrapes (no-op without one)."""
        if self._fd is not None:
            os.pwrite(self._fd, array("d", self.values).tobytes(), 0)

    def close(self) -> None:
        if self._keys is not None:
            self._keys.close()
            self._keys = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.flush()
            os.close(self._fd)  # the lock goes with it: this worker now reads as gone
            self._fd = None


# the sink's width: room for the widest histogram
_SINK_WIDTH = 18


class Snapshot:
    """One worker's series as a scrape reads them: (family, labels) -> values (one, or a histogram's run)."""

    __slots__ = ("alive", "series")

    def __init__(self, alive: bool) -> None:
        self.alive = alive
        self.series: dict[SeriesKey, list[float]] = {}


def own_snapshot(slots: Slots, widths: dict[str, int]) -> Snapshot:
    snap = Snapshot(alive=True)
    values = slots.values
    for (family, labels), i in list(slots.index.items()):
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
        values = array("d")
        values.frombytes(raw[: len(raw) - len(raw) % 8])
        for i, width, family, labels in entries:
            if i + width <= len(values):  # a series made since the worker's last flush: in the next one
                snap.series[(family, labels)] = values[i : i + width].tolist()
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
