"""The bounded queue every exporter runs behind: a full queue drops and counts, a failing export counts,
nothing reaches whoever offered the item."""

from __future__ import annotations

import threading
from typing import Any

from llmswitch.telemetry.callbacks_queue import BoundedQueue


def test_items_are_exported_in_batches() -> None:
    got: list[list[int]] = []
    q = BoundedQueue("t", got.append, max_queue=100, batch_size=3, interval=0.01)
    for i in range(7):
        assert q.offer(i)
    assert q.flush(5)
    assert [x for batch in got for x in batch] == list(range(7))
    assert max(len(b) for b in got) <= 3
    assert q.stats() == {"queued": 0, "sent": 7, "dropped": 0, "failed": 0}
    q.close()


def test_a_full_queue_drops_and_counts_while_the_export_hangs() -> None:
    release = threading.Event()
    started = threading.Event()

    def hang(batch: list[Any]) -> None:
        started.set()
        release.wait(10)

    q = BoundedQueue("t", hang, max_queue=2, batch_size=1, interval=0.01)
    assert q.offer("a")
    assert started.wait(5)  # the worker holds "a" in its export
    assert [q.offer(x) for x in "bcde"] == [True, True, False, False]
    assert q.dropped == 2
    release.set()
    assert q.flush(5)
    assert q.sent == 3
    q.close()


def test_a_failing_export_counts_its_items_and_goes_on() -> None:
    calls = []

    def fail(batch: list[Any]) -> None:
        calls.append(batch)
        raise ConnectionError("collector down")

    q = BoundedQueue("t", fail, max_queue=10, batch_size=5, interval=0.01)
    for i in range(3):
        q.offer(i)
    assert q.flush(5)
    assert q.failed == 3 and q.sent == 0
    q.close()
    assert not q.offer("late") and q.dropped == 1
