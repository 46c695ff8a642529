"""A spend journal that cannot write (a full disk) makes the gateway fail closed: the request in flight keeps
its record in memory (written when the disk has room again), new requests get a 503 in the caller's dialect
before any upstream call, the journal directory does not fill with new files, and the log says so, once.

``llmswitch serve`` runs as a child process whose file size limit the test lowers while it runs (RLIMIT_FSIZE:
writes past it fail, as on a full disk); its output goes to a pipe, which no such limit applies to. The store is
PostgreSQL, so the journal is the only file the gateway writes.
"""

from __future__ import annotations

import resource
import subprocess
import threading
from pathlib import Path
from typing import Any

from gateway_harness import chat_request, dialect_error, free_port, gateway_config
from multi_harness import LLMSWITCH, GatewayProcess, poll, spend_logs

from llmswitch.testing import FakeUpstream, Reply


class PipedGateway(GatewayProcess):
    """``llmswitch serve`` with its output read from a pipe (no file, so no file size limit applies to it)."""

    def _spawn(self) -> None:
        self.port = free_port()
        self._out: list[str] = []
        self._log_start = 0
        argv = [str(LLMSWITCH), "serve", "--config", str(self.config), "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._out.append(line.decode(errors="replace"))

    def output(self) -> str:
        return "".join(self._out)

    def stop(self) -> None:
        super().stop()
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def file_size_limit(self, limit: int) -> None:
        _, hard = resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (limit, hard))


def journal_files(journal: Path) -> list[Path]:
    return sorted(p for p in journal.rglob("*") if p.is_file())


def test_a_full_disk_fails_closed_keeps_the_record_in_flight_and_churns_no_files(
    up: FakeUpstream, postgres_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(gateway_config(up, postgres_url, num_retries=0))
    journal = tmp_path / "journal"
    gw = PipedGateway(config, tmp_path / "unused.log", {"LLMSWITCH_JOURNAL_DIR": str(journal)}).wait_ready()
    try:
        key = gw.new_key(key_alias="disk-full")
        path, body = chat_request("openai", "m-openai")
        for _ in range(3):
            assert gw.call("POST", path, body, key=key).status == 200
        poll(lambda: len(spend_logs(gw.port, key)) == 3, timeout=5, what="3 spend logs")
        # and the shipper has saved how far it got (it does so just after the database took the batch)
        poll(lambda: any(journal.rglob("shipped.json")), timeout=5, what="the shipper's checkpoint")
        before = journal_files(journal)
        sent = len(up.requests)

        gw.file_size_limit(0)  # the disk is full
        up.script(Reply(usage=(1000, 100)))
        in_flight = gw.call("POST", path, body, key=key)
        assert in_flight.status == 200, in_flight.body  # answered: its record is held in memory
        held_id = in_flight.headers["x-llmswitch-request-id"]
        refused: list[Any] = [gw.call("POST", path, body, key=key) for _ in range(30)]
        for face in ("anthropic", "gemini"):
            p, b = chat_request(face, "m-openai")
            refused.append((face, gw.call("POST", p, b, key=key)))
        for item in refused:
            face, r = item if isinstance(item, tuple) else ("openai", item)
            assert r.status == 503, r.body
            _, message = dialect_error(face, r)
            assert "cannot record spend" in message and "journal" not in r.body.decode()
        assert len(up.requests) == sent + 1  # the refused requests never reached the upstream
        assert journal_files(journal) == before  # no new segment (nor any other file) per failure
        poll(lambda: "cannot write" in gw.output(), timeout=5, what="the journal's failure logged")
        out = gw.output()
        assert out.count("cannot write") == 1, out[-3000:]  # said once, not once per request
        counters = gw.call("GET", "/health").json()["spend_journal"]
        assert counters["failing"] is True and counters["held"] == 1 and counters["write_errors"] >= 1

        gw.file_size_limit(resource.RLIM_INFINITY)  # room again: the held record is written, requests go on
        poll(lambda: gw.call("POST", path, body, key=key).status == 200, timeout=10, what="requests admitted again")
        rows = poll(
            lambda: (rows := spend_logs(gw.port, key)) and len(rows) == 5 and rows,
            timeout=10,
            what="five spend records: three before, the one held, the one after",
        )
        assert held_id in {r["request_id"] for r in rows}
        poll(lambda: "writes again" in gw.output(), timeout=5, what="the journal's recovery logged")
        counters = gw.call("GET", "/health").json()["spend_journal"]
        assert counters["failing"] is False and counters["held"] == 0 and counters["dropped"] == 0
    finally:
        gw.stop()


def test_records_held_at_shutdown_are_stored_directly(up: FakeUpstream, postgres_url: str, tmp_path: Path) -> None:
    """The disk never recovers before the gateway stops: what it held reaches the database all the same."""
    config = tmp_path / "config.yaml"
    config.write_text(gateway_config(up, postgres_url, num_retries=0))
    journal = tmp_path / "journal"
    gw = PipedGateway(config, tmp_path / "unused.log", {"LLMSWITCH_JOURNAL_DIR": str(journal)}).wait_ready()
    try:
        key = gw.new_key(key_alias="disk-full-stop")
        path, body = chat_request("openai", "m-openai")
        gw.file_size_limit(0)
        answered = gw.call("POST", path, body, key=key)
        assert answered.status == 200, answered.body
        held_id = answered.headers["x-llmswitch-request-id"]
        assert gw.call("POST", path, body, key=key).status == 503
    finally:
        gw.stop()
    poll(lambda: "stored directly" in gw.output(), timeout=5, what="the held records stored directly")
    again = PipedGateway(config, tmp_path / "unused.log", {"LLMSWITCH_JOURNAL_DIR": str(tmp_path / "j2")})
    try:
        again.wait_ready()
        rows = spend_logs(again.port, key)
        assert [r["request_id"] for r in rows] == [held_id]
        assert rows[0]["spend"] > 0
    finally:
        again.stop()
