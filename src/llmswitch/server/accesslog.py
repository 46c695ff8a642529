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

from llmswitch.dialects._json import dumps

if TYPE_CHECKING:
    from llmswitch.server.http import Request

_logger = logging.getLogger("llmswitch.access")


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
    """Access records as JSON lines, batched: encoded on the loop (a couple of microseconds each) and
    written every ``flush_interval`` seconds in one write from a worker thread, so a busy gateway pays
    neither a logging call nor a syscall per request."""

    def __init__(self, stream: Any = None, flush_interval: float = 0.05) -> None:
        self.enabled = True
        self._stream = stream
        self._buf: list[bytes] = []
        self._interval = flush_interval
        self._scheduled = False
        self._lock = threading.Lock()

    def record(self, request: Request, status: int, seconds: float) -> None:
        if not self.enabled or not _logger.isEnabledFor(logging.INFO):
            return
        st = request.state
        data: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "event": "request",
            "request_id": st.get("request_id"),
            "method": request.method,
            "path": request.path,
            "status": status,
            "latency_ms": round(seconds * 1000, 3),
        }
        principal = st.get("principal")
        if principal is not None:
            data["key"] = principal.alias or principal.key_hash[:12]
        for k in ("model", "deployment", "ttft_ms", "status_note"):
            v = st.get(k)
            if v is not None:
                data[k] = v
        usage = st.get("usage")
        if usage is not None:
            data["tokens"] = {"input": usage.input_tokens, "output": usage.output_tokens}
        err = st.get("error")
        if err is not None:
            data["error"] = type(err).__name__
            data["error_message"] = str(err)[:300]
        self._buf.append(dumps(data) + b"\n")
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_later(self._interval, self._flush_soon)
            except RuntimeError:
                self.flush()

    def _flush_soon(self) -> None:
        self._scheduled = False
        if self._buf:
            data = b"".join(self._buf)
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
            data = b"".join(self._buf)
            self._buf = []
            self._write(data)

    def close(self) -> None:
        self.flush()
        if _listener is not None:
            _listener.stop()
