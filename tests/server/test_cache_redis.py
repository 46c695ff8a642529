"""The cache on real Redis: examples/cache.yaml served as written, and Redis cut mid-load costing no request."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import redis
from cache_harness import cache_config, stored
from gateway_harness import ServedGateway, call, chat_request, free_port

from llmswitch.testing import FakeUpstream

REDIS_URL = "redis://127.0.0.1:6379/0"
EXAMPLE = Path(__file__).parents[2] / "examples" / "cache.yaml"
LLMSWITCH = Path(sys.executable).with_name("llmswitch")


@pytest.fixture
def namespace() -> Iterator[str]:
    ns = f"test-{uuid.uuid4().hex[:12]}"
    yield ns
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{ns}:*"):
        client.delete(key)
    client.close()


class CuttableProxy:
    """A TCP proxy to the real Redis that the test cuts: every connection closed, new ones refused."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 6379)) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._cut = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        try:
            while not self._cut.is_set():
                try:
                    client, _ = self.listener.accept()
                except TimeoutError:
                    continue
                thread = threading.Thread(target=self._pipe, args=(client,), daemon=True)
                self._threads.append(thread)
                thread.start()
        finally:
            self.listener.close()

    def _pipe(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.target) as upstream:
            try:
                while not self._cut.is_set():
                    ready, _, _ = select.select([client, upstream], [], [], 0.05)
                    for s in ready:
                        data = s.recv(65536)
                        if not data:
                            return
                        (upstream if s is client else client).sendall(data)
            except OSError:
                return

    def cut(self) -> None:
        self._cut.set()
        self._acceptor.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)


def test_redis_cut_mid_load_costs_no_request(up: FakeUpstream, tmp_path: Path, namespace: str) -> None:
    proxy = CuttableProxy()
    config = cache_config(
        up, str(tmp_path / "keys.db"), type="redis", url=proxy.url, namespace=namespace, timeout=0.2,
        default_in_memory_ttl=60,
    )  # fmt: skip
    prompts = [f"question {i} {uuid.uuid4().hex}" for i in range(10)]
    fresh = [f"asked once {i} {uuid.uuid4().hex}" for i in range(120)]
    with ServedGateway(config) as gw:
        cutter = threading.Thread(target=proxy.cut)

        def one(i: int) -> tuple[int, str | None, float]:
            if i == 130:  # Redis goes away with requests in flight on every client thread
                cutter.start()
            path, body = chat_request("openai", "m-openai", prompts[i % len(prompts)] if i < 100 else fresh[i - 100])
            t0 = time.perf_counter()
            r = call(gw.port, "POST", path, body, timeout=10)
            return r.status, r.headers.get("x-llmswitch-cache"), time.perf_counter() - t0

        with ThreadPoolExecutor(4) as pool:
            before = list(pool.map(one, range(20)))  # 10 misses, then hits from Redis
            stored(gw)
            during = list(pool.map(one, range(100, 180)))
            cutter.join()
            known = list(pool.map(one, range(20)))  # answered from this gateway's near copies
            after = list(pool.map(one, range(180, 220)))  # new questions: Redis away, answered upstream
    assert all(status == 200 for status, _, _ in before + during + known + after)
    assert any(state == "hit" for _, state, _ in before)
    assert all(state == "hit" for _, state, _ in known)
    assert all(state == "miss" for _, state, _ in during + after)
    assert max(seconds for _, _, seconds in during + after) < 2.0


def test_examples_cache_yaml_as_written(up: FakeUpstream, tmp_path: Path) -> None:
    port = free_port()
    master = f"sk-master-{uuid.uuid4().hex}"
    env = dict(
        os.environ,
        REDIS_URL=REDIS_URL,
        UPSTREAM_API_BASE=up.openai_base,
        UPSTREAM_API_KEY="sk-up-example",
        LLMSWITCH_MASTER_KEY=master,
        LLMSWITCH_JOURNAL_DIR=str(tmp_path / "journal"),
    )
    argv = [str(LLMSWITCH), "serve", "--config", str(EXAMPLE), "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "serve.log"
    keys: list[str] = []
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if call(port, "GET", "/health/readiness", key=None).status == 200:
                        break
                except OSError:
                    pass
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=master, max_retries=0)
            messages = [{"role": "user", "content": f"example {uuid.uuid4().hex}"}]
            states = []
            for stream in (False, False, True):
                raw = client.chat.completions.with_raw_response.create(model="cached", messages=messages, stream=stream)  # type: ignore[call-overload]
                states.append(raw.headers["x-llmswitch-cache"])
                keys.append(raw.headers["x-litellm-cache-key"])
                parsed = raw.parse()
                if stream:
                    assert "example" in "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
                time.sleep(0.2)  # the miss is stored after its answer
            assert states == ["miss", "hit", "hit"]
            # a namespace of the request's own keeps its entries apart
            ns = client.chat.completions.with_raw_response.create(
                model="cached", messages=messages, extra_body={"cache": {"namespace": "n1"}}
            )
            assert ns.headers["x-llmswitch-cache"] == "miss"
            keys.append(ns.headers["x-llmswitch-cache-key"])
            assert len(up.requests) == 2 and up.requests[0].headers["authorization"] == "Bearer sk-up-example"
            client.close()
        finally:
            if keys:
                call(port, "POST", "/cache/delete", {"keys": sorted(set(keys))}, key=master)
            proc.terminate()
            proc.wait(timeout=30)
