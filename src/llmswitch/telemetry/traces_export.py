"""Where spans go: OTLP (the ``"otel"`` callback, configured by the standard ``OTEL_*`` variables) and
Langfuse (the ``"langfuse"`` callback, through Langfuse's OpenTelemetry endpoint ``/api/public/otel``).

Each exporter runs behind its own :class:`~llmswitch.telemetry.callbacks_queue.BoundedQueue`, not the
SDK's ``BatchSpanProcessor``: a full queue drops spans with a counter (and a warning a minute), and an
export never runs on the event loop.

    >>> tracing = build_tracing(otel=True, langfuse=False, capture_content=False)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from llmswitch.errors import ConfigError
from llmswitch.telemetry.callbacks_queue import BoundedQueue
from llmswitch.telemetry.traces import Tracing, _truthy

log = logging.getLogger("llmswitch.telemetry")

DEFAULT_LANGFUSE_HOST = "https://cloud.langfuse.com"
LANGFUSE_OTLP_PATH = "/api/public/otel/v1/traces"


def build_tracing(
    *, otel: bool, langfuse: bool, capture_content: bool, env: Mapping[str, str] | None = None
) -> Tracing | None:
    """A :class:`Tracing` exporting to what the callbacks name, or None when none is on (or
    ``OTEL_SDK_DISABLED=true``). A missing Langfuse key is a :class:`ConfigError`.
    Imported only when a callback needs it (see :func:`llmswitch.telemetry.callbacks.build_telemetry`)."""
    env = os.environ if env is None else env
    if not (otel or langfuse) or _truthy(env.get("OTEL_SDK_DISABLED")):
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by Resource.create
    resource = Resource.create({} if env.get("OTEL_SERVICE_NAME") else {"service.name": "llmswitch"})
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER / _ARG
    queues: list[BoundedQueue] = []
    exporters: list[tuple[str, Any]] = []
    if otel:
        exporter = _otel_exporter(env)
        if exporter is not None:
            exporters.append(("otel-spans", exporter))
    if langfuse:
        exporters.append(("langfuse-spans", _langfuse_exporter(env)))
    for name, exporter in exporters:
        queue = _queue_for(name, exporter, env)
        provider.add_span_processor(_Queued(queue))
        queues.append(queue)
    _quiet_exporter_logs()
    return Tracing(provider, queues, capture_content=capture_content)


def _otel_exporter(env: Mapping[str, str]) -> Any:
    kind = (env.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")[0].strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if kind != "otlp":
        raise ConfigError(f"OTEL_TRACES_EXPORTER={kind!r} is not supported here: use otlp, console or none")
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "").lower()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError as exc:
            raise ConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc installed"
            ) from exc
        return GrpcExporter()
    if protocol not in ("", "http/protobuf"):
        raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use http/protobuf or grpc")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # endpoint, headers, timeout, compression and certificates from the OTEL_EXPORTER_OTLP_* variables
    return OTLPSpanExporter()


def langfuse_endpoint(env: Mapping[str, str]) -> str:
    host = env.get("LANGFUSE_HOST") or env.get("LANGFUSE_BASE_URL") or DEFAULT_LANGFUSE_HOST
    if "://" not in host:
        host = "http://" + host
    return host.rstrip("/") + LANGFUSE_OTLP_PATH


def _langfuse_exporter(env: Mapping[str, str]) -> Any:
    public, secret = env.get("LANGFUSE_PUBLIC_KEY"), env.get("LANGFUSE_SECRET_KEY")
    if not public or not secret:
        raise ConfigError("the 'langfuse' callback needs LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY set")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    token = base64.b64encode(f"{public}:{secret}".encode()).decode()
    return OTLPSpanExporter(endpoint=langfuse_endpoint(env), headers={"Authorization": f"Basic {token}"})


def _queue_for(name: str, exporter: Any, env: Mapping[str, str]) -> BoundedQueue:
    from opentelemetry.sdk.trace.export import SpanExportResult

    def export(batch: list[Any]) -> None:
        if exporter.export(batch) is not SpanExportResult.SUCCESS:
            raise ConnectionError("the collector did not take the batch")

    return BoundedQueue(
        name,
        export,
        max_queue=_int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
        batch_size=_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        interval=_int(env, "OTEL_BSP_SCHEDULE_DELAY", 1000) / 1000,
    )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a positive integer, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {raw!r}")
    return value


def _quiet_exporter_logs() -> None:
    # the exporter logs each failed batch; the queue counts them and warns once a minute instead
    for name in ("opentelemetry.exporter", "opentelemetry.sdk._shared_internal"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


class _Queued(SpanProcessor):
    """A span processor that hands ended spans to a bounded queue (nothing else on the request path)."""

    def __init__(self, queue: BoundedQueue) -> None:
        self.queue = queue

    def on_end(self, span: Any) -> None:
        if span.context.trace_flags.sampled:
            self.queue.offer(span)

    def shutdown(self) -> None:
        self.queue.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.queue.flush(timeout_millis / 1000)
