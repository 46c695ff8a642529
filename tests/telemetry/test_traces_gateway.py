"""The gateway's spans, received by an OTLP/HTTP collector on loopback: examples/observability.yaml run as
written, a span per request with a child per attempt, GenAI attributes, the caller's traceparent honoured and
the attempt's passed upstream, no message content by default, and a collector that is dead or hangs costing
no request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_harness import ServedGateway, call
from receivers import OTLPReceiver, Span

from llmswitch.config import load_config, parse_config
from llmswitch.testing import FakeUpstream, Reply

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "observability.yaml"
MASTER = "sk-gateway-observed-5f1c2a"
UPSTREAM_KEY = "sk-upstream-observed-88d0e4"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
PROMPT = "tell me about the purple giraffe 7d41"


@pytest.fixture
def collector() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


def example_env(monkeypatch: pytest.MonkeyPatch, up: FakeUpstream, endpoint: str) -> None:
    monkeypatch.setenv("UPSTREAM_API_BASE", up.openai_base)
    monkeypatch.setenv("UPSTREAM_API_KEY", UPSTREAM_KEY)
    monkeypatch.setenv("LLMSWITCH_MASTER_KEY", MASTER)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    monkeypatch.setenv("LLMSWITCH_STORE_PATH", ":memory:")


def chat(gw: ServedGateway, *, stream: bool = False, traceparent: str | None = None, model: str = "observed") -> int:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    headers = {"traceparent": traceparent} if traceparent else None
    r = call(gw.port, "POST", "/v1/chat/completions", body, key=MASTER, headers=headers)
    return r.status


def by_kind(spans: list[Span], kind: int) -> list[Span]:
    return [s for s in spans if s.kind == kind]


def test_the_example_exports_request_and_attempt_spans_with_genai_attributes(
    up: FakeUpstream, collector: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_env(monkeypatch, up, collector.url)
    cfg = load_config(EXAMPLE)
    with ServedGateway(cfg) as gw:
        assert chat(gw, traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01") == 200
        spans = collector.wait_spans(2)
    (server,) = by_kind(spans, Span.SERVER)
    (attempt,) = by_kind(spans, Span.CLIENT)
    # the caller's trace goes on: the request span is the child of the caller's span
    assert (server.trace_id, server.parent_id) == (CALLER_TRACE, CALLER_SPAN)
    assert (attempt.trace_id, attempt.parent_id) == (CALLER_TRACE, server.span_id)
    assert server.name == "chat observed" and server.service == "llmswitch"
    a = server.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "observed"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.response.model"] == "gpt-4o-mini"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["http.response.status_code"] == 200
    b = attempt.attributes
    assert attempt.name == "chat gpt-4o-mini"
    assert b["gen_ai.provider.name"] == "openai" and b["gen_ai.request.model"] == "gpt-4o-mini"
    assert b["llmswitch.model_group"] == "observed" and b["llmswitch.attempt"] == 1
    assert b["server.address"] == "127.0.0.1" and "error.type" not in b and attempt.status_code == 0
    assert b["gen_ai.usage.input_tokens"] == a["gen_ai.usage.input_tokens"]
    # the upstream request named the attempt span as its parent
    (sent,) = up.requests
    assert sent.headers["traceparent"] == f"00-{CALLER_TRACE}-{attempt.span_id}-01"
    # no message content by default, and no key anywhere in what was exported
    exported = collector.raw()
    assert PROMPT.encode() not in exported
    assert b"purple giraffe" not in exported
    for secret in (MASTER, UPSTREAM_KEY):
        assert secret.encode() not in exported


def test_a_stream_is_one_request_span_ended_with_its_usage(
    up: FakeUpstream, collector: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_env(monkeypatch, up, collector.url)
    with ServedGateway(load_config(EXAMPLE)) as gw:
        assert chat(gw, stream=True) == 200
        spans = collector.wait_spans(2)
    (server,) = by_kind(spans, Span.SERVER)
    (attempt,) = by_kind(spans, Span.CLIENT)
    assert attempt.parent_id == server.span_id and server.parent_id == ""
    assert server.attributes["gen_ai.usage.output_tokens"] > 0
    assert attempt.attributes["gen_ai.usage.output_tokens"] == server.attributes["gen_ai.usage.output_tokens"]


def test_content_is_recorded_when_asked(
    up: FakeUpstream, collector: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_env(monkeypatch, up, collector.url)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    with ServedGateway(load_config(EXAMPLE)) as gw:
        assert chat(gw) == 200
        spans = collector.wait_spans(2)
    (server,) = by_kind(spans, Span.SERVER)
    assert PROMPT in server.attributes["gen_ai.input.messages"]


def test_turn_off_message_logging_wins_over_the_capture_variable(
    up: FakeUpstream, collector: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_env(monkeypatch, up, collector.url)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    text = EXAMPLE.read_text().replace(
        '  callbacks: ["otel"]', '  callbacks: ["otel"]\n  turn_off_message_logging: true'
    )
    check = parse_config(text, "observability.yaml")
    assert check.config is not None, check.problems
    with ServedGateway(check.config) as gw:
        assert chat(gw) == 200
        spans = collector.wait_spans(2)
    assert all("gen_ai.input.messages" not in s.attributes for s in spans)
    assert PROMPT.encode() not in collector.raw()


def test_retries_and_fallbacks_are_attempt_spans_of_one_request(
    up: FakeUpstream, collector: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_env(monkeypatch, up, collector.url)
    text = EXAMPLE.read_text().replace(
        "litellm_settings:",
        f"""  - model_name: backup
    litellm_params:
      model: openai/gpt-4o
      api_base: {up.openai_base}
      api_key: {UPSTREAM_KEY}

