"""Our OTLP protobuf writer against the official encoder: what each writes decodes (opentelemetry-proto) to
the same request, for spans of every kind, with and without a parent, failed or not, with attributes of
every type we record."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource

from llmswitch import __version__
from llmswitch.telemetry.spans import SpanRecord
from llmswitch.telemetry.traces_export import Converter
from llmswitch.telemetry.traces_otlp import Encoder


def records() -> list[SpanRecord]:
    root = SpanRecord(
        "chat observed",
        "server",
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
        True,
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "observed"},
        remote_parent=True,
    )
    root.set_attributes(
        {
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 300,
            "llmswitch.cost_usd": 1.25e-05,
            "llmswitch.retry": True,
            "llmswitch.fallback": False,
            "big": 2**62,
            "negative": -3,
            "unicode": "héllo ✓",
            "long": "x" * 300,
        }
    )
    root.error = True
    attempt = SpanRecord("chat gpt-4o-mini", "client", root.trace_id, root.span_id, True, {"server.port": 443})
    step = SpanRecord("limiter", "internal", 1, 0, True)
    for r in (root, attempt, step):
        r.end_ns = r.start_ns + 1_234_567
    return [root, attempt, step]


def decoded(data: bytes) -> ExportTraceServiceRequest:
    msg = ExportTraceServiceRequest()
    msg.ParseFromString(data)
    return msg


def test_our_writer_decodes_to_what_the_official_encoder_writes() -> None:
    resource = Resource.create({"service.name": "llmswitch"})
    spans = records()
    ours = decoded(Encoder(dict(resource.attributes), "llmswitch", __version__).encode(spans))
    official = decoded(encode_spans(Converter(resource)(spans)).SerializePartialToString())
    assert ours == official
    (span, *_) = ours.resource_spans[0].scope_spans[0].spans
    assert span.status.code == 2 and span.parent_span_id.hex() == "00f067aa0ba902b7"
    assert {a.key: a.value.WhichOneof("value") for a in span.attributes}["llmswitch.cost_usd"] == "double_value"
