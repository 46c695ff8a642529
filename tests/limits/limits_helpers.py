"""Helpers of the limits tests (a module of its own: ``conftest`` is a name every test directory uses).

Windows, periods and lease expiry run on :class:`FakeClock`: no test sleeps to let time pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import redis

from llmswitch.limits import Reservation, SubjectLimits
from llmswitch.limits.fallback import FallbackLimiter

REDIS_URL = os.environ.get("LLMSWITCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
T0 = 1_750_000_000.0  # a fixed "now" (2025-06-15T15:06:40Z) so expected times are exact

RunLimiter = Callable[..., Any]


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def redis_keys(prefix: str) -> dict[str, Any]:
    """Everything stored under ``prefix``, decoded, with each key's TTL in ms (-1: none)."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        out: dict[str, Any] = {}
        for key in client.scan_iter(match=f"{prefix}:*"):
            kind = client.type(key)
            value: Any = client.hgetall(key) if kind == "hash" else client.zrange(key, 0, -1, withscores=True)
            out[key] = (value, client.pttl(key))
        return out
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisProcess:
    """A redis-server of a test's own on a spare port, to stop, freeze and restart at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)  # accepts connections (the kernel does), never answers

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


async def back_from_frozen(server: RedisProcess, limiter: FallbackLimiter, mono: FakeClock) -> None:
    """Thaw ``server``, let the limiter's next probe (its cooldown passed) find it answering again, and
    replay what it kept meanwhile: nothing may be left over."""
    server.thaw()
    await asyncio.sleep(0.2)
    mono.advance(5.0)
    probe = await limiter.admit([SubjectLimits("key:probe", rpm_limit=5)])
    assert isinstance(probe, Reservation) and not limiter.degraded
    assert await limiter.flush() == 0
