"""Journal lines held in memory while the disk refuses them (full, failing), until it takes writes again.

    held = HeldLines(max_bytes=64 << 20)
    held.add(line)            # False: over the bound, the line is dropped (and counted)
    data, count = held.peek()
    ...                       # written: held.written(count)

The journal holds a line only when writing it failed, or while earlier lines are held (so records
reach the disk in the order they were answered). It is bounded: past ``max_bytes`` new lines are
dropped and counted, and the gateway refuses new requests as soon as anything is held (see
``Accounting.admit``), so only the requests already running add to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

_log = logging.getLogger("llmswitch.spend")
LOG_EVERY_S = 10.0


class HeldLines:
    """A bounded FIFO of journal lines waiting for the disk, with its counters and a rate-limited log."""

    def __init__(self, *, max_bytes: int, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self._lines: list[bytes] = []
        self._bytes = 0
        self.dropped = 0
        self._monotonic = monotonic
        self._logged_at: float | None = None

    def __len__(self) -> int:
        return len(self._lines)

    def __bool__(self) -> bool:
        return bool(self._lines)

    def add(self, line: bytes) -> bool:
        """Hold ``line``; ``False`` (and the line dropped, counted) when the bound is reached."""
        if self._bytes + len(line) > self.max_bytes:
            self.dropped += 1
            return False
        self._lines.append(line)
        self._bytes += len(line)
        return True

    def peek(self) -> tuple[bytes, int]:
        """Every line held, as one write, and how many lines that is."""
        return b"".join(self._lines), len(self._lines)

    def written(self, count: int) -> list[bytes]:
        """The first ``count`` lines are on disk: forget them, and return them."""
        done, self._lines = self._lines[:count], self._lines[count:]
        self._bytes -= sum(len(line) for line in done)
        return done

    def take(self) -> list[bytes]:
        """Every line held, forgotten here (for a last attempt elsewhere)."""
        lines, self._lines, self._bytes = self._lines, [], 0
        return lines

    def log_failure(self, directory: object, exc: BaseException) -> None:
        """Say that the journal cannot write, at most once every ``LOG_EVERY_S`` seconds."""
        now = self._monotonic()
        if self._logged_at is not None and now - self._logged_at < LOG_EVERY_S:
            return
        self._logged_at = now
        _log.error(
            "spend journal %s cannot write (%s): %d spend records held in memory (%d dropped past the %d byte "
            "bound); new requests are refused until it can write again",
            directory,
            exc,
            len(self._lines),
            self.dropped,
            self.max_bytes,
        )

    def recovered(self) -> None:
        self._logged_at = None
