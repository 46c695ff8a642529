"""The gateway's callbacks, from LiteLLM's ``success_callback``, ``failure_callback`` and ``callbacks``:

=====================  ==========================================================================
``"otel"``             OpenTelemetry spans over OTLP (``OTEL_*`` variables), see :mod:`.traces`
``"langfuse"``         the same spans to Langfuse's OTLP endpoint (``LANGFUSE_*`` variables)
``"prometheus"``       metrics (``/metrics``); accepted here, served by the metrics module
``"generic_api"``      JSON POSTs of standard logging payloads, batched, to ``GENERIC_LOGGER_ENDPOINT``
(also ``"webhook"``)
``"module.instance"``  an object with LiteLLM's ``CustomLogger`` hooks (:mod:`.callbacks_custom`)
=====================  ==========================================================================

plus ``general_settings.alerting`` (:mod:`.alerts`). The server makes one call at each end of a request
(:meth:`Telemetry.begin`, :meth:`Telemetry.end`), the router tells each attempt (:meth:`Telemetry.attach`);
everything else runs off the request path.

    >>> tel = build_telemetry(config.server.telemetry)  # doctest: +SKIP   (callbacks_build)
    >>> tel.attach(router)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from llmswitch.config.telemetry_fields import (
    METRICS_CALLBACKS,
    SUPPORTED_CALLBACKS,
    TRACE_CALLBACKS,
    WEBHOOK_CALLBACKS,
)
from llmswitch.server.accesslog import cache_status
from llmswitch.telemetry import spans, traces
from llmswitch.telemetry.callbacks_payload import standard_payload

if TYPE_CHECKING:
    from llmswitch.router.attempts import Attempt
    from llmswitch.server.http import Request
    from llmswitch.telemetry.alerts import Alerts
    from llmswitch.telemetry.callbacks_custom import CustomCallbacks
    from llmswitch.telemetry.webhook import WebhookSender

log = logging.getLogger("llmswitch.telemetry")

TRACE_NAMES = TRACE_CALLBACKS
WEBHOOK_NAMES = WEBHOOK_CALLBACKS
METRICS_NAMES = METRICS_CALLBACKS
KNOWN = SUPPORTED_CALLBACKS

# the state of the request being served in this task, for the router's attempt records
_state: ContextVar[dict[str, Any] | None] = ContextVar("llmswitch_request_state", default=None)


def callback_names(*lists: Sequence[Any] | None) -> set[str]:
    """The built-in callback names across LiteLLM's lists (lower-cased; custom dotted paths left out)."""
    out: set[str] = set()
    for names in lists:
        for name in names or ():
            if isinstance(name, str) and "." not in name:
                out.add(name.strip().lower())
    return out


def operation_of(method: str, path: str) -> str | None:
    """The GenAI operation of a route (``"chat"``, ``"embeddings"``), or None for routes not traced."""
    if method != "POST":
        return None
    if path.endswith(("/chat/completions", "/v1/messages", ":generateContent", ":streamGenerateContent")):
        return "chat"
    if path.endswith(("/embeddings", ":embedContent", ":batchEmbedContents")):
        return "embeddings"
    return None


