"""The SDK's spans: ``llmswitch.completion()`` traced as the gateway traces a request.

Tracing is on for the SDK when the process installed it (a gateway in the same process), or when the
module-wide lists LiteLLM users set name a tracing callback:

    >>> import llmswitch
    >>> llmswitch.callbacks = ["otel"]  # OTEL_EXPORTER_OTLP_ENDPOINT etc. as for the gateway
    >>> r = llmswitch.completion("openai/gpt-4o-mini", [{"role": "user", "content": "hi"}])  # doctest: +SKIP

One span per call (``CLIENT``, ``"chat {model}"``), a child per attempt sent upstream, with the upstream
request carrying its ``traceparent``; the caller's current OpenTelemetry span, if any, is the parent.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from llmswitch.telemetry import traces

log = logging.getLogger("llmswitch.telemetry")

_untraced: tuple[Any, ...] | None = None


def sdk_tracing() -> traces.Tracing | None:
    """The tracing the SDK's calls use now (None: off)."""
    active = traces.ACTIVE
    if active is not None:
        return active
    import llmswitch

    lists = (
        getattr(llmswitch, "callbacks", None),
        getattr(llmswitch, "success_callback", None),
        getattr(llmswitch, "failure_callback", None),
    )
    if not any(lists):
        return None
    global _untraced
    key = tuple(tuple(x) if isinstance(x, list | tuple) else x for x in lists)
    if key == _untraced:  # these lists name no tracing callback: not worth reading again
        return None
    from llmswitch.telemetry.callbacks import TRACE_NAMES, callback_names

    names = callback_names(*(x if isinstance(x, list | tuple) else () for x in lists))
    if not names & TRACE_NAMES:
        _untraced = key
        return None
    import os

    from llmswitch.errors import ConfigError
    from llmswitch.telemetry.traces import capture_content_from
    from llmswitch.telemetry.traces_export import build_tracing

    off = getattr(llmswitch, "turn_off_message_logging", None)
    try:
        tracing = build_tracing(
            otel=bool(names & {"otel", "opentelemetry"}),
            langfuse=bool(names & {"langfuse", "langfuse_otel"}),
            capture_content=capture_content_from(off if isinstance(off, bool) else None, os.environ),
        )
    except ConfigError as exc:  # said once; the calls themselves go on untraced
        log.warning("llmswitch.callbacks: tracing left off: %s", exc)
        _untraced = key
        return None
    traces.install(tracing)
    return tracing


class SDKSpan:
    """A traced SDK call: :meth:`done` or :meth:`failed` once, when its answer (or stream) ends."""

    __slots__ = ("_token", "rs")

    def __init__(self, rs: traces.RequestSpan, token: Any) -> None:
        self.rs = rs
        self._token = token

    def sent(self) -> None:
        """The calls upstream are over (a stream's opened): later spans are not this call's children."""
        token, self._token = self._token, None
        if token is not None:
            with contextlib.suppress(ValueError):
                traces.leave(token)

    def done(self, *, usage: Any = None, response_model: str | None = None, cost: float | None = None) -> None:
        self.sent()
        self.rs.end(usage=usage, response_model=response_model, cost=cost)

    def failed(self, error: BaseException) -> None:
        self.sent()
        self.rs.end(error=error)


def begin(operation: str, model: str, provider: str) -> SDKSpan | None:
    """The span of an SDK call about to be sent (None when tracing is off)."""
    tracing = sdk_tracing()
    if tracing is None:
        return None
    rs = tracing.start_request(operation, model, traceparent=None, server=False, parent=_caller_context())
    rs.span.set_attribute("gen_ai.provider.name", traces.provider_name(provider))
    rs.span.kind = "client"
    return SDKSpan(rs, traces.enter(rs))


def _caller_context() -> tuple[int, int, bool] | None:
    """(trace id, span id, sampled) of the application's own current OpenTelemetry span, if it has one."""
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return ctx.trace_id, ctx.span_id, ctx.trace_flags.sampled
