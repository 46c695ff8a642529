"""One structured (JSON lines) log record per request, written off the response path.

Access records are encoded on the event loop and written in batches from a worker thread; other
log records go through a queue to a background thread; a slow terminal or disk never stalls a request. A record names the key by alias and a short hash prefix, never the key itself.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import queue
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import msgspec

from llmswitch.dialects._json import dumps

if TYPE_CHECKING:
    from llmswitch.server.http import Request

_logger = logging.getLogger("llmswitch.access")


class _AccessLine(msgspec.Struct, omit_defaults=True):
    """One access record; the fields after ``latency_ms`` are left out when ``None``."""

    ts: float
    event: str
    request_id: Any
    method: str
    path: str
    status: int
    latency_ms: float
    key: str | None = None
    model: Any = None
    deployment: Any = None
    ttft_ms: Any = None
    status_note: Any = None
    tokens: dict[str, int] | None = None
    error: str | None = None
    error_message: str | None = None


_encoder = msgspec.json.Encoder()


def _encode_lines(lines: list[_AccessLine]) -> bytes:
    """Records as JSON lines, encoded together (one call for a whole batch); one that cannot be
    encoded (a value of an odd type in the request's state) is left out, not the batch."""
    try:
        return _encoder.encode_lines(lines)
    except (TypeError, ValueError):
        out = bytearray()
        for line in lines:
            try:
                out += _encoder.encode(line) + b"\n"
            except (TypeError, ValueError):
                continue
        return bytes(out)


class _JSONLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = getattr(record, "data", None)
        if isinstance(data, dict):
            return dumps(data).decode()
        return dumps(
            {"ts": round(record.created, 3), "level": record.levelname.lower(), "msg": record.getMessage()}
        ).decode()


def configure_logging(level: str = "info", stream: Any = None) -> None:
    """Send llmswitch's logs as JSON lines to ``stream`` (stderr) through a background thread."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JSONLines())
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(q, handler)
    listener.start()
    root = logging.getLogger("llmswitch")
    root.handlers[:] = [logging.handlers.QueueHandler(q)]
    root.setLevel(level.upper())
    root.propagate = False
    global _listener
    _listener = listener


_listener: logging.handlers.QueueListener | None = None


class AccessLog:
    """Access records as JSON lines, batched: kept as they are made, encoded together and written every
    ``flush_interval`` seconds in one write from a worker thread, so a busy gateway pays neither a
    logging call, nor an encoder call, nor a syscall per request."""

    def __init__(self, stream: Any = None, flush_interval: float = 0.05) -> None:
        self.enabled = True
        self._stream = stream
        self._buf: list[_AccessLine] = []
        self._interval = flush_interval
        self._scheduled = False
        self._lock = threading.Lock()

    def record(self, request: Request, status: int, seconds: float) -> None:
        if not self.enabled or not _logger.isEnabledFor(logging.INFO):
            return
        st = request.state
        principal = st.get("principal")
        usage = st.get("usage")
        err = st.get("error")
        # round(x * 1000) / 1000, not round(x, 3): the same millisecond figures, without a float to text
        # and back (a microsecond each)
        line = _AccessLine(
            round(time.time() * 1000) / 1000,
            "request",
            st.get("request_id"),
            request.method,
            request.path,
            status,
            round(seconds * 1_000_000) / 1000,
            None if principal is None else principal.alias or principal.key_hash[:12],
            st.get("model"),
            st.get("deployment"),
            st.get("ttft_ms"),
            st.get("status_note"),
            None if usage is None else {"input": usage.input_tokens, "output": usage.output_tokens},
            None if err is None else type(err).__name__,
            None if err is None else str(err)[:300],
        )
        self._buf.append(line)
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_later(self._interval, self._flush_soon)
            except RuntimeError:  # no event loop (a synchronous caller): write it now
                self._scheduled = False
                self.flush()

    def _flush_soon(self) -> None:
        self._scheduled = False
        if self._buf:
            data = _encode_lines(self._buf)
            self._buf = []
            asyncio.get_running_loop().run_in_executor(None, self._write, data)

    def _write(self, data: bytes) -> None:
        stream = self._stream or sys.stderr
        with self._lock:
            try:
                out = getattr(stream, "buffer", None)
                if out is not None:
                    out.write(data)
                else:
                    stream.write(data.decode())
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken log stream must never fail a request

    def flush(self) -> None:
        if self._buf:
            data = _encode_lines(self._buf)
            self._buf = []
            self._write(data)

    def close(self) -> None:
        self.flush()
        if _listener is not None:
            _listener.stop()
