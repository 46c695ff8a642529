"""The server's graceful shutdown as the gateway's log tells it: on SIGTERM one JSON line when draining
starts (how many requests, streams included, are in flight) and one when it ends (drained, or cut when
the grace period ran out).

The gateway runs as a ``llmswitch serve`` process; the stream in flight comes from the fake upstream.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gateway_harness import GROUPS, MASTER_KEY, call, chat_request, free_port, gateway_config

from llmswitch.testing import FakeUpstream, Reply

LLMSWITCH = Path(sys.executable).with_name("llmswitch")


def sigterm_during_a_stream(up: FakeUpstream, tmp_path: Path, reply: Reply, grace: float) -> list[dict[str, Any]]:
    """The gateway's log records, after a SIGTERM sent once the first bytes of a streamed answer arrived."""
    config = tmp_path / "config.yaml"
    config.write_text(gateway_config(up, str(tmp_path / "keys.db")))
    port = free_port()
    log = tmp_path / "gateway.log"
    argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen([*argv, "--graceful-seconds", str(grace)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if call(port, "GET", "/health/readiness", key=None, timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        up.script(reply)
        started = threading.Event()

        def stream() -> None:
            path, body = chat_request("openai", GROUPS["anthropic"], stream=True)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.request("POST", path, json.dumps(body), {"authorization": f"Bearer {MASTER_KEY}"})
                resp = conn.getresponse()
                resp.read1()
                started.set()
                resp.read()
            except (OSError, http.client.HTTPException):
                pass  # cut by the shutdown
            finally:
                started.set()
                conn.close()

        reader = threading.Thread(target=stream)
        reader.start()
        assert started.wait(15)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def drain_lines(records: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (began,) = [r for r in records if r.get("event") == "drain_started"]
    (ended,) = [r for r in records if r.get("event") == "drain_ended"]
    assert records.index(began) < records.index(ended)
    return began, ended


def test_sigterm_logs_the_drain_start_and_that_it_drained(up: FakeUpstream, tmp_path: Path) -> None:
    reply = Reply(text="every word of this arrives " * 2, chunk_size=4, chunk_delay=0.1)
    began, ended = drain_lines(sigterm_during_a_stream(up, tmp_path, reply, grace=20))
    assert (began["level"], began["requests"], began["connections"], began["graceful_seconds"]) == ("info", 1, 1, 20)
    assert "draining 1 request(s) in flight" in began["msg"]
    assert (ended["level"], ended["outcome"]) == ("info", "drained")
    assert ended["msg"] == f"graceful shutdown: drained in {ended['seconds']:g} s"


def test_sigterm_logs_a_stream_cut_when_the_grace_period_ends(up: FakeUpstream, tmp_path: Path) -> None:
    reply = Reply(text="this story is far too long to finish " * 4, chunk_size=4, chunk_delay=0.2)
    began, ended = drain_lines(sigterm_during_a_stream(up, tmp_path, reply, grace=0.5))
    assert began["requests"] == 1
    assert (ended["level"], ended["outcome"], ended["requests"]) == ("warning", "cut", 1)
    assert ended["seconds"] >= 0.5
    assert "cut after" in ended["msg"] and "cancelling 1 request(s)" in ended["msg"]
