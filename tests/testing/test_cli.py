"""`llmswitch fake-upstream` as a process on a fixed port, and a gateway config file pointing at it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anthropic
import openai
import pytest

import llmswitch
from llmswitch.testing import FakeUpstream

LLMSWITCH = Path(sys.executable).with_name("llmswitch")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fake-upstream.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)


@contextmanager
def process(
    argv: list[str], port: int, log: Path, env: dict[str, str], stop: signal.Signals = signal.SIGTERM
) -> Iterator[subprocess.Popen[bytes]]:
    """A process started with ``argv``, once it listens on ``port``; stopped with ``stop``, which must end it cleanly."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        wait_until_listening(proc, port, log)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
        code = proc.wait(timeout=30)
    assert code == 0, log.read_text()


def test_the_example_config_and_the_fake_upstream_answer_official_sdks(tmp_path: Path) -> None:
    fake_port, gateway_port = free_port(), free_port()
    env = {"LLMSWITCH_FAKE_PORT": str(fake_port), "LLMSWITCH_FAKE_STORE": str(tmp_path / "fake.db")}
    fake_log, gateway_log = tmp_path / "fake.log", tmp_path / "gateway.log"
    fake_argv = [str(LLMSWITCH), "fake-upstream"]  # the port comes from the same variable the config reads
    serve_argv = [str(LLMSWITCH), "serve", "--config", str(EXAMPLE), "--host", "127.0.0.1", "--port", str(gateway_port)]
    with process(fake_argv, fake_port, fake_log, env), process(serve_argv, gateway_port, gateway_log, env):
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{gateway_port}/v1", api_key="sk-fake-master", max_retries=0)
        for group in ("fake-openai", "fake-anthropic", "fake-gemini"):
            r = client.chat.completions.create(model=group, messages=[{"role": "user", "content": f"hello {group}"}])
            assert r.choices[0].message.content == f"hello {group}"
        weather = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        claude = anthropic.Anthropic(
            base_url=f"http://127.0.0.1:{gateway_port}", api_key="sk-fake-master", max_retries=0
        )
        message = claude.messages.create(
            model="fake-gemini",
            max_tokens=64,
            messages=[{"role": "user", "content": "weather?"}],
            tools=[{"name": "get_weather", "input_schema": weather}],
        )
        assert message.stop_reason == "tool_use"
        assert [(b.name, b.input) for b in message.content if b.type == "tool_use"] == [
            ("get_weather", {"city": "city"})
        ]
    base = f"http://127.0.0.1:{fake_port}"
    assert fake_log.read_text().splitlines()[0] == (
        f"llmswitch fake-upstream on {base}: OpenAI {base}/v1, Anthropic {base}, Gemini {base}"
    )


def test_fault_options_fail_every_nth_request_in_the_callers_format(tmp_path: Path) -> None:
    port = free_port()
    argv = [str(LLMSWITCH), "fake-upstream", "--port", str(port), "--fail-every", "2", "--fail-status", "429"]
    with process([*argv, "--retry-after", "7"], port, tmp_path / "fake.log", {}, stop=signal.SIGINT):  # Ctrl-C
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
        ok = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "one"}])
        assert ok.choices[0].message.content == "one"
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "two"}])
        assert caught.value.response.headers["retry-after"] == "7"
        assert caught.value.body["type"] == "rate_limit_error"  # type: ignore[index]
        third = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "three"}])
        assert third.choices[0].message.content == "three"


def test_a_taken_port_is_one_clear_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(LLMSWITCH), "fake-upstream", "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"llmswitch fake-upstream: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_bad_options_are_usage_errors_naming_them() -> None:
    done = subprocess.run(
        [str(LLMSWITCH), "fake-upstream", "--latency", "-1"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "--latency must not be negative" in done.stderr
    env = {**os.environ, "LLMSWITCH_FAKE_PORT": "four"}
    done = subprocess.run([str(LLMSWITCH), "fake-upstream"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and "argument --port: invalid int value: 'four'" in done.stderr


def test_fake_upstream_on_a_fixed_port_in_python() -> None:
    port = free_port()
    with FakeUpstream(port=port) as up:
        assert (up.port, up.url) == (port, f"http://127.0.0.1:{port}")
        r = llmswitch.completion(
            "openai/gpt-4o-mini",
            [{"role": "user", "content": "hi"}],
            api_base=f"http://127.0.0.1:{port}/v1",
            api_key="k",
        )
        assert r.choices[0].message.content == "hi"
        with pytest.raises(OSError), FakeUpstream(port=port):
            pass
    # the port is free again at once for the next one
    with FakeUpstream(port=port) as again:
        assert again.port == port
