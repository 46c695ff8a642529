"""The bounded queue every exporter runs behind: items are offered from the request path without
waiting, and sent in batches from a worker thread; when the queue is full the item is dropped and counted.

    >>> sent = []
    >>> q = BoundedQueue("demo", sent.append, max_queue=2, batch_size=10, interval=0.01)
    >>> q.offer(1), q.offer(2), q.offer(3)  # doctest: +SKIP
    (True, True, False)

A collector that hangs holds only the worker thread (each export has its own timeout); a dead one fails
the export, which is counted and, for senders that retry, retried a bounded number of times.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("llmswitch.telemetry")

Export = Callable[[list[Any]], Any]

# warnings about drops and failures: at most one a minute per queue, a flood of them is the outage itself
_WARN_EVERY_S = 60.0


class BoundedQueue:
    """Items offered without blocking, exported in batches of ``batch_size`` by one daemon thread.

    ``export(batch)`` raising counts the batch as failed (``failed``); ``dropped`` counts items refused
    because the queue was full. Neither is ever seen by whoever offered the item.
    """

    def __init__(
        self,
        name: str,
        export: Export,
        *,
        max_queue: int = 2048,
        batch_size: int = 512,
        interval: float = 1.0,
    ) -> None:
        self.name = name
        self._export = export
        self._max = max_queue
        self._batch = batch_size
        self._interval = interval
        self._items: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
        self._flushing = 0
        self._flushed = threading.Condition()
        self._busy = False
        self.dropped = 0
        self.failed = 0
        self.sent = 0
        self._warned = 0.0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def offer(self, item: Any) -> bool:
        """Queue ``item``; False (and counted) when the queue is full or closed."""
        if self._stopping or len(self._items) >= self._max:
            self.dropped += 1
            self._warn("queue full: dropped an item")
            return False
        self._items.append(item)
        if self._thread is None or self._pid != os.getpid():
            self._start()
        if len(self._items) >= self._batch:
            self._wake.set()
        return True

    def _start(self) -> None:
        # started on first use, and again in a forked worker (threads do not survive fork)
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name=f"llmswitch-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            woken = self._wake.wait(self._interval)
            self._wake.clear()
            # woken by a full batch: full batches only (the rest waits for more, or for the interval)
            self._drain(everything=not woken or self._flushing > 0 or self._stopping)
            if self._stopping:
                return

    def _drain(self, everything: bool = True) -> None:
        while self._items and (everything or len(self._items) >= self._batch):
            batch: list[Any] = []
            while self._items and len(batch) < self._batch:
                batch.append(self._items.popleft())
            with self._flushed:
                self._busy = True
            try:
                self._export(batch)
                self.sent += len(batch)
            except Exception as exc:
                self.failed += len(batch)
                self._warn(f"export failed, {len(batch)} items lost: {type(exc).__name__}: {exc}")
            finally:
                with self._flushed:
                    self._busy = False
                    self._flushed.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what was offered so far is exported (or ``timeout``); True when it all went."""
        end = time.monotonic() + timeout
        self._flushing += 1
        try:
            self._wake.set()
            with self._flushed:
                while self._items or self._busy:
                    left = end - time.monotonic()
                    if left <= 0:
                        return False
                    self._wake.set()
                    self._flushed.wait(min(left, 0.05))
            return True
        finally:
            self._flushing -= 1

    def close(self, timeout: float = 5.0) -> None:
        """Export what is queued (within ``timeout``), then stop the thread; later offers are dropped."""
        self.flush(timeout)
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(max(0.0, min(timeout, 1.0)))

    def _warn(self, what: str) -> None:
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY_S:
            self._warned = now
            log.warning(
                "%s: %s (dropped %d, failed %d so far; the gateway's answers are not affected)",
                self.name,
                what,
                self.dropped,
                self.failed,
            )

    def stats(self) -> dict[str, int]:
        return {"queued": len(self._items), "sent": self.sent, "dropped": self.dropped, "failed": self.failed}
