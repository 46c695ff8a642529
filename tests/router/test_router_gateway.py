"""The router inside the gateway, with the official openai SDK as the client: failover is invisible, a
stream cut after its first token ends with an error event, and the response says what happened."""

from __future__ import annotations

import http.client
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from llmswitch.config import parse_config
from llmswitch.server.h1serve import Server
from llmswitch.server.serve import build_gateway
from llmswitch.testing import FakeUpstream, Reply

MASTER = "sk-master-router-test"
STORY = "The gateway relays every token it is given, or says why not."


def config_text(up: FakeUpstream) -> str:
    store = os.path.join(tempfile.mkdtemp(prefix="llmswitch-router-gw-"), "keys.db")
    return f"""
model_list:
  - model_name: g
    litellm_params: {{model: openai/model-a, api_base: "{up.openai_base}", api_key: sk-a, order: 1}}
  - model_name: g
    litellm_params: {{model: openai/model-b, api_base: "{up.openai_base}", api_key: sk-b, order: 2}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-x, api_base: "{up.anthropic_base}", api_key: sk-c}}
router_settings:
  num_retries: 1
  allowed_fails: 1
  cooldown_time: 600
  retry_after: 0
general_settings:
  master_key: {MASTER}
  store_path: {store}
"""


class Served:
    def __init__(self, text: str) -> None:
        check = parse_config(text)
        assert check.problems == [] and check.config is not None
        self.gateway = build_gateway(check.config)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = Server(self.gateway, host="127.0.0.1", port=self.port)
        self.thread = threading.Thread(target=self.server.run, name="router-gateway", daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=MASTER, max_retries=0)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    upstream.reset()
    yield upstream
    upstream.reset()


@pytest.fixture
def gw(upstream: FakeUpstream) -> Iterator[Served]:
    """A fresh gateway per test: breakers and counters start clean."""
    with Served(config_text(upstream)) as served:
        yield served


def get_json(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"authorization": f"Bearer {MASTER}"})
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())
    finally:
        conn.close()


def ids(gw: Served, group: str) -> list[str]:
    return [t.id for t in gw.gateway.router.deployments(group)]


MESSAGES: Any = [{"role": "user", "content": "hi"}]


def test_failover_is_invisible_and_the_headers_say_what_happened(gw: Served, up: FakeUpstream) -> None:
    up.script(Reply(status=500), Reply(status=502), model="model-a")
    up.script(Reply(text="from b"), model="model-b")
    with gw.client() as oc:
        raw = oc.chat.completions.with_raw_response.create(model="g", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "from b"
    assert raw.headers["x-llmswitch-deployment"] == ids(gw, "g")[1]
    assert raw.headers["x-llmswitch-model-group"] == "g"
    assert raw.headers["x-llmswitch-attempts"] == "3"  # A, A again (one retry), then B
    assert raw.headers["x-llmswitch-model"] == "model-b"


@pytest.mark.parametrize("group", ["g", "claude"], ids=["fast-path", "full-path"])
def test_a_stream_cut_before_its_first_token_is_retried_unseen(gw: Served, up: FakeUpstream, group: str) -> None:
    up.script(Reply(text=STORY, cut_after=1), Reply(text=STORY, chunk_size=6))
    with (
        gw.client() as oc,
        oc.chat.completions.with_streaming_response.create(model=group, messages=MESSAGES, stream=True) as resp,
    ):
        assert resp.headers["x-llmswitch-attempts"] == "2"
        text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
    assert text == STORY
    assert len(up.requests) == 2


@pytest.mark.parametrize("group", ["g", "claude"], ids=["fast-path", "full-path"])
@pytest.mark.parametrize(
    "fault",
    [Reply(text=STORY, chunk_size=4, cut_after=4), Reply(text=STORY, chunk_size=4, end_after=4)],
    ids=["cut", "ended-early"],
)
def test_a_stream_failing_after_its_first_token_ends_with_an_error_event(
    gw: Served, up: FakeUpstream, group: str, fault: Reply
) -> None:
    up.script(fault)
    received = ""
    with gw.client() as oc, pytest.raises(openai.APIError):
        for chunk in oc.chat.completions.create(model=group, messages=MESSAGES, stream=True):
            received += "".join(c.delta.content or "" for c in chunk.choices)
    assert received and STORY.startswith(received) and received != STORY
    assert len(up.requests) == 1  # bytes had reached the client: not retried


def test_the_deadline_in_the_body_bounds_every_retry(gw: Served, up: FakeUpstream) -> None:
    up.default = Reply(hang=True)
    try:
        started = time.monotonic()
        with gw.client() as oc, pytest.raises(openai.APIStatusError) as info:
            oc.chat.completions.create(model="g", messages=MESSAGES, extra_body={"timeout": 0.5})
        assert time.monotonic() - started < 0.5 + 0.5
    finally:
        up.default = Reply()
    assert info.value.status_code >= 500


def test_health_shows_each_deployments_state(gw: Served, up: FakeUpstream) -> None:
    up.script(Reply(status=500), Reply(status=500), model="model-a")
    with gw.client() as oc:
        oc.chat.completions.create(model="g", messages=MESSAGES)
        oc.chat.completions.create(model="g", messages=MESSAGES)
    body = get_json(gw.port, "/health")
    by_id = {d["id"]: d for d in body["deployments"]}
    a, b = (by_id[i] for i in ids(gw, "g"))
    assert a["state"] == "open" and a["failures"] == 2 and a["last_error"].startswith("InternalServerError")
    assert b["state"] == "closed" and b["successes"] == 2 and b["latency_ms"] is not None
    assert a["in_flight"] == b["in_flight"] == 0
    assert a["cooldown_remaining_s"] > 500
