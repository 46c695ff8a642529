"""The access log's observability fields: trace ids, cost, cache status, the retry/fallback trail when there
was more than one attempt, sampling of successful requests, and bodies only when asked, redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from llmswitch import ir
from llmswitch.router.attempts import Attempt
from llmswitch.server.accesslog import AccessLog, redact


class FakeRequest:
    def __init__(self, state: dict[str, Any], body: bytes = b"") -> None:
        self.method = "POST"
        self.path = "/v1/chat/completions"
        self.state = state
        self.body = body


@pytest.fixture(autouse=True)
def info_level() -> Iterator[None]:
    logger = logging.getLogger("llmswitch.access")
    old = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(old)


def attempt(number: int, deployment: str, outcome: Any, status: int | None = None) -> Attempt:
    return Attempt(
        deployment=deployment,
        group="g",
        provider="openai",
        model="m",
        number=number,
        outcome=outcome,
        elapsed=0.25,
        error=None if outcome == "ok" else "InternalServerError",
        status=status,
    )


def lines(log: AccessLog, stream: io.StringIO) -> list[dict[str, Any]]:
    log.flush()
    return [json.loads(x) for x in stream.getvalue().splitlines()]


def test_trace_ids_cost_cache_and_the_trail_are_logged() -> None:
    out = io.StringIO()
    log = AccessLog(stream=out, sample=1.0, bodies=False)
    state = {
        "request_id": "r1",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "cost": 0.00042,
        "cache": "miss",
        "usage": ir.Usage(input_tokens=3, output_tokens=5),
        "trail": [attempt(1, "a#0", "error", 500), attempt(2, "b#0", "ok")],
    }
    log.record(FakeRequest(state, b'{"model": "g"}'), 200, 0.5)  # type: ignore[arg-type]
    (line,) = lines(log, out)
    assert line["trace_id"] == state["trace_id"] and line["span_id"] == state["span_id"]
    assert line["cost"] == 0.00042 and line["cache"] == "miss"
    assert line["attempts"] == [
        {"deployment": "a#0", "outcome": "error", "ms": 250.0, "error": "InternalServerError", "status": 500},
        {"deployment": "b#0", "outcome": "ok", "ms": 250.0},
    ]
    assert "request_body" not in line


def test_one_attempt_is_no_trail_and_an_absent_cache_is_no_field() -> None:
    out = io.StringIO()
    log = AccessLog(stream=out, sample=1.0, bodies=False)
    log.record(FakeRequest({"request_id": "r1", "trail": [attempt(1, "a#0", "ok")]}), 200, 0.1)  # type: ignore[arg-type]
    (line,) = lines(log, out)
    assert "attempts" not in line and "cache" not in line and "trace_id" not in line


@pytest.mark.parametrize(
    ("state", "status"),
    [({"cache_hit": True}, "hit"), ({"cache_headers": {}}, "miss"), ({"cache": "bypass"}, "bypass"), ({}, None)],
)
def test_the_cache_verdict(state: dict[str, Any], status: str | None) -> None:
    out = io.StringIO()
    log = AccessLog(stream=out, sample=1.0, bodies=False)
    log.record(FakeRequest({"request_id": "r", **state}), 200, 0.1)  # type: ignore[arg-type]
    (line,) = lines(log, out)
    assert line.get("cache") == status


def test_sampling_keeps_a_share_of_successes_and_every_failure() -> None:
    out = io.StringIO()
    log = AccessLog(stream=out, sample=0.25, bodies=False)
    for i in range(8):
        log.record(FakeRequest({"request_id": f"ok{i}"}), 200, 0.1)  # type: ignore[arg-type]
    for i in range(3):
        log.record(FakeRequest({"request_id": f"bad{i}"}), 502, 0.1)  # type: ignore[arg-type]
    ids = [x["request_id"] for x in lines(log, out)]
    assert len([i for i in ids if i.startswith("ok")]) == 2
    assert [i for i in ids if i.startswith("bad")] == ["bad0", "bad1", "bad2"]


def test_bodies_only_when_asked_and_redacted() -> None:
    out = io.StringIO()
    log = AccessLog(stream=out, sample=1.0, bodies=True)
    body = {"model": "g", "api_key": "sk-live-secret", "messages": [{"role": "user", "content": "hi"}]}
    log.record(FakeRequest({"request_id": "r"}, json.dumps(body).encode()), 200, 0.1)  # type: ignore[arg-type]
    (line,) = lines(log, out)
    assert line["request_body"]["api_key"] == "[redacted]"
    assert line["request_body"]["messages"][0]["content"] == "hi"
    assert "sk-live-secret" not in out.getvalue()


def test_redact_reaches_every_depth() -> None:
    data = {"a": [{"Authorization": "Bearer x", "nested": {"client_secret": "y", "ok": 1}}], "token": "z"}
    assert redact(data) == {
        "a": [{"Authorization": "[redacted]", "nested": {"client_secret": "[redacted]", "ok": 1}}],
        "token": "[redacted]",
    }
