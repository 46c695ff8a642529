"""Pieces of the tracing that need no collector: traceparent parsing, content capture's rule, steps as no-ops
when tracing is off and as children of the request's span when on (an in-memory exporter)."""

from __future__ import annotations

import pytest

from llmswitch.telemetry import traces
from llmswitch.telemetry.spans import parse_traceparent
from llmswitch.telemetry.traces import capture_content_from, step


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
        ),
        (
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-00",
            ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
        ),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None),
        ("00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_parse_traceparent(value: str | None, ids: tuple[str, str] | None) -> None:
    assert parse_traceparent(value) == ids


@pytest.mark.parametrize(
    ("turn_off", "variable", "captured"),
    [(None, None, False), (None, "true", True), (False, None, True), (True, "true", False), (None, "false", False)],
)
def test_content_capture_rule(turn_off: bool | None, variable: str | None, captured: bool) -> None:
    env = {} if variable is None else {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": variable}
    assert capture_content_from(turn_off, env) is captured


def test_a_step_is_a_no_op_when_tracing_is_off() -> None:
    assert traces.ACTIVE is None
    with step("cache.lookup") as span:
        span.set_attribute("llmswitch.cache.hit", True)


def test_steps_and_attempts_are_children_of_the_request_span() -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from llmswitch.telemetry.callbacks_queue import BoundedQueue
    from llmswitch.telemetry.traces_export import Converter

    memory = InMemorySpanExporter()
    convert = Converter(Resource.create({"service.name": "t"}))
    queue = BoundedQueue("memory", lambda batch: memory.export(convert(batch)), interval=0.01)
    tracing = traces.Tracing([queue], capture_content=False)
    traces.install(tracing)
    rs = tracing.start_request("chat", "g", traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    token = traces.enter(rs)
    try:
        with pytest.raises(RuntimeError), step("guardrail", **{"llmswitch.guardrail": "pii"}):
            raise RuntimeError("blocked")
        header = traces.outbound_traceparent("https://api.example.com:8443/v1/chat/completions")
    finally:
        traces.leave(token)
    assert traces.outbound_traceparent("https://api.example.com/v1") is None  # outside the request: no span
    rs.end(status=502)
    assert tracing.flush(5)
    from opentelemetry.trace import SpanKind

    spans = {s.kind: s for s in memory.get_finished_spans()}
    request, guard, attempt = spans[SpanKind.SERVER], spans[SpanKind.INTERNAL], spans[SpanKind.CLIENT]
    assert guard.parent.span_id == request.context.span_id == attempt.parent.span_id
    assert request.parent.span_id == 0x00F067AA0BA902B7 and request.parent.is_remote
    assert guard.attributes["error.type"] == "RuntimeError" and guard.attributes["llmswitch.guardrail"] == "pii"
    assert (attempt.attributes["server.address"], attempt.attributes["server.port"]) == ("api.example.com", 8443)
    assert header == f"00-4bf92f3577b34da6a3ce929d0e0e4736-{attempt.context.span_id:016x}-01"
    assert request.attributes["error.type"] == "502"
    assert request.status.status_code.name == "ERROR" and attempt.status.status_code.name == "UNSET"


def test_an_unsampled_caller_is_followed_and_nothing_is_exported() -> None:
    exported: list[object] = []
    from llmswitch.telemetry.callbacks_queue import BoundedQueue

    queue = BoundedQueue("memory", exported.extend, interval=0.01)
    tracing = traces.Tracing([queue], capture_content=False)
    rs = tracing.start_request("chat", "g", traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
    header = rs.start_attempt("http://127.0.0.1:1/v1")
    rs.end(status=200)
    assert header.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and header.endswith("-00")
    assert tracing.flush(5) and exported == []
