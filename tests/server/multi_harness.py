"""Gateways for the spend-and-limits tests: priced model groups, ``llmswitch serve`` processes, and reading
spend back.

The groups reach the fake upstream in each provider's own dialect, on models the price table knows, so every
answer has a cost:

    m-openai     openai/gpt-4o                        (the same-dialect fast path for an OpenAI client)
    m-anthropic  anthropic/claude-sonnet-4-20250514
    m-gemini     gemini/gemini-2.5-flash

:class:`GatewayProcess` runs ``llmswitch serve`` as a child process with its own environment (its journal
directory, no inherited ``REDIS_URL``), so a test can run two of them side by side, or ``kill -9`` one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from gateway_harness import MASTER_KEY, Response, call, free_port

from llmswitch import ir
from llmswitch.cost import cost_for_response
from llmswitch.testing import FakeUpstream

T = TypeVar("T")

LLMSWITCH = Path(sys.executable).with_name("llmswitch")
# group -> (provider, upstream model)
PRICED = {
    "m-openai": ("openai", "gpt-4o"),
    "m-anthropic": ("anthropic", "claude-sonnet-4-20250514"),
    "m-gemini": ("gemini", "gemini-2.5-flash"),
}
NATIVE_FACE = {"m-openai": "openai", "m-anthropic": "anthropic", "m-gemini": "gemini"}
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


class KnownBug(AssertionError):
    """The one failure an ``xfail(raises=KnownBug)`` test expects; any other failure is a real one."""


def known_bug(holds: bool, message: str) -> None:
    if not holds:
        raise KnownBug(message)


def priced_config(up: FakeUpstream, store: str, *, redis: bool = False) -> str:
    """LiteLLM config text: the priced groups, the master key, ``store`` (a SQLite path or a PostgreSQL URL),
    no retries, and Redis for limits when ``redis``."""
    bases = {"openai": up.openai_base, "anthropic": up.anthropic_base, "gemini": up.gemini_base}
    rows = "".join(
        f"""  - model_name: {group}
    litellm_params:
      model: {provider}/{model}
      api_base: "{bases[provider]}"
      api_key: sk-up-{provider}-2c91
"""
        for group, (provider, model) in PRICED.items()
    )
    where = "database_url" if store.startswith("postgresql://") else "store_path"
    text = f"model_list:\n{rows}general_settings:\n  master_key: {MASTER_KEY}\n  {where}: {json.dumps(store)}\n"
    text += "router_settings:\n  num_retries: 0\n"
    if redis:
        text += f"  redis_host: {REDIS_HOST}\n  redis_port: {REDIS_PORT}\n"
    return text


def price(group: str, usage: ir.Usage) -> float:
    """What the gateway must charge for an answer of ``group`` with ``usage``."""
    provider, model = PRICED[group]
    cost = cost_for_response(model, provider, usage)
    assert cost is not None and cost > 0, (group, usage)
    return cost


def poll(probe: Callable[[], T | None], *, timeout: float, what: str | Callable[[], str], every: float = 0.05) -> T:
    """The first truthy value of ``probe()``, calling it until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what if isinstance(what, str) else what()}: not within {timeout} s"
        time.sleep(every)


# ---------------------------------------------------------------- reading spend back


def spend_logs(port: int, key: str, **query: str) -> list[dict[str, Any]]:
    """``GET /spend/logs`` of a virtual key (up to 10,000 rows)."""
    params = "&".join(f"{k}={v}" for k, v in {"api_key": key, "limit": "10000", **query}.items())
    r = call(port, "GET", f"/spend/logs?{params}")
    assert r.status == 200, r.body
    rows: list[dict[str, Any]] = r.json()
    return rows


def key_info(port: int, key: str) -> dict[str, Any]:
    r = call(port, "GET", f"/key/info?key={key}")
    assert r.status == 200, r.body
    info: dict[str, Any] = r.json()["info"]
    return info


def wait_logged(port: int, key: str, count: int, *, timeout: float = 2.0) -> list[dict[str, Any]]:
    """The key's spend logs once there are ``count`` of them (shipping is batched)."""
    rows: list[dict[str, Any]] = []

    def enough() -> bool:
        rows[:] = spend_logs(port, key)
        return len(rows) >= count

    poll(enough, timeout=timeout, what=lambda: f"{count} spend logs (have {len(rows)})")
    return rows


def wait_key_known(port: int, key: str, *, known: bool = True, timeout: float = 3.0) -> float:
    """Seconds until the gateway on ``port`` authenticates ``key`` (or, ``known=False``, stops doing so)."""
    started = time.monotonic()

    def settled() -> bool:
        # 401: the gateway does not know the key; 404: it still does, though the store no longer has it
        status = call(port, "GET", "/key/info", key=key).status
        assert status in (200, 401, 404), status
        return (status != 401) == known

    poll(settled, timeout=timeout, what=f"the gateway on port {port} {'knows' if known else 'forgets'} the key")
    return time.monotonic() - started


