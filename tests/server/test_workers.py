"""The supervisor of ``serve --workers N`` against stop signals that race its forks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# A supervisor of two workers whose start after the fork is slowed down (an at-fork hook in the child),
# so a SIGTERM lands while a new worker has not yet installed its own handlers. Each worker serves by
# waiting for SIGTERM; the graceful period is long, so a worker that missed the signal shows as a
# supervisor still running seconds later.
SUPERVISOR = """
import os, signal, socket, sys, time
from llmswitch.server.workers import Supervisor

def serve(sock, graceful, edge):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()

os.register_at_fork(after_in_child=lambda: time.sleep(0.5))
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
Supervisor(sock, 2, 20.0, serve=serve).run()
"""


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.parametrize("after_children", [1, 2])
def test_a_sigterm_while_a_worker_is_being_forked_stops_it_too(after_children: int, tmp_path: Path) -> None:
    log = tmp_path / "supervisor.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR], stderr=out)
    try:
        deadline = time.monotonic() + 20
        while len(children(proc.pid)) < after_children:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the supervisor forked no worker"
            time.sleep(0.005)
        forked = children(proc.pid)
        proc.terminate()  # the newest worker is still in its slowed start
        # a worker that missed the signal would keep the supervisor waiting for the graceful period (20 s)
        assert proc.wait(timeout=8) == 0
        for pid in forked:
            assert not Path(f"/proc/{pid}").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "did not stop in time" not in log.read_text()
