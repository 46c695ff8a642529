"""Google's error envelope ``{"error": {"code", "message", "status", "details"}}`` <-> our error classes.

What Google puts where: an invalid key is a 400 ``INVALID_ARGUMENT`` whose ``details`` hold an
``ErrorInfo`` with ``reason: API_KEY_INVALID`` (it is an :class:`AuthenticationError`); a 429
``RESOURCE_EXHAUSTED`` says how long to wait in a ``RetryInfo`` detail (``retryDelay: "48s"``), not
in a header. Streams without ``alt=sse`` wrap the envelope in a JSON list.

    >>> e = decode_error(429, b'{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",'
    ...                  b' "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "48s"}]}}')
    >>> type(e).__name__, e.retry_after
    ('RateLimitError', 48.0)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmswitch.dialects._json import loads_lenient
from llmswitch.dialects.openai_errors import retry_after_from_headers, should_retry_from_headers
from llmswitch.errors import APIError, APIStatusError, APITimeoutError, error_for_status

# google.rpc.Code names by the HTTP status Google answers them with
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",  # google.rpc.Code 12, which Google answers with HTTP 501
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_RPC_NAMES = frozenset({*_STATUS_NAMES.values(), "FAILED_PRECONDITION", "OUT_OF_RANGE", "ALREADY_EXISTS", "UNKNOWN"})
_REASON = re.compile(r"[A-Z][A-Z0-9_]+")
_DETAIL = "type.googleapis.com/google.rpc."


def parse_duration(value: Any) -> float | None:
    """A protobuf Duration in JSON (``"48s"``, ``"48.9s"``) or as ``{seconds, nanos}`` -> seconds."""
    if isinstance(value, str) and value.endswith("s"):
        try:
            return max(float(value[:-1]), 0.0)
        except ValueError:
            return None
    if isinstance(value, dict):
        try:
            return max(float(value.get("seconds") or 0) + float(value.get("nanos") or 0) / 1e9, 0.0)
        except (TypeError, ValueError):
            return None
    return None


def format_duration(seconds: float) -> str:
    """Seconds as a protobuf Duration in JSON: ``"48s"``, ``"1.500s"``."""
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds:.3f}s"


def decode_error(
    status: int,
    body: bytes | str,
    headers: Mapping[str, str] | None = None,
    *,
    provider: str | None = None,
    model: str | None = None,
) -> APIStatusError:
    """The error a Gemini error answer (or an error object inside a stream) stands for."""
    headers = headers or {}
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    parsed = loads_lenient(body) if body else None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    message = text.strip() or f"HTTP {status}"
    rpc_status: str | None = None
    reason: str | None = None
    retry_after: float | None = None
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or message)
        rpc_status = err.get("status") if isinstance(err.get("status"), str) else None
        code = err.get("code")
        if isinstance(code, int) and 400 <= code < 600 and status < 400:
            status = code  # an error that arrived inside a 200 stream
        for d in err.get("details") or ():
            if not isinstance(d, dict):
                continue
            kind = str(d.get("@type") or "")
            if kind.endswith("ErrorInfo") and isinstance(d.get("reason"), str):
                reason = d["reason"]
            elif kind.endswith("RetryInfo"):
                retry_after = parse_duration(d.get("retryDelay"))
    elif isinstance(err, str):
        message = err
    if status < 400:
        status = 500
    cls = error_for_status(status, message, code=reason, error_type=rpc_status)
    return cls(
        f"{provider}: {message}" if provider else message,
        status_code=status,
        provider=provider,
        model=model,
        body=parsed if parsed is not None else text,
        retry_after=retry_after if retry_after is not None else retry_after_from_headers(headers),
        should_retry=should_retry_from_headers(headers),
        headers=dict(headers),
        code=reason or rpc_status,
        error_type=rpc_status,
    )


def encode_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Status and Google error envelope for an error, as the google-genai SDKs read it."""
    if isinstance(exc, APIStatusError):
        status = exc.status_code or 500
        if status == 529:
            status = 503  # Anthropic's "overloaded": Google says UNAVAILABLE, which its SDKs retry
        name = exc.type if exc.type in _RPC_NAMES else _STATUS_NAMES.get(status)
        if name is None:
            name = "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"
        err: dict[str, Any] = {"code": status, "message": exc.message, "status": name}
        details: list[dict[str, Any]] = []
        if exc.code and _REASON.fullmatch(exc.code) and exc.code not in _RPC_NAMES:
            details.append({"@type": _DETAIL + "ErrorInfo", "reason": exc.code, "domain": "googleapis.com"})
        if exc.param:
            violation = {"field": exc.param, "description": exc.message}
            details.append({"@type": _DETAIL + "BadRequest", "fieldViolations": [violation]})
        if exc.retry_after:
            details.append({"@type": _DETAIL + "RetryInfo", "retryDelay": format_duration(exc.retry_after)})
        if details:
            err["details"] = details
        return status, {"error": err}
    if isinstance(exc, APITimeoutError):
        return 504, {"error": {"code": 504, "message": str(exc), "status": "DEADLINE_EXCEEDED"}}
    if isinstance(exc, APIError):
        return 502, {"error": {"code": 502, "message": str(exc), "status": "UNAVAILABLE"}}
    return 500, {"error": {"code": 500, "message": "internal error", "status": "INTERNAL"}}
