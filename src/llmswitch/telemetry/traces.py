"""OpenTelemetry spans for each request: one for the request, a child per call sent upstream.

A gateway request (or an SDK ``completion()``) gets a span named ``"{operation} {model}"`` with the
OpenTelemetry GenAI attributes (``gen_ai.operation.name``, ``gen_ai.provider.name``,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` …); each attempt the
router sends (a retry, a failover, a fallback) is a child ``CLIENT`` span, and the upstream request carries
a W3C ``traceparent`` naming that attempt span. A caller's ``traceparent`` makes the request span its child.
Steps inside the gateway (the limiter; the cache and guardrails where they run) get spans through
:func:`step`.

Tracing off costs one module-global check per site. Message content is recorded only when asked
(``turn_off_message_logging: false``, or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``; see
:func:`capture_content_from`); keys and secrets never are.

    >>> with step("cache.lookup") as span:  # no-op when tracing is off
    ...     span.set_attribute("llmswitch.cache.hit", False)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from llmswitch.router.attempts import Attempt
    from llmswitch.telemetry.callbacks_queue import BoundedQueue

# the tracing of this process, installed by the gateway or the SDK's first traced call (None: off)
ACTIVE: Tracing | None = None
# the request being served in this task (None outside a traced request)
_current: ContextVar[RequestSpan | None] = ContextVar("llmswitch_request_span", default=None)

# our provider names as the GenAI conventions spell them (gen_ai.provider.name); others pass as they are
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
    "cohere": "cohere",
    "groq": "groq",
    "deepseek": "deepseek",
    "perplexity": "perplexity",
}


CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def capture_content_from(turn_off_message_logging: bool | None, env: Mapping[str, str]) -> bool:
    """Whether message content goes into exports (spans, callbacks' payloads): never with LiteLLM's
    ``turn_off_message_logging: true``; with it ``false``, or with the GenAI content-capture variable
    true; otherwise (the default) not."""
    if turn_off_message_logging is True:
        return False
    return turn_off_message_logging is False or _truthy(env.get(CAPTURE_CONTENT_ENV))


def provider_name(provider: str | None) -> str:
    return PROVIDER_NAMES.get(provider or "", provider or "unknown")


class Tracing:
    """A tracer provider with its exporters (each behind a bounded queue), and what to record."""

    def __init__(self, provider: TracerProvider, queues: list[BoundedQueue], *, capture_content: bool) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

        from llmswitch import __version__

        self.provider = provider
        self.queues = queues
        self.capture_content = capture_content
        self.tracer = provider.get_tracer("llmswitch", __version__)
        self._kinds = SpanKind
        self._error = Status(StatusCode.ERROR)
        self._in_context = set_span_in_context

    def start_request(
        self,
        operation: str,
        model: str | None,
        *,
        traceparent: str | None = None,
        server: bool = True,
        parent: Any = None,
    ) -> RequestSpan:
        """A request's span: a child of the caller's ``traceparent`` (or of ``parent``, a context)."""
        if traceparent:
            parent = _parent_context(traceparent)
        span = self.tracer.start_span(
            f"{operation} {model}" if model else operation,
            context=parent,
            kind=self._kinds.SERVER if server else self._kinds.CLIENT,
            attributes={"gen_ai.operation.name": operation, "gen_ai.request.model": model or ""},
        )
        return RequestSpan(self, span, operation, model)

    def flush(self, timeout: float = 5.0) -> bool:
        return all(q.flush(timeout) for q in self.queues)

    def shutdown(self, timeout: float = 5.0) -> None:
        for q in self.queues:
            q.close(timeout)

    def stats(self) -> dict[str, dict[str, int]]:
        return {q.name: q.stats() for q in self.queues}


class RequestSpan:
    """The span of one request, and the span of its attempt in flight (one at a time per request)."""

    __slots__ = ("_attempt", "_first_group", "_last", "model", "operation", "span", "tracing")

    def __init__(self, tracing: Tracing, span: Span, operation: str, model: str | None) -> None:
        self.tracing = tracing
        self.span = span
        self.operation = operation
        self.model = model
        self._attempt: Span | None = None
        self._first_group: str | None = None
        self._last: Attempt | None = None

    # ------------------------------------------------------------ ids

    @property
    def trace_id(self) -> str:
        return f"{self.span.get_span_context().trace_id:032x}"

    @property
    def span_id(self) -> str:
        return f"{self.span.get_span_context().span_id:016x}"

    # ------------------------------------------------------------ attempts

    def start_attempt(self, url: str) -> str:
        """Open the span of a call about to be sent to ``url``; the ``traceparent`` header naming it."""
        if self._attempt is not None:  # the previous one was never told (the SDK's retries): it failed
            self._attempt.set_status(self.tracing._error)
            self._attempt.end()
        t = self.tracing
        host, port = _address(url)
        span = t.tracer.start_span(
            f"{self.operation} {self.model}" if self.model else self.operation,
            context=t._in_context(self.span),
            kind=t._kinds.CLIENT,
            attributes={"gen_ai.operation.name": self.operation, "server.address": host, "server.port": port},
        )
        if self.model is not None and self._first_group is None and span.is_recording():
            span.set_attribute("gen_ai.request.model", self.model)  # the SDK's: no router to tell it
        self._attempt = span
        ctx = span.get_span_context()
        return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"

    def attempt_done(self, a: Attempt, usage: Any = None) -> None:
        """The router's record of the attempt in flight: its attributes, then its end."""
        span = self._attempt
        if span is None:
            return
        self._attempt = None
        last = self._last
        self._last = a
        if self._first_group is None:
            self._first_group = a.group  # the router serves the group asked for first, fallbacks after
        if span.is_recording():
            span.update_name(f"{self.operation} {a.model}")
            attrs: dict[str, Any] = {
                "gen_ai.provider.name": provider_name(a.provider),
                "gen_ai.request.model": a.model,
                "llmswitch.deployment": a.deployment,
                "llmswitch.model_group": a.group,
                "llmswitch.attempt": a.number,
                "llmswitch.attempt.outcome": a.outcome,
                # the same deployment again is a retry; a group other than the one asked for, a fallback
                "llmswitch.retry": last is not None and last.deployment == a.deployment,
                "llmswitch.fallback": a.group != self._first_group,
            }
            usage = a.usage or usage
            if usage is not None:
                attrs["gen_ai.usage.input_tokens"] = usage.input_tokens
                attrs["gen_ai.usage.output_tokens"] = usage.output_tokens
            if a.status is not None:
                attrs["http.response.status_code"] = a.status
            if a.error is not None:
                attrs["error.type"] = a.error
                span.set_status(self.tracing._error)
            span.set_attributes(attrs)
        span.end()

    @property
    def last_attempt(self) -> Attempt | None:
        return self._last

    # ------------------------------------------------------------ the end

    def end(
        self,
        *,
        status: int | None = None,
        error: BaseException | None = None,
        usage: Any = None,
        response_model: str | None = None,
        provider: str | None = None,
        cost: float | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        attempt = self._attempt
        if attempt is not None:  # an SDK call's last attempt (the router tells its own)
            self._attempt = None
            if error is not None:
                attempt.set_attribute("error.type", type(error).__name__)
                attempt.set_status(self.tracing._error)
            attempt.end()
        span = self.span
        if span.is_recording():
            last = self._last
            attrs: dict[str, Any] = dict(attributes) if attributes else {}
            prov = provider or (last.provider if last is not None else None)
            if prov:
                attrs["gen_ai.provider.name"] = provider_name(prov)
            model = response_model or (last.model if last is not None and last.outcome == "ok" else None)
            if model:
                attrs["gen_ai.response.model"] = model
            if usage is not None:
                attrs["gen_ai.usage.input_tokens"] = usage.input_tokens
                attrs["gen_ai.usage.output_tokens"] = usage.output_tokens
                if usage.cache_read_tokens:
                    attrs["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_tokens
                if usage.cache_write_tokens:
                    attrs["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_tokens
                if usage.reasoning_tokens:
                    attrs["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
            if cost is not None:
                attrs["llmswitch.cost_usd"] = cost
            if last is not None:
                attrs["llmswitch.attempts"] = last.number
            if status:
                attrs["http.response.status_code"] = status
            if error is not None:
                attrs["error.type"] = type(error).__name__
                span.set_status(self.tracing._error)
            elif status is not None and status >= 500:
                attrs["error.type"] = str(status)
                span.set_status(self.tracing._error)
            span.set_attributes(attrs)
        span.end()


def _address(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "", 0


def _parent_context(traceparent: str) -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, parent span id) of a valid W3C ``traceparent``, else None (for logs, tracing on or off)."""
    if not value or len(value) < 55:
        return None
    parts = value.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    trace_id, span_id = parts[1].lower(), parts[2].lower()
    try:
        if int(trace_id, 16) == 0 or int(span_id, 16) == 0:
            return None
    except ValueError:
        return None
    return trace_id, span_id


# ---------------------------------------------------------------- the request in this task


def enter(rs: RequestSpan) -> Any:
    """Make ``rs`` the request of this task (attempt spans and steps become its children)."""
    return _current.set(rs)


def leave(token: Any) -> None:
    _current.reset(token)


def current() -> RequestSpan | None:
    return _current.get()


def outbound_traceparent(url: str) -> str | None:
    """The transport's hook: open the span of a call about to go upstream; its ``traceparent``."""
    rs = _current.get()
    if rs is None:
        return None
    return rs.start_attempt(url)


def attempt_done(a: Attempt, usage: Any = None) -> None:
    """The router's ``on_attempt`` record of the attempt in flight, for the request of this task
    (``usage``: the attempt's, when the record has none)."""
    rs = _current.get()
    if rs is not None and not a.probe:
        rs.attempt_done(a, usage)


class _NoSpan:
    """What :func:`step` yields when tracing is off: takes attributes, records nothing."""

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        return None


_NO_SPAN = _NoSpan()


@contextlib.contextmanager
def step(name: str, **attributes: Any) -> Iterator[Any]:
    """A span for a step of the current request (``"limiter"``, ``"cache.lookup"``, ``"guardrail"``):
    a child of the request's span when tracing is on, a no-op otherwise. An exception leaving the block
    marks the span as failed and goes on.

        >>> with step("guardrail", **{"llmswitch.guardrail": "pii"}) as span:
        ...     span.set_attribute("llmswitch.guardrail.blocked", False)
    """
    rs = _current.get() if ACTIVE is not None else None
    if rs is None:
        yield _NO_SPAN
        return
    t = rs.tracing
    span = t.tracer.start_span(
        name, context=t._in_context(rs.span), kind=t._kinds.INTERNAL, attributes=attributes or None
    )
    try:
        yield span
    except BaseException as exc:
        span.set_attribute("error.type", type(exc).__name__)
        span.set_status(t._error)
        raise
    finally:
        span.end()


def install(tracing: Tracing | None) -> None:
    """Make ``tracing`` this process's (None: off); the transport then names attempt spans upstream."""
    global ACTIVE
    from llmswitch import transport

    previous = ACTIVE
    ACTIVE = tracing
    transport.trace_header = outbound_traceparent if tracing is not None else None
    if previous is not None and previous is not tracing:
        previous.shutdown(timeout=1.0)
