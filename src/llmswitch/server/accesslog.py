"""One structured (JSON lines) log record per request, written off the response path.

Records go through a queue to a background thread, so a slow terminal or disk never stalls a
request. A record names the key by alias and a short hash prefix, never the key itself.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
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
    def __init__(self) -> None:
        self.enabled = True

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
            if st.get(k) is not None:
                data[k] = st[k]
        usage = st.get("usage")
        if usage is not None:
            data["tokens"] = {"input": usage.input_tokens, "output": usage.output_tokens}
        err = st.get("error")
        if err is not None:
            data["error"] = type(err).__name__
            data["error_message"] = str(err)[:300]
        _logger.info("request", extra={"data": data})

    def close(self) -> None:
        if _listener is not None:
            _listener.stop()
