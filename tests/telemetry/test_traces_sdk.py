"""llmswitch.completion() traced as the gateway's requests are, once ``llmswitch.callbacks`` names "otel":
a span per call, a child per attempt, the attempt's traceparent upstream, the application's current span as
the parent."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
from receivers import OTLPReceiver, Span

import llmswitch
from llmswitch.telemetry import traces
from llmswitch.testing import FakeUpstream, Reply

PROMPT = "count the pelicans 5e2a"
KEY = "sk-sdk-upstream-key-77aa10"


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
        monkeypatch.setattr(llmswitch, "callbacks", ["otel"], raising=False)
        yield rx


def test_a_completion_is_a_span_with_a_child_per_attempt(up: FakeUpstream, collector: OTLPReceiver) -> None:
    up.script(Reply(status=429, retry_after=0.01), Reply(text="three"))
    r = llmswitch.completion(
        "openai/gpt-4o-mini", [{"role": "user", "content": PROMPT}], api_base=up.openai_base, api_key=KEY
    )
    assert r.choices[0].message.content == "three"
    assert traces.ACTIVE is not None
    spans = collector.wait_spans(3)
    (call,) = [s for s in spans if s.parent_id == ""]
    attempts = [s for s in spans if s.parent_id == call.span_id]
    assert call.kind == Span.CLIENT and call.name == "chat gpt-4o-mini"
    assert call.attributes["gen_ai.provider.name"] == "openai"
    assert call.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert call.attributes["gen_ai.usage.output_tokens"] > 0
    assert len(attempts) == 2 and {s.kind for s in attempts} == {Span.CLIENT}
    # the first attempt (the 429) is marked failed; each upstream request named its own attempt span
    assert sorted(s.status_code for s in attempts) == [0, 2]
    sent = {r.headers["traceparent"].split("-")[2] for r in up.requests}
    assert sent == {s.span_id for s in attempts}
    exported = collector.raw()
    assert PROMPT.encode() not in exported and KEY.encode() not in exported


def test_the_applications_current_span_is_the_parent(up: FakeUpstream, collector: OTLPReceiver) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    app_tracer = TracerProvider().get_tracer("app")

    async def main() -> str:
        with app_tracer.start_as_current_span("handle order") as span:
            await llmswitch.acompletion(
                "openai/gpt-4o-mini", [{"role": "user", "content": "hi"}], api_base=up.openai_base, api_key=KEY
            )
            return f"{span.get_span_context().span_id:016x}"

    parent = asyncio.run(main())
    assert traces.ACTIVE is not None
    traces.ACTIVE.flush()  # the loop that recorded the spans has ended: they go out now (or at exit)
    spans = collector.wait_spans(2)
    (call,) = [s for s in spans if s.name == "chat gpt-4o-mini" and s.parent_id == parent]
    assert call.attributes["gen_ai.operation.name"] == "chat"


def test_a_stream_ends_its_span_when_it_ends(up: FakeUpstream, collector: OTLPReceiver) -> None:
    chunks = list(
        llmswitch.completion(
            "openai/gpt-4o-mini",
            [{"role": "user", "content": "a b c"}],
            api_base=up.openai_base,
            api_key=KEY,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks
    spans = collector.wait_spans(2)
    (call,) = [s for s in spans if s.parent_id == ""]
    assert call.attributes["gen_ai.response.model"] == "gpt-4o-mini"
    assert call.attributes["gen_ai.usage.output_tokens"] > 0


def test_without_a_tracing_callback_nothing_is_traced(up: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llmswitch, "callbacks", [], raising=False)
    llmswitch.completion(
        "openai/gpt-4o-mini", [{"role": "user", "content": "hi"}], api_base=up.openai_base, api_key=KEY
    )
    assert traces.ACTIVE is None
    assert "traceparent" not in up.requests[0].headers


def test_exporting_spans_leaves_the_global_random_state_alone(
    up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the OTLP exporter draws a backoff before every attempt, a successful one too; llmswitch's exporter
    # thread must draw it from llmswitch's own generator, not under an application's seeded `random`
    with OTLPReceiver(unavailable_first=1) as rx:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        monkeypatch.setattr(llmswitch, "callbacks", ["otel"], raising=False)
        random.seed(99)
        before = random.getstate()
        llmswitch.completion(
            "openai/gpt-4o-mini", [{"role": "user", "content": "hi"}], api_base=up.openai_base, api_key=KEY
        )
        # the first export is answered 503 and retried after its backoff: both attempts drew a backoff
        rx.wait(lambda: len(rx.received) >= 2)
        assert random.getstate() == before
        assert len(rx.spans()) >= 2  # the retried request carried the spans again
