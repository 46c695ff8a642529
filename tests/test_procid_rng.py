"""llmswitch's random numbers (retry jitter, trace and span ids) come from a generator of its own: they
leave the global ``random`` state alone, which an application may seed and other threads draw from, and a
forked child draws other numbers than its parent."""

from __future__ import annotations

import random
import subprocess
import sys

from llmswitch import procid
from llmswitch.router.retry import RetryPolicy, backoff
from llmswitch.telemetry.spans import SpanRecord


def test_jitter_and_ids_leave_the_global_random_state_alone() -> None:
    random.seed(1234)
    before = random.getstate()
    delays = {backoff(3, 0.5, 8.0) for _ in range(50)} | {RetryPolicy().rng() for _ in range(50)}
    spans = {SpanRecord("chat", "server", 1, 0, True).span_id for _ in range(50)}
    assert random.getstate() == before
    assert len(delays) > 90 and len(spans) == 50  # still random


_FORK = """
import os
from llmswitch import procid
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, repr([procid.RNG.getrandbits(64) for _ in range(4)]).encode())
    os._exit(0)
os.waitpid(pid, 0)
child = os.read(read, 4096).decode()
print(child)
print(repr([procid.RNG.getrandbits(64) for _ in range(4)]))
"""


def test_a_forked_child_draws_other_numbers_than_its_parent() -> None:
    out = subprocess.run([sys.executable, "-c", _FORK], capture_output=True, text=True, timeout=60, check=True)
    child, parent = out.stdout.splitlines()
    assert child != parent
    assert isinstance(procid.RNG, random.Random) and procid.RNG is not random._inst  # type: ignore[attr-defined]
