"""`llmswitch serve` as processes: several workers forked on one socket, supervised, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gateway_harness import call, free_port, gateway_config

from llmswitch.testing import FakeUpstream

LLMSWITCH = Path(sys.executable).with_name("llmswitch")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def worker_of(port: int) -> str:
    """The answering worker: request ids start with a random prefix of each process."""
    return call(port, "GET", "/health/liveliness", key=None, timeout=5).headers["x-llmswitch-request-id"][:12]


def wait_for(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_workers_answer_are_replaced_when_killed_and_stop_on_sigterm(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(gateway_config(upstream, str(tmp_path / "keys.db")))
    port = free_port()
    log = tmp_path / "serve.log"
    argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen([*argv, "--workers", "2"], stdout=out, stderr=subprocess.STDOUT)
    try:

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                return call(port, "GET", "/health/readiness", key=None, timeout=2).status == 200
            except OSError:
                return False

        wait_for(ready)
        workers = children(proc.pid)
        assert len(workers) == 2
        seen: set[str] = set()
        deadline = time.monotonic() + 30  # the second worker may still be starting
        with ThreadPoolExecutor(8) as pool:
            while len(seen) < 2 and time.monotonic() < deadline:
                # each call is a new connection: either worker may take it
                seen.update(pool.map(lambda _: worker_of(port), range(16)))
        # (two prefixes also say that each worker has its own request-id prefix, as spend ids need)
        assert len(seen) == 2, "one worker answered every request"

        os.kill(workers[0], signal.SIGKILL)  # the supervisor starts another
        wait_for(lambda: len(children(proc.pid)) == 2 and workers[0] not in children(proc.pid))
        wait_for(ready)
        replaced = children(proc.pid)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        for pid in replaced:
            assert not Path(f"/proc/{pid}").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert f"llmswitch serving on http://127.0.0.1:{port} (2 workers)" in text
    assert f"worker {workers[0]} exited with -9: starting another" in text
    assert "Traceback" not in text


BAD_DATABASE = """\
model_list:
  - model_name: m
    litellm_params:
      model: openai/gpt-4o-mini
      api_key: sk-x
general_settings:
  master_key: sk-master-x
  database_url: postgresql://postgres@127.0.0.1:1/nothing
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_gateway_that_cannot_start_exits_with_an_error(tmp_path: Path, workers: int) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(BAD_DATABASE)
    argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(free_port())]
    done = subprocess.run([*argv, "--workers", str(workers)], capture_output=True, text=True, timeout=60)
    # found before any worker is started or "serving on" is said: one line, no worker restarted
    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.splitlines()
    assert "not starting: cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:1/nothing" in line
    assert "serving on" not in done.stderr


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [str(LLMSWITCH), "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "address already in use" in done.stderr.lower()
