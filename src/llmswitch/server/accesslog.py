"""One structured (JSON lines) log record per request, written off the response path.

Access records are encoded on the event loop and written in batches from a worker thread; other
log records go through a queue to a background thread; a slow terminal or disk never stalls a request. A record names the key by alias and a short hash prefix, never the key itself.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import queue
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import msgspec

from llmswitch.dialects._json import dumps, loads

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
    cost: Any = None
    cache: Any = None
    trace_id: Any = None
    span_id: Any = None
    attempts: list[dict[str, Any]] | None = None
    request_body: Any = None


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


def cache_status(state: dict[str, Any]) -> str | None:
    """The response cache's verdict on a request: ``"hit"``, ``"miss"`` (it was cacheable and looked up),
    or None when the cache did not run for it (off, or the request not cacheable)."""
    status = state.get("cache")
    if status is not None:
        return str(status)
    if state.get("cache_hit"):
        return "hit"
    return "miss" if "cache_headers" in state else None


def _attempt(a: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"deployment": a.deployment, "outcome": a.outcome, "ms": round(a.elapsed * 1000, 3)}
    if a.error is not None:
        entry["error"] = a.error
    if a.status is not None:
        entry["status"] = a.status
    return entry


# names whose values are credentials wherever they appear in a body (a client may send its own)
_SECRET_NAMES = frozenset(
    ("api_key", "apikey", "key", "secret", "token", "password", "authorization", "access_token", "client_secret")
)
MAX_LOGGED_BODY = 16 * 1024


def redact(value: Any) -> Any:
    """``value`` with every credential-named field's value replaced by ``"[redacted]"``, at any depth."""
    if isinstance(value, dict):
        return {
            k: "[redacted]" if isinstance(k, str) and k.lower() in _SECRET_NAMES else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def redact_body(body: bytes) -> Any:
    """A request body for the log: its JSON redacted, cut at ``MAX_LOGGED_BODY`` bytes of text."""
    try:
        data = redact(loads(body))
    except Exception:
        return "[not JSON]"
    text = dumps(data)
    if len(text) > MAX_LOGGED_BODY:
        return text[:MAX_LOGGED_BODY].decode(errors="ignore") + "…[cut]"
    return data


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _sample_from_env() -> float:
    raw = os.environ.get("LLMSWITCH_ACCESS_LOG_SAMPLE")
    if not raw:
        return 1.0
    try:
        return min(max(float(raw), 0.0), 1.0)
    except ValueError:
        return 1.0


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
    logging call, nor an encoder call, nor a syscall per request.

    ``sample`` (``LLMSWITCH_ACCESS_LOG_SAMPLE``, 0 to 1) keeps that share of successful requests' records
    (every failed one is kept); ``bodies`` (``LLMSWITCH_ACCESS_LOG_BODIES=true``) adds each request's
    body, redacted (:func:`redact`). The level is ``LLMSWITCH_LOG_LEVEL`` (records are written at info).
    """

    def __init__(
        self, stream: Any = None, flush_interval: float = 0.05, sample: float | None = None, bodies: bool | None = None
    ) -> None:
        self.enabled = True
        self.sample = _sample_from_env() if sample is None else min(max(sample, 0.0), 1.0)
        self.bodies = _truthy(os.environ.get("LLMSWITCH_ACCESS_LOG_BODIES")) if bodies is None else bodies
        self._kept = 0.0
        self._stream = stream
        self._buf: list[_AccessLine] = []
        self._interval = flush_interval
        self._scheduled = False
        self._lock = threading.Lock()

    def record(self, request: Request, status: int, seconds: float) -> None:
        if not self.enabled or not _logger.isEnabledFor(logging.INFO):
            return
        st = request.state
        err = st.get("error")
        if self.sample < 1.0 and err is None and status < 400:
            # deterministic sampling: a share of the records, evenly spread, no random call per request
            self._kept += self.sample
            if self._kept < 1.0:
                return
            self._kept -= 1.0
        principal = st.get("principal")
        usage = st.get("usage")
        trail = st.get("trail")
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
            st.get("cost"),
            cache_status(st),
            st.get("trace_id"),
            st.get("span_id"),
            # the retry/fallback trail, when there was more than the one attempt
            None if trail is None or len(trail) < 2 else [_attempt(a) for a in trail],
            redact_body(request.body) if self.bodies and request.body else None,
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
