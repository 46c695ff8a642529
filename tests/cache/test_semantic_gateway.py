"""examples/semantic-cache.yaml served as written by ``llmswitch serve``, asked with the official openai SDK.

The fake upstream echoes the last user message, so an answer's text tells which question the upstream
was asked: a semantic hit carries the cached question's text.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from llmswitch.testing import FakeUpstream

EXAMPLE = Path(__file__).parents[2] / "examples" / "semantic-cache.yaml"
LLMSWITCH = Path(sys.executable).with_name("llmswitch")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(port: int, path: str, body: Any, key: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST", path, json.dumps(body), {"authorization": f"Bearer {key}", "content-type": "application/json"}
        )
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health/readiness")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class Served:
    def __init__(self, port: int, master: str, upstream: FakeUpstream) -> None:
        self.port, self.master, self.upstream = port, master, upstream

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=key or self.master, max_retries=0)

    def ask(self, prompt: str, *, key: str | None = None, cache: dict[str, Any] | None = None) -> tuple[str, str]:
        """(x-llmswitch-cache, answer text) of one chat call."""
        with self.client(key) as client:
            raw = client.chat.completions.with_raw_response.create(
                model="cached",
                messages=[{"role": "user", "content": prompt}],
                extra_body={"cache": cache} if cache else None,
            )
        return raw.headers["x-llmswitch-cache"], raw.parse().choices[0].message.content or ""

    def ask_until_hit(self, prompt: str, *, key: str | None = None, cache: dict[str, Any] | None = None) -> str:
        """The cached answer to ``prompt``, once the entry it matches is stored and indexed (which
        happens after the first answer went out). Asked with no-store, so a miss stores nothing."""
        deadline = time.monotonic() + 20
        while True:
            state, text = self.ask(prompt, key=key, cache={**(cache or {}), "no-store": True})
            if state == "hit":
                return text
            assert time.monotonic() < deadline, f"no hit for {prompt!r}"
            time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port, master = free_port(), f"sk-master-{uuid.uuid4().hex}"
    with FakeUpstream() as up:
        env = dict(
            os.environ,
            UPSTREAM_API_BASE=up.openai_base,
            UPSTREAM_API_KEY="sk-up-semantic",
            LLMSWITCH_MASTER_KEY=master,
            LLMSWITCH_JOURNAL_DIR=str(tmp_path / "journal"),
        )
        env.pop("REDIS_URL", None)
        argv = [str(LLMSWITCH), "serve", "--config", str(EXAMPLE), "--host", "127.0.0.1", "--port", str(port)]
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 30
                while not ready(port):
                    assert proc.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.1)
                yield Served(port, master, up)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        assert "exact cache only" not in log.read_text()  # the semantic index was loaded, not skipped


def test_a_paraphrase_hits_with_the_cached_answer(served: Served) -> None:
    assert served.ask("What is the capital of France?") == ("miss", "What is the capital of France?")
    # the fake upstream echoes: the answer to the original question proves it came from the cache
    assert served.ask_until_hit("what's the capital of france") == "What is the capital of France?"
    before = len(served.upstream.requests)
    assert served.ask("What is the capital of France") == ("hit", "What is the capital of France?")
    assert len(served.upstream.requests) == before


def test_swapped_roles_or_numbers_miss(served: Served) -> None:
    assert served.ask("Which flights go from Paris to Tokyo on Monday?")[0] == "miss"
    assert served.ask_until_hit("which flights go from paris to tokyo on monday") == (
        "Which flights go from Paris to Tokyo on Monday?"
    )
    assert served.ask("Which flights go from Tokyo to Paris on Monday?") == (
        "miss",
        "Which flights go from Tokyo to Paris on Monday?",
    )
    assert served.ask("Convert 15 miles to kilometers")[0] == "miss"
    assert served.ask_until_hit("convert 15 miles to kilometers.") == "Convert 15 miles to kilometers"
    assert served.ask("Convert 51 miles to kilometers") == ("miss", "Convert 51 miles to kilometers")
    assert served.ask("Convert 15 kilometers to miles") == ("miss", "Convert 15 kilometers to miles")


def test_another_namespace_or_tenant_misses(served: Served) -> None:
    status, body = post(served.port, "/key/generate", {"team_id": "team-a"}, served.master)
    assert status == 200, body
    team_a = body["key"]
    status, body = post(served.port, "/key/generate", {"team_id": "team-b"}, served.master)
    assert status == 200, body
    team_b = body["key"]

    assert served.ask("How tall is the Eiffel Tower?", key=team_a)[0] == "miss"
    assert served.ask_until_hit("how tall is the eiffel tower", key=team_a) == "How tall is the Eiffel Tower?"
    assert served.ask("how tall is the eiffel tower", key=team_b) == ("miss", "how tall is the eiffel tower")
    assert served.ask("how tall is the eiffel tower", key=team_a, cache={"namespace": "n1"})[0] == "miss"
    assert (
        served.ask_until_hit("How tall is the Eiffel Tower", key=team_a, cache={"namespace": "n1"})
        == "how tall is the eiffel tower"
    )
