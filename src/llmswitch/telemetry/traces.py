"""OpenTelemetry spans for each request: one for the request, a child per call sent upstream.

A gateway request (or an SDK ``completion()``) gets a span named ``"{operation} {model}"`` with the
OpenTelemetry GenAI attributes (``gen_ai.operation.name``, ``gen_ai.provider.name``,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` …); each attempt the
router sends (a retry, a failover, a fallback) is a child ``CLIENT`` span, and the upstream request carries
a W3C ``traceparent`` naming that attempt span. A caller's ``traceparent`` makes the request span its child.
Steps inside the gateway (the limiter; the cache and guardrails where they run) get spans through
:func:`step`.

Spans are recorded on the request path as small plain records (ids, times, attributes); the exporter's
thread turns them into the OpenTelemetry SDK's ``ReadableSpan`` and hands them to the official OTLP
exporter (:mod:`.traces_export`). The SDK's live ``Span`` (a lock, attribute validation and a processor
call per attribute set) would cost the event loop several times more per request. Sampling follows the
caller's ``traceparent`` flag; a request without one is decided by the SDK's sampler from
``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``.

Tracing off costs one module-global check per site. Message content is recorded only when asked
(``turn_off_message_logging: false``, or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``; see
:func:`capture_content_from`); keys and secrets never are.

    >>> with step("cache.lookup") as span:  # no-op when tracing is off
    ...     span.set_attribute("llmswitch.cache.hit", False)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from llmswitch.procid import RNG
from llmswitch.telemetry.spans import Kind, SpanRecord, _parse

if TYPE_CHECKING:
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


# ended spans wait this long on the event loop, then are encoded this many at a time per callback
ENCODE_DELAY_S = 0.05
ENCODE_SLICE = 256


class Tracing:
    """Where this process's spans go and what to record.

    With ``encode`` (span records -> an OTLP request's bytes), ended spans are encoded on the event loop,
    ``ENCODE_SLICE`` at a time in callbacks of their own, and each queue gets the bytes to send: the
    queues' threads then only wait on sockets. Encoding in those threads instead costs the event loop
    more than the encoding itself, as the two threads take the GIL from each other at every system call.
    Without ``encode`` the queues get the span records.
    """

    def __init__(
        self,
        queues: list[BoundedQueue],
        *,
        capture_content: bool,
        sampler: Callable[[int, str], bool] | None = None,
        encode: Callable[[list[SpanRecord]], Any] | None = None,
    ) -> None:
        self.queues = queues
        self.capture_content = capture_content
        # decides a root span (no caller's traceparent): trace id and name -> sampled
        self._sample = sampler or (lambda trace_id, name: True)
        self._encode = encode
        self._pending: list[SpanRecord] = []
        self._scheduled: asyncio.AbstractEventLoop | None = None  # the loop an encoding callback waits on
        self._lock = threading.Lock()  # flush() may encode from another thread than the loop's

    def start_request(
        self,
        operation: str,
        model: str | None,
        *,
        traceparent: str | None = None,
        server: bool = True,
        parent: tuple[int, int, bool] | None = None,
    ) -> RequestSpan:
        """A request's span: a child of the caller's ``traceparent`` (or of ``parent``: trace id, span id,
        sampled), else the root of a new trace."""
        name = f"{operation} {model}" if model else operation
        remote = False
        if traceparent:
            parsed = _parse(traceparent)
            if parsed is not None:
                parent, remote = parsed, True
        if parent is not None:
            trace_id, parent_id, sampled = parent
        else:
            trace_id, parent_id = RNG.getrandbits(128) or 1, 0
            sampled = self._sample(trace_id, name)
        attrs = {"gen_ai.operation.name": operation}
        if model:
            attrs["gen_ai.request.model"] = model
        span = SpanRecord(
            name, "server" if server else "client", trace_id, parent_id, sampled, attrs, remote_parent=remote
        )
        return RequestSpan(self, span, operation, model)

    def child(self, parent: SpanRecord, name: str, kind: Kind, attributes: dict[str, Any] | None = None) -> SpanRecord:
        return SpanRecord(name, kind, parent.trace_id, parent.span_id, parent.sampled, attributes)

    def finish(self, span: SpanRecord) -> None:
        """End ``span`` and hand it to the exporters (sampled spans only)."""
        span.end_ns = time.time_ns()
        if not span.sampled:
            return
        if self._encode is None:
            for q in self.queues:
                q.offer(span)
            return
        self._pending.append(span)
        scheduled = self._scheduled
        if scheduled is None or scheduled.is_closed():  # (a loop that ended, e.g. an SDK user's asyncio.run)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop here: encode now
                self._encode_pending(everything=True)
                return
            self._scheduled = loop
            loop.call_later(ENCODE_DELAY_S, self._encode_slice)

    def _encode_slice(self) -> None:
        self._encode_pending(everything=False)
        if self._pending:
            asyncio.get_running_loop().call_soon(self._encode_slice)
        else:
            self._scheduled = None

    def _encode_pending(self, *, everything: bool) -> None:
        encode = self._encode
        assert encode is not None
        while True:
            with self._lock:
                batch = self._pending[:ENCODE_SLICE]
                del self._pending[:ENCODE_SLICE]
                if not batch:
                    return
                try:
                    data = encode(batch)
                except Exception:  # a value the encoder refuses: that batch is lost, never the request
                    for q in self.queues:
                        q.failed += len(batch)
                    data = None
            if data is not None:
                for q in self.queues:
                    q.offer(data)
            if not everything:
                return

    def flush(self, timeout: float = 5.0) -> bool:
        if self._encode is not None:
            self._encode_pending(everything=True)
        return all(q.flush(timeout) for q in self.queues)

    def shutdown(self, timeout: float = 5.0) -> None:
        if self._encode is not None:
            self._encode_pending(everything=True)
        for q in self.queues:
            q.close(timeout)

    def stats(self) -> dict[str, dict[str, int]]:
        return {q.name: q.stats() for q in self.queues}


class RequestSpan:
    """The span of one request, and the span of its attempt in flight (one at a time per request)."""

    __slots__ = ("_attempt", "_first_group", "_last", "model", "operation", "span", "tracing")

    def __init__(self, tracing: Tracing, span: SpanRecord, operation: str, model: str | None) -> None:
        self.tracing = tracing
        self.span = span
        self.operation = operation
        self.model = model
        self._attempt: SpanRecord | None = None
        self._first_group: str | None = None
        self._last: Attempt | None = None

    # ------------------------------------------------------------ ids

    @property
    def trace_id(self) -> str:
        return f"{self.span.trace_id:032x}"

    @property
    def span_id(self) -> str:
        return f"{self.span.span_id:016x}"

    # ------------------------------------------------------------ attempts

    def start_attempt(self, url: str) -> str:
        """Open the span of a call about to be sent to ``url``; the ``traceparent`` header naming it."""
        t = self.tracing
        if self._attempt is not None:  # the previous one was never told (the SDK's retries): it failed
            self._attempt.fail()
            t.finish(self._attempt)
        attrs: dict[str, Any] | None = None
        if self.span.sampled:
            host, port = _address(url)
            attrs = {"gen_ai.operation.name": self.operation, "server.address": host, "server.port": port}
            if self.model is not None and self._first_group is None:
                attrs["gen_ai.request.model"] = self.model  # the SDK's: no router to tell it
        span = t.child(self.span, f"{self.operation} {self.model}" if self.model else self.operation, "client", attrs)
        self._attempt = span
        return span.traceparent

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
        if span.sampled:
            span.name = f"{self.operation} {a.model}"
            attrs = span.attributes
            attrs["gen_ai.provider.name"] = provider_name(a.provider)
            attrs["gen_ai.request.model"] = a.model
            attrs["llmswitch.deployment"] = a.deployment
            attrs["llmswitch.model_group"] = a.group
            attrs["llmswitch.attempt"] = a.number
            # the same deployment again is a retry; a group other than the one asked for, a fallback
            if last is not None and last.deployment == a.deployment:
                attrs["llmswitch.retry"] = True
            if a.group != self._first_group:
                attrs["llmswitch.fallback"] = True
            usage = a.usage or usage
            if usage is not None:
                attrs["gen_ai.usage.input_tokens"] = usage.input_tokens
                attrs["gen_ai.usage.output_tokens"] = usage.output_tokens
            if a.status is not None:
                attrs["http.response.status_code"] = a.status
            if a.error is not None:
                attrs["error.type"] = a.error
                span.error = True
            elif a.outcome != "ok":
                attrs["error.type"] = a.outcome
                span.error = True
        self.tracing.finish(span)

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
        t = self.tracing
        attempt = self._attempt
        if attempt is not None:  # an SDK call's last attempt (the router tells its own)
            self._attempt = None
            if error is not None:
                attempt.set_attribute("error.type", type(error).__name__)
                attempt.error = True
            t.finish(attempt)
        span = self.span
        if span.sampled:
            last = self._last
            attrs = span.attributes
            if attributes:
                attrs.update(attributes)
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
                span.error = True
            elif status is not None and status >= 500:
                attrs["error.type"] = str(status)
                span.error = True
        t.finish(span)


def _address(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "", 0


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


_NO_SPAN = SpanRecord("", "internal", 1, 0, False)  # what :func:`step` yields when tracing is off


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
    span = t.child(rs.span, name, "internal", dict(attributes) if attributes else None)
    try:
        yield span
    except BaseException as exc:
        span.set_attribute("error.type", type(exc).__name__)
        span.error = True
        raise
    finally:
        t.finish(span)


def install(tracing: Tracing | None) -> None:
    """Make ``tracing`` this process's (None: off); the transport then names attempt spans upstream."""
    global ACTIVE
    from llmswitch import transport

    previous = ACTIVE
    ACTIVE = tracing
    transport.trace_header = outbound_traceparent if tracing is not None else None
    if tracing is not None:
        import atexit

        atexit.register(tracing.shutdown, 2.0)  # an SDK user's script: what it traced goes out as it exits
    if previous is not None and previous is not tracing:
        import atexit

        atexit.unregister(previous.shutdown)
        previous.shutdown(timeout=1.0)
