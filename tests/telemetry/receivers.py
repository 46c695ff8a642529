"""Loopback receivers for what the gateway exports: an OTLP/HTTP trace collector (protobuf decoded with
opentelemetry-proto, as a real collector does) and a JSON webhook. Each runs in a thread and keeps every
request it got, raw bytes included, so a test can grep them for secrets.

``hang=True`` makes a receiver take the request and never answer (until closed): a collector that hangs.
``OTLPReceiver(unavailable_first=N)`` answers its first N requests 503 (retryable), then 200.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Span:
    """One exported span, decoded: ids as hex, attributes as plain values."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status_code: int
    service: str | None = None

    SERVER = 2
    CLIENT = 3
    INTERNAL = 1


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


class _Receiver:
    def __init__(self, handle: Callable[[Received], tuple[int, bytes, str]], hang: bool = False) -> None:
        self.received: list[Received] = []
        self.hang = hang
        self._release = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    outer.received.append(got)
                if outer.hang:
                    outer._release.wait(30)
                    return
                status, payload, ctype = handle(got)
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def raw(self) -> bytes:
        with self._lock:
            return b"\n".join(r.body + repr(r.headers).encode() for r in self.received)

    def wait(self, ready: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert time.monotonic() < deadline, "the receiver did not get what was expected in time"
            time.sleep(0.02)


class OTLPReceiver(_Receiver):
    """An OTLP/HTTP trace receiver on loopback (``/v1/traces``, and Langfuse's ``/api/public/otel/v1/traces``)."""

    def __init__(self, hang: bool = False, unavailable_first: int = 0) -> None:
        ok = ExportTraceServiceResponse().SerializeToString()
        answered = itertools.count()

        def handle(got: Received) -> tuple[int, bytes, str]:
            # the first ``unavailable_first`` requests get a 503, which an OTLP exporter retries
            if next(answered) < unavailable_first:
                return 503, b"", "text/plain"
            return 200, ok, "application/x-protobuf"

        super().__init__(handle, hang=hang)

    def spans(self) -> list[Span]:
        out: list[Span] = []
        with self._lock:
            bodies = [r.body for r in self.received]
        for body in bodies:
            req = ExportTraceServiceRequest()
            req.ParseFromString(body)
            for rs in req.resource_spans:
                service = next(
                    (_value(a.value) for a in rs.resource.attributes if a.key == "service.name"),
                    None,
                )
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append(
                            Span(
                                name=s.name,
                                kind=s.kind,
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_id=s.parent_span_id.hex(),
                                attributes={a.key: _value(a.value) for a in s.attributes},
                                status_code=s.status.code,
                                service=service,
                            )
                        )
        return out

    def wait_spans(self, count: int, timeout: float = 15.0) -> list[Span]:
        self.wait(lambda: len(self.spans()) >= count, timeout)
        return self.spans()


class WebhookReceiver(_Receiver):
    """A JSON webhook on loopback; ``statuses`` answers the first requests with those codes (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])

        def handle(got: Received) -> tuple[int, bytes, str]:
            status = self.statuses.pop(0) if self.statuses else 200
            return status, b'{"ok": true}', "application/json"

        super().__init__(handle)

    def items(self) -> list[Any]:
        """Every JSON body received, lists flattened (the logs webhook posts batches)."""
        out: list[Any] = []
        with self._lock:
            bodies = [r.body for r in self.received]
        for body in bodies:
            data = json.loads(body)
            out.extend(data if isinstance(data, list) else [data])
        return out