# ---------------------------------------------------------------- `llmswitch serve` as a process


class GatewayProcess:
    """``llmswitch serve --config FILE`` on a free loopback port, its output in ``log``.

    The environment is this process's, minus ``REDIS_URL``/``REDIS_HOST`` (the config alone says whether
    limits are shared), plus ``env`` (``LLMSWITCH_JOURNAL_DIR`` above all); ``args`` go to ``serve``.
    """

    def __init__(self, config: Path, log: Path, env: Mapping[str, str], *args: str) -> None:
        self.config = config
        self.log = log
        self.args = args
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_HOST")}
        self.env["LLMSWITCH_LOG_LEVEL"] = "info"  # the access log tells this process's answers from another's
        self.env.update(env)
        self._spawn()

    def _spawn(self) -> None:
        self.port = free_port()
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        argv = [str(LLMSWITCH), "serve", "--config", str(self.config), "--host", "127.0.0.1", "--port", str(self.port)]
        argv += self.args
        with self.log.open("ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env)

    def wait_ready(self, timeout: float = 30) -> GatewayProcess:
        """Wait until this process (not whatever else took its port meanwhile) answers as ready.

        The port is free when chosen but only bound a second later, once the child has started: another
        process on the machine may take it first. Then the child is started again on another port.
        """
        for _ in range(3):
            if self._ready_on_own_port(timeout):
                return self
            self._end(signal.SIGKILL)
            self._spawn()
        raise AssertionError(f"the gateway could not get a port of its own:\n{self.output()}")

    def _ready_on_own_port(self, timeout: float) -> bool:
        probe = f"ready-{uuid.uuid4().hex}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                mine = self.output()[self._log_start :]
                assert "address already in use" in mine.lower(), f"the gateway exited early:\n{mine}"
                return False
            try:
                status = call(
                    self.port, "GET", "/health/readiness", key=None, timeout=2, headers={"x-request-id": probe}
                ).status
            except OSError:
                status = 0
            if status == 200:
                # the answer was this process's if its access log has the probe's request id
                for _ in range(40):
                    if probe in self.output()[self._log_start :]:
                        return True
                    time.sleep(0.05)
                return False
            time.sleep(0.05)
        raise AssertionError(f"the gateway was not ready in {timeout} s:\n{self.output()}")

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Response:
        try:
            return call(self.port, method, path, body, **kw)
        except OSError as exc:
            state = "running" if self.proc.poll() is None else f"exited with {self.proc.returncode}"
            lines = [line for line in self.output().splitlines() if '"event":"request"' not in line]
            raise AssertionError(f"{method} {path}: {exc}; the gateway is {state}:\n" + "\n".join(lines[-30:])) from exc

    def new_key(self, **fields: Any) -> str:
        r = self.call("POST", "/key/generate", fields)
        assert r.status == 200, r.body
        key: str = r.json()["key"]
        return key

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """``kill -9``: no shutdown, no drain, no flush."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not exited within 15 s."""
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()


def start_together(*gateways: Callable[[], GatewayProcess]) -> list[GatewayProcess]:
    """Start gateway processes at once (as replicas of a deployment do) and wait until each is ready."""
    started = [make() for make in gateways]
    try:
        for gw in started:
            gw.wait_ready()
    except BaseException:
        for gw in started:
            gw.stop()
        raise
    return started


@contextlib.contextmanager
def gateway_pair(up: FakeUpstream, postgres_url: str, d: Path) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    """Two gateway processes of one deployment in ``d``: one config (the priced groups, keys and spend in
    PostgreSQL, limits in Redis), a spend journal each; stopped at the end, when neither may have fallen
    back to limits of its own (both really shared Redis)."""
    config = d / "config.yaml"
    config.write_text(priced_config(up, postgres_url, redis=True))

    def gateway(name: str) -> GatewayProcess:
        env = {
            "LLMSWITCH_JOURNAL_DIR": str(d / f"journal-{name}"),
            # these tests check what shared Redis counts, not how fast it answers: one reply slower than the
            # production deadline (250 ms) on a loaded machine would make a process count on its own
            # (tests/server/test_degraded_budgets.py covers that, with the production deadline)
            "LLMSWITCH_LIMITS_DEADLINE_S": "5",
        }
        return GatewayProcess(config, d / f"{name}.log", env)

    a, b = start_together(lambda: gateway("a"), lambda: gateway("b"))
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()
    for gw in (a, b):
        assert "enforcing rate limits and budgets in this process only" not in gw.output(), gw.output()


def fire_together(calls: list[Callable[[], T]], *, timeout: float = 60) -> list[T]:
    """Run every call on its own thread, all released at once by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, fn: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout)
            results[i] = fn()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, fn), daemon=True) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "requests still running after the timeout"
    if errors:
        raise errors[0]
    return results