class Telemetry:
    """Traces, callbacks and alerts of one gateway process."""

    def __init__(
        self,
        *,
        tracing: traces.Tracing | None = None,
        custom: CustomCallbacks | None = None,
        webhook: WebhookSender | None = None,
        webhook_on: tuple[bool, bool] = (True, True),
        alerts: Alerts | None = None,
        content: bool = False,
        metrics: bool = False,
    ) -> None:
        self.tracing = tracing
        self.custom = custom if custom else None
        self.webhook = webhook
        self._webhook_success, self._webhook_failure = webhook_on
        self.alerts = alerts
        self.content = content
        self.metrics = metrics
        """``"prometheus"`` named in a callback list: metrics on."""
        self._router: Any = None
        self._bases: dict[str, str | None] = {}
        self._logs = self.custom is not None or webhook is not None

    # ------------------------------------------------------------ wiring

    def attach(self, router: Any) -> None:
        """Be told about every attempt the router sends (after any ``on_attempt`` hook it has)."""
        self._router = router
        previous: Callable[[Attempt], None] | None = router.on_attempt
        hook = self._on_attempt
        if previous is None:
            router.on_attempt = hook
        else:

            def both(a: Attempt) -> None:
                previous(a)
                hook(a)

            router.on_attempt = both

    def _on_attempt(self, a: Attempt) -> None:
        state = _state.get()
        if state is not None and not a.probe:
            trail = state.get("trail")
            if trail is None:
                state["trail"] = [a]
            else:
                trail.append(a)
        if self.tracing is not None:
            # a relayed stream's usage is read by the server, not the router: the request's is the attempt's
            usage = state.get("usage") if state is not None and a.usage is None and a.outcome == "ok" else None
            traces.attempt_done(a, usage)
        if self.alerts is not None:
            self.alerts.attempt(a)

    @property
    def pre_call_hooks(self) -> bool:
        return self.custom is not None and bool(self.custom.pre_call)

    # ------------------------------------------------------------ a request

    def begin(self, request: Request) -> Any:
        """At a request's start (``server/app.py``): its span, and its state for the attempt records."""
        operation = operation_of(request.method, request.path)
        if operation is None:
            return None
        state = request.state
        state["started_at"] = time.time()
        parent = request.headers.get("traceparent")
        tracing = self.tracing
        if tracing is None:
            if parent is not None:
                ids = spans.parse_traceparent(parent)
                if ids is not None:
                    state["trace_id"] = ids[0]
            return (_state.set(state), None)
        rs = tracing.start_request(operation, None, traceparent=parent)
        state["trace"] = rs
        state["trace_id"] = rs.trace_id
        state["span_id"] = rs.span_id
        return (_state.set(state), traces.enter(rs))

    def end(self, request: Request, status: int, token: Any) -> None:
        """At a request's end, after its answer: end its span, queue its callbacks and alerts."""
        if token is None:
            return
        state_token, span_token = token
        with contextlib.suppress(ValueError):  # reset in another context: the request's own ended anyway
            _state.reset(state_token)
            if span_token is not None:
                traces.leave(span_token)
        state = request.state
        error = state.get("error")
        if self.alerts is not None and error is not None and getattr(error, "type", None) == "budget_exceeded":
            self.alerts.budget_refused(error, state.get("principal"))
        rs: traces.RequestSpan | None = state.get("trace")
        body: Any = None
        if rs is not None:
            model = state.get("model")
            attrs: dict[str, Any] = {}
            if model:
                rs.span.update_name(f"{rs.operation} {model}")
                attrs["gen_ai.request.model"] = model
            if self.content:
                body = _body(request)
                content = standard_content(body)
                if content is not None:
                    from llmswitch.dialects._json import dumps

                    attrs["gen_ai.input.messages"] = dumps(content).decode()
            cache = cache_status(state)
            if cache is not None:
                attrs["llmswitch.cache"] = cache
            rs.end(status=status, error=error, usage=state.get("usage"), cost=state.get("cost"), attributes=attrs)
        if self._logs:
            self._log(request, status, error, body)

    def _log(self, request: Request, status: int, error: Any, body: Any) -> None:
        state = request.state
        ok = error is None and status < 400
        wants_webhook = self.webhook is not None and (self._webhook_success if ok else self._webhook_failure)
        custom = self.custom
        wants_custom = custom is not None and bool((custom.success or custom.post_call) if ok else custom.failure)
        if not (wants_webhook or wants_custom):
            return
        if body is None:
            body = _body(request)
        started_at = state.get("started_at") or time.time()
        ended_at = time.time()
        op = operation_of(request.method, request.path)
        payload = standard_payload(
            state,
            status=status,
            started_at=started_at,
            ended_at=ended_at,
            body=body,
            content=self.content,
            api_base=self._api_base(state.get("model"), state.get("deployment")),
            trace_id=state.get("trace_id"),
            call_type="aembedding" if op == "embeddings" else "acompletion",
        )
        if wants_webhook and self.webhook is not None:
            self.webhook.send(payload)
        if wants_custom and custom is not None:
            from datetime import datetime

            from llmswitch.telemetry.callbacks_custom import KeyInfo

            kwargs = {
                "model": payload["model_group"],
                "messages": payload["messages"],
                "litellm_call_id": payload["id"],
                "call_type": payload["call_type"],
                "stream": payload["stream"],
                "response_cost": payload["response_cost"],
                "standard_logging_object": payload,
                "litellm_params": {"metadata": payload["metadata"]},
                "user_api_key_dict": KeyInfo(state.get("principal")),
            }
            response = None
            if ok:
                response = {
                    "id": payload["id"],
                    "model": payload["model"],
                    "usage": {
                        "prompt_tokens": payload["prompt_tokens"],
                        "completion_tokens": payload["completion_tokens"],
                        "total_tokens": payload["total_tokens"],
                    },
                }
            else:
                kwargs["exception"] = error
            custom.notify(
                ok,
                kwargs,
                response,
                datetime.fromtimestamp(started_at),
                datetime.fromtimestamp(ended_at),
            )

    def _api_base(self, group: Any, deployment: Any) -> str | None:
        if not deployment or self._router is None:
            return None
        if deployment in self._bases:
            return self._bases[deployment]
        base = None
        with contextlib.suppress(Exception):
            for t in self._router.deployments(group):
                if t.id == deployment:
                    base = t.endpoint.api_base if t.endpoint is not None else None
                    break
        if len(self._bases) < 10_000:
            self._bases[deployment] = base
        return base

    async def pre_call(self, principal: Any, body: Any, call_type: str = "completion") -> Any:
        """LiteLLM's ``async_pre_call_hook`` of each custom callback, on the request path: the body it
        returns replaces the request's; an exception refuses the request with a 400 naming it."""
        if self.custom is None or not isinstance(body, dict):
            return body
        try:
            return await self.custom.run_pre_call(principal, body, call_type)
        except Exception as exc:
            from llmswitch.errors import APIError, APIStatusError

            if isinstance(exc, APIError):
                raise
            status = getattr(exc, "status_code", None)
            raise APIStatusError(
                f"refused by a pre-call hook: {getattr(exc, 'detail', None) or exc}",
                status_code=status if isinstance(status, int) and 400 <= status < 600 else 400,
                provider="llmswitch",
                error_type="invalid_request_error",
            ) from exc

    # ------------------------------------------------------------ lifecycle

    async def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (``timeout`` at most each) and stop."""
        import asyncio

        if self.custom is not None:
            await self.custom.drain(timeout)
        closers: list[Callable[[], None]] = []
        if self.tracing is not None:
            closers.append(lambda: self.tracing.shutdown(timeout) if self.tracing is not None else None)
        if self.webhook is not None:
            webhook = self.webhook
            closers.append(lambda: webhook.close(timeout))
        if self.alerts is not None:
            alerts = self.alerts
            closers.append(lambda: alerts.close(timeout))
        for close in closers:
            await asyncio.to_thread(close)
        if self.tracing is not None and traces.ACTIVE is self.tracing:
            traces.install(None)

    def stats(self) -> dict[str, Any]:
        """Exported, dropped and failed counts per exporter."""
        out: dict[str, Any] = {}
        if self.tracing is not None:
            out.update(self.tracing.stats())
        if self.webhook is not None:
            out[self.webhook.queue.name] = self.webhook.queue.stats()
        if self.custom is not None:
            out["custom"] = {"dropped": self.custom.dropped, "failed": self.custom.failed}
        return out


def standard_content(body: Any) -> Any:
    from llmswitch.telemetry.callbacks_payload import _content

    return _content(body)


def _body(request: Request) -> Any:
    from llmswitch.dialects._json import loads

    try:
        return loads(request.body) if request.body else None
    except Exception:
        return None