router_settings:
  num_retries: 1
  retry_after: 0
  fallbacks: [{{"observed": ["backup"]}}]

litellm_settings:""",
    )
    check = parse_config(text, "observability.yaml")
    assert check.config is not None, check.problems
    # the first deployment fails twice (a retry on it, then the fallback group answers)
    up.script(Reply(status=503), Reply(status=503), model="gpt-4o-mini")
    with ServedGateway(check.config) as gw:
        assert chat(gw) == 200
        spans = collector.wait_spans(4)
    (server,) = by_kind(spans, Span.SERVER)
    attempts = sorted(by_kind(spans, Span.CLIENT), key=lambda s: s.attributes["llmswitch.attempt"])
    assert [s.parent_id for s in attempts] == [server.span_id] * 3
    assert [
        (s.attributes["llmswitch.model_group"], "llmswitch.retry" in s.attributes, "llmswitch.fallback" in s.attributes)
        for s in attempts
    ] == [("observed", False, False), ("observed", True, False), ("backup", False, True)]
    assert [s.attributes.get("error.type") for s in attempts] == ["ServiceUnavailableError"] * 2 + [None]
    assert [s.attributes.get("http.response.status_code") for s in attempts[:2]] == [503, 503]
    assert server.attributes["gen_ai.response.model"] == "gpt-4o" and server.attributes["llmswitch.attempts"] == 3
    # each upstream call carried its own attempt span's traceparent
    sent = [r.headers["traceparent"].split("-")[2] for r in up.requests]
    assert sent == [s.span_id for s in attempts]


def test_a_dead_collector_costs_no_request(up: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    with OTLPReceiver() as gone:
        dead = gone.url  # a port nothing listens on once the receiver is closed
    example_env(monkeypatch, up, dead)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    with ServedGateway(load_config(EXAMPLE)) as gw:
        assert [chat(gw, stream=i % 2 == 1) for i in range(6)] == [200] * 6
        tracing = gw.gateway.telemetry.tracing
        assert tracing is not None
        tracing.flush(timeout=10)
        stats = tracing.stats()["otel-spans"]
    assert stats["failed"] >= 1 and stats["sent"] == 0


def test_a_hanging_collector_costs_no_request_and_a_full_queue_drops_with_a_count(
    up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OTLPReceiver(hang=True) as hanging:
        example_env(monkeypatch, up, hanging.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "30")
        monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4")
        monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
        with ServedGateway(load_config(EXAMPLE)) as gw:
            tracing = gw.gateway.telemetry.tracing
            assert tracing is not None
            statuses = [chat(gw) for _ in range(2)]
            hanging.wait(lambda: len(hanging.received) >= 1)  # the exporter is now stuck in its POST
            for i in range(8):
                statuses.append(chat(gw, stream=i % 2 == 0))
                tracing.flush(timeout=0.01)  # its spans encoded now: one more request for the queue
            stats = tracing.stats()["otel-spans"]
            assert statuses == [200] * 10
            # the queue holds OTEL_BSP_MAX_QUEUE_SIZE spans' worth of requests (one, here); the rest is dropped
            assert stats["dropped"] >= 1 and stats["queued"] <= 1


@pytest.mark.parametrize(
    ("path", "body", "operation"),
    [
        (
            "/v1/messages",
            {"model": "observed", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
            "chat",
        ),
        (
            "/v1beta/models/observed:generateContent",
            {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            "chat",
        ),
        ("/v1/embeddings", {"model": "observed", "input": ["hi"]}, "embeddings"),
    ],
)
def test_every_client_dialect_and_embeddings_are_traced(
    up: FakeUpstream,
    collector: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    body: dict[str, object],
    operation: str,
) -> None:
    example_env(monkeypatch, up, collector.url)
    with ServedGateway(load_config(EXAMPLE)) as gw:
        headers = {"x-api-key": MASTER} if path.startswith("/v1/messages") else {"x-goog-api-key": MASTER}
        r = call(gw.port, "POST", path, body, key=MASTER, headers=headers)
        assert r.status == 200, r.body
        spans = collector.wait_spans(2)
    (server,) = by_kind(spans, Span.SERVER)
    (attempt,) = by_kind(spans, Span.CLIENT)
    assert server.name == f"{operation} observed" and attempt.parent_id == server.span_id
    assert server.attributes["gen_ai.operation.name"] == operation
    assert server.attributes["gen_ai.usage.input_tokens"] > 0
    assert up.requests[0].headers["traceparent"].split("-")[2] == attempt.span_id


def test_the_cache_verdict_is_on_the_request_span(
    up: FakeUpstream, collector: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_env(monkeypatch, up, collector.url)
    text = EXAMPLE.read_text().replace('  callbacks: ["otel"]', '  callbacks: ["otel"]\n  cache: true')
    check = parse_config(text, "observability.yaml")
    assert check.config is not None, check.problems
    with ServedGateway(check.config) as gw:
        assert chat(gw) == 200
        assert chat(gw) == 200  # the same request again: answered from the cache, nothing sent upstream
        spans = collector.wait_spans(3)
    servers = sorted(by_kind(spans, Span.SERVER), key=lambda s: s.attributes["llmswitch.cache"], reverse=True)
    assert [s.attributes["llmswitch.cache"] for s in servers] == ["miss", "hit"]
    assert len(up.requests) == 1 and len(by_kind(spans, Span.CLIENT)) == 1
