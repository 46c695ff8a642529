"""Where spans go: OTLP (the ``"otel"`` callback, configured by the standard ``OTEL_*`` variables) and
Langfuse (the ``"langfuse"`` callback, through Langfuse's OpenTelemetry endpoint ``/api/public/otel``).

Each exporter runs behind its own :class:`~llmswitch.telemetry.callbacks_queue.BoundedQueue`, not the
SDK's ``BatchSpanProcessor``: a full queue drops spans with a counter (and a warning a minute), and an
export never runs on the event loop. The queue's thread turns the request path's span records into the
SDK's ``ReadableSpan`` (:class:`Converter`) for the official exporter.

    >>> tracing = build_tracing(otel=True, langfuse=False, capture_content=False)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from llmswitch import procid
from llmswitch.errors import ConfigError
from llmswitch.telemetry.callbacks_queue import BoundedQueue
from llmswitch.telemetry.spans import SpanRecord
from llmswitch.telemetry.traces import ENCODE_SLICE, Tracing, _truthy

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

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by Resource.create
    resource = Resource.create({} if env.get("OTEL_SERVICE_NAME") else {"service.name": "llmswitch"})
    queues: list[BoundedQueue] = []
    exporters: list[tuple[str, Any]] = []
    if otel:
        exporter = _otel_exporter(env)
        if exporter is not None:
            exporters.append(("otel-spans", exporter))
    if langfuse:
        exporters.append(("langfuse-spans", _langfuse_exporter(env)))
    for _, exporter in exporters:
        _own_jitter(exporter)
    convert = Converter(resource)
    # the OTLP/HTTP exporter can send bytes encoded beforehand (on the event loop, see Tracing): its own
    # client, endpoint, headers, compression and retries; other exporters (gRPC, console) take spans
    encoded = all(_byte_sender(exporter) is not None for _, exporter in exporters)
    for name, exporter in exporters:
        queues.append(_queue_for(name, exporter, env, convert, encoded))
    _quiet_exporter_logs()
    encode = None
    if encoded:
        from llmswitch import __version__
        from llmswitch.telemetry.traces_otlp import Encoder

        encode = Encoder(dict(resource.attributes), "llmswitch", __version__).encode

    return Tracing(queues, capture_content=capture_content, sampler=_root_sampler(), encode=encode)


def _byte_sender(exporter: Any) -> Callable[[bytes], Any] | None:
    """The OTLP/HTTP exporter's own sender of serialized requests (with its retries), if it has one."""
    client = getattr(exporter, "_client", None)
    send = getattr(client, "export", None)
    return send if callable(send) else None


def _own_jitter(exporter: Any) -> None:
    """Make the OTLP/HTTP exporter's client draw its retry jitter from llmswitch's own generator.

    The client draws a backoff before every attempt, successful ones too, from the global ``random``:
    that would move the state an application seeds, from the queue's thread, under whatever the
    application's threads are drawing (see :mod:`llmswitch.procid`). Same formula, other generator. A
    client of another shape is left as it is."""
    client: Any = getattr(exporter, "_client", None)
    jitter = getattr(client, "_jitter", None)
    if not callable(getattr(client, "_compute_backoff", None)) or not isinstance(jitter, float):
        return
    low, high = 1 - jitter, 1 + jitter
    uniform = procid.RNG.uniform
    client._compute_backoff = lambda retry: 2**retry * uniform(low, high)


def _root_sampler() -> Callable[[int, str], bool]:
    """The SDK's sampler from ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``, for a request that
    comes without a traceparent (one that has one follows its sampled flag)."""
    from opentelemetry.sdk.trace.sampling import Decision, _get_from_env_or_default

    sampler = _get_from_env_or_default()
    if type(sampler).__name__ in ("ParentBased", "StaticSampler") and sampler.get_description() in (
        "ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:"
        "AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}",
        "AlwaysOnSampler",
    ):
        return lambda trace_id, name: True  # the default: every root is sampled, no call needed
    sample = Decision.RECORD_AND_SAMPLE
    return lambda trace_id, name: sampler.should_sample(None, trace_id, name).decision is sample


class Converter:
    """Span records as the SDK's ``ReadableSpan`` (in the exporter's thread, off the request path)."""

    def __init__(self, resource: Any) -> None:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        from llmswitch import __version__

        self._readable = ReadableSpan
        self._context = SpanContext
        self._sampled = TraceFlags(TraceFlags.SAMPLED)
        self._kinds = {"server": SpanKind.SERVER, "client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL}
        self._error = Status(StatusCode.ERROR)
        self._unset = Status(StatusCode.UNSET)
        self._scope = InstrumentationScope("llmswitch", __version__)
        self.resource = resource

    def __call__(self, records: list[SpanRecord]) -> list[Any]:
        ctx, sampled = self._context, self._sampled
        out = []
        for r in records:
            parent = ctx(r.trace_id, r.parent_id, r.remote_parent, sampled) if r.parent_id else None
            out.append(
                self._readable(
                    r.name,
                    context=ctx(r.trace_id, r.span_id, False, sampled),
                    parent=parent,
                    resource=self.resource,
                    attributes={k: v for k, v in r.attributes.items() if v is not None},
                    kind=self._kinds[r.kind],
                    status=self._error if r.error else self._unset,
                    start_time=r.start_ns,
                    end_time=r.end_ns,
                    instrumentation_scope=self._scope,
                )
            )
        return out


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


def _queue_for(name: str, exporter: Any, env: Mapping[str, str], convert: Converter, encoded: bool) -> BoundedQueue:
    from opentelemetry.sdk.trace.export import SpanExportResult

    max_spans = _int(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048)
    interval = _int(env, "OTEL_BSP_SCHEDULE_DELAY", 1000) / 1000
    if encoded:
        send = _byte_sender(exporter)
        assert send is not None

        def send_encoded(batch: list[bytes]) -> None:
            # each item is one OTLP request of up to ENCODE_SLICE spans
            for data in batch:
                result = send(data)
                if not getattr(result, "success", False):
                    raise ConnectionError("the collector did not take the batch")

        # the queue holds encoded requests: its bound in spans, counted in requests of ENCODE_SLICE spans
        return BoundedQueue(
            name, send_encoded, max_queue=max(1, max_spans // ENCODE_SLICE), batch_size=8, interval=interval
        )

    def export(batch: list[SpanRecord]) -> None:
        if exporter.export(convert(batch)) is not SpanExportResult.SUCCESS:
            raise ConnectionError("the collector did not take the batch")

    return BoundedQueue(
        name,
        export,
        max_queue=max_spans,
        batch_size=_int(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        interval=interval,
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
