"""`llmswitch serve` as a process: one JSON log line per request and no secret anywhere in its output, a
graceful SIGTERM, and refusing to start on a bad config with the file and line of the problem.

The gateway runs as a subprocess of the venv's ``llmswitch`` command; its upstream is the fake upstream
running in this test process.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import (
    GROUPS,
    MASTER_KEY,
    UPSTREAM_KEYS,
    Response,
    call,
    chat_request,
    free_port,
    gateway_config,
)

from llmswitch.testing import FakeUpstream, Reply

LLMSWITCH = Path(sys.executable).with_name("llmswitch")
BENCH_CONFIG = Path(__file__).resolve().parents[3] / "shared" / "bench" / "config.yaml"
GRACE = 5.0


class GatewayProcess:
    """``llmswitch serve --config FILE --port P`` with stdout and stderr captured to a file."""

    def __init__(self, config: Path, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.log = log
        with log.open("wb") as out:  # the child keeps its own descriptor
            argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port)]
            self.proc = subprocess.Popen(
                [*argv, *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"the gateway exited early:\n{self.output()}"
            try:
                if call(self.port, "GET", "/health/readiness", key=None, timeout=2).status == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the gateway was not ready in {timeout} s:\n{self.output()}"
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.output().splitlines() if line.strip()]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=GRACE + 10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def write_config(directory: Path, up: FakeUpstream) -> Path:
    path = directory / "config.yaml"
    path.write_text(gateway_config(up, str(directory / "keys.db")))
    return path


# ---------------------------------------------------------------- the access log


@dataclass
class Logged:
    gateway: GatewayProcess
    secrets: list[str]
    requests: dict[str, tuple[str, str, int, str | None]]  # request id -> method, path, status, model


@pytest.fixture(scope="module")
def logged(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    """A gateway process that served a set of requests, each with its own x-request-id, and then stopped."""
    d = tmp_path_factory.mktemp("logs")
    gw = GatewayProcess(write_config(d, upstream), d / "gateway.log")
    try:
        gw.wait_ready()
        made = call(gw.port, "POST", "/key/generate", {"models": list(GROUPS.values()), "key_alias": "logged"})
        assert made.status == 200
        vk = made.json()["key"]
        later = call(gw.port, "POST", "/key/generate", {"key_alias": "deleted-later"}).json()["key"]
        requests: dict[str, tuple[str, str, int, str | None]] = {}

        def do(rid: str, method: str, path: str, body: Any, status: int, model: str | None, **kw: Any) -> Response:
            r = call(gw.port, method, path, body, headers={"x-request-id": rid, **kw.pop("headers", {})}, **kw)
            assert r.status == status, r.body
            assert r.headers["x-request-id"] == rid
            requests[rid] = (method, path.split("?")[0], status, model)
            return r

        do("r-openai", "POST", *chat_request("openai", GROUPS["openai"]), 200, "m-openai", key=vk)
        path, body = chat_request("anthropic", GROUPS["anthropic"])
        do("r-anthropic", "POST", path, body, 200, "m-anthropic", key=None, headers={"x-api-key": vk})
        path, body = chat_request("gemini", GROUPS["gemini"])
        do("r-gemini-query", "POST", f"{path}?key={vk}", body, 200, "m-gemini", key=None)
        path, body = chat_request("gemini", GROUPS["openai"], stream=True)
        do("r-gemini-stream", "POST", path, body, 200, "m-openai", key=None, headers={"x-goog-api-key": vk})
        do("r-openai-stream", "POST", *chat_request("openai", GROUPS["gemini"], stream=True), 200, "m-gemini", key=vk)
        do("r-wrong-key", "POST", *chat_request("openai", GROUPS["openai"]), 401, None, key=f"{vk}-wrong")
        do("r-unknown-model", "POST", *chat_request("anthropic", "no-such-group"), 404, "no-such-group")
        do("r-key-info", "GET", f"/key/info?key={vk}", None, 200, None)
        do("r-key-delete", "POST", "/key/delete", {"keys": [later]}, 200, None)
        do("r-models", "GET", "/v1/models", None, 200, None, key=vk)
        wanted = set(requests)
        deadline = time.monotonic() + 10
        while not wanted <= {r.get("request_id") for r in gw.records()}:
            assert time.monotonic() < deadline, f"not every request was logged:\n{gw.output()}"
            time.sleep(0.05)
    finally:
        gw.stop()
    yield Logged(gw, [MASTER_KEY, vk, later, *UPSTREAM_KEYS.values()], requests)


def test_every_line_is_json_and_each_request_has_exactly_one(logged: Logged) -> None:
    records = logged.gateway.records()  # raises on a line that is not JSON
    for rid in logged.requests:
        assert sum(1 for r in records if r.get("request_id") == rid) == 1, rid


def test_a_request_line_says_method_path_status_latency_and_model(logged: Logged) -> None:
    by_id = {r["request_id"]: r for r in logged.gateway.records() if r.get("event") == "request"}
    for rid, (method, path, status, model) in logged.requests.items():
        rec = by_id[rid]
        assert (rec["method"], rec["path"], rec["status"]) == (method, path, status), rec
        assert isinstance(rec["latency_ms"], int | float) and 0 <= rec["latency_ms"] < 30_000
        assert rec.get("model") == model, rec
        assert isinstance(rec["ts"], int | float)
    assert by_id["r-openai"]["key"] == "logged"
    assert by_id["r-openai"]["tokens"]["input"] >= 1
    assert by_id["r-wrong-key"]["error"] == "AuthenticationError"


def test_no_secret_appears_anywhere_in_the_output(logged: Logged) -> None:
    text = logged.gateway.output()
    assert "r-openai" in text  # the output is really there
    for secret in logged.secrets:
        assert secret not in text
        assert secret[3:] not in text  # not even without its "sk-"


# ---------------------------------------------------------------- SIGTERM


@dataclass
class Terminated:
    stream: Response
    returncode: int
    exit_seconds: float  # from the end of the stream to the process's exit
    expected_text: str


@pytest.fixture(scope="module")
def terminated(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Terminated:
    """SIGTERM sent while a slow stream (about 1.2 s) is in flight."""
    d = tmp_path_factory.mktemp("sigterm")
    gw = GatewayProcess(write_config(d, upstream), d / "gateway.log", "--graceful-seconds", str(GRACE))
    text = "all of this must arrive, " * 2
    try:
        gw.wait_ready()
        upstream.reset()
        upstream.script(Reply(text=text, chunk_size=4, chunk_delay=0.1))
        result: dict[str, Any] = {}
        started = threading.Event()

        def stream() -> None:
            path, body = chat_request("openai", GROUPS["anthropic"], stream=True)
            conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=GRACE + 10)
            try:
                conn.request("POST", path, json.dumps(body), {"authorization": f"Bearer {MASTER_KEY}"})
                resp = conn.getresponse()
                first = resp.read1()  # the first chunk of the answer: the stream is in flight
                started.set()
                result["r"] = Response(resp.status, dict(resp.getheaders()), first + resp.read())
                result["ended"] = time.monotonic()
            finally:
                conn.close()

        reader = threading.Thread(target=stream)
        reader.start()
        assert started.wait(10), "the stream did not start"
        gw.proc.send_signal(signal.SIGTERM)
        reader.join(timeout=GRACE + 10)
        assert not reader.is_alive()
        returncode = gw.proc.wait(timeout=GRACE + 10)
        exited = time.monotonic()
    finally:
        gw.stop()
        upstream.reset()
    return Terminated(result["r"], returncode, exited - result["ended"], text)


def test_sigterm_lets_an_in_flight_stream_finish(terminated: Terminated) -> None:
    r = terminated.stream
    assert r.status == 200
    events = [line[len("data: ") :] for line in r.body.decode().splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == terminated.expected_text
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert terminated.exit_seconds < GRACE


def test_sigterm_then_exits_0(terminated: Terminated) -> None:
    assert terminated.returncode == 0


# ---------------------------------------------------------------- configs that are wrong, and one that is right

BAD_VALUE = """\
model_list:
  - model_name: m
    litellm_params:
      model: openai/gpt-4o-mini
      rpm: fast
general_settings:
  master_key: sk-master-of-a-bad-config
"""
BAD_YAML = """\
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o-mini
general_settings:
  master_key: sk-master-of-a-bad-config
"""


@pytest.mark.parametrize(
    ("text", "line", "mentions"), [(BAD_VALUE, 5, "rpm"), (BAD_YAML, 4, "")], ids=["value", "yaml"]
)
def test_serve_refuses_a_bad_config_naming_file_and_line(tmp_path: Path, text: str, line: int, mentions: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    port = free_port()
    done = subprocess.run(
        [str(LLMSWITCH), "serve", "--config", str(bad), "--host", "127.0.0.1", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"{bad}:{line}" in done.stderr, done.stderr
    assert mentions in done.stderr
    assert "sk-master-of-a-bad-config" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_config_check_accepts_the_bench_config() -> None:
    done = subprocess.run(
        [str(LLMSWITCH), "config", "check", str(BENCH_CONFIG)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout and "bench, bench-stream" in done.stdout
    assert "sk-bench-master" not in done.stdout + done.stderr


def test_config_check_rejects_a_bad_config_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_VALUE)
    done = subprocess.run([str(LLMSWITCH), "config", "check", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{bad}:5: model_list[0].litellm_params.rpm:" in done.stderr
