"""Anthropic error bodies -> our error classes, and our errors -> Anthropic's error envelope.

Anthropic answers ``{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
"request_id": "req_…"}`` with a status, and sends the same body as an ``event: error`` inside a 200
stream, where only the error ``type`` says which status it stands for (:data:`STATUS_FOR_TYPE`).

    >>> exc = decode_error(529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    >>> type(exc).__name__, exc.status_code
    ('ServiceUnavailableError', 529)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.dialects._json import loads_lenient
from llmswitch.dialects.openai_errors import retry_after_from_headers, should_retry_from_headers
from llmswitch.errors import APIError, APIStatusError, APITimeoutError, ServiceUnavailableError, error_for_status

# Anthropic's documented error types and the status each is sent with
STATUS_FOR_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_TYPE_FOR_STATUS: dict[int, str] = {s: t for t, s in STATUS_FOR_TYPE.items()} | {422: "invalid_request_error"}


def decode_error(
    status: int,
    body: bytes | str,
    headers: Mapping[str, str] | None = None,
    *,
    provider: str | None = "anthropic",
    model: str | None = None,
) -> APIStatusError:
    """The error an Anthropic error answer (or an ``error`` event inside a stream) stands for.

    ``status`` below 400 means the error arrived inside a 200 stream: the error type picks the status.
    """
    headers = headers or {}
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    parsed = loads_lenient(body) if body else None
    message, etype = text.strip() or f"HTTP {status}", None
    if isinstance(parsed, dict):
        err = parsed.get("error", parsed)
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            etype = err.get("type") if isinstance(err.get("type"), str) else None
        elif isinstance(err, str) and err:
            message = err
    if status < 400:
        status = STATUS_FOR_TYPE.get(etype or "", 500)
    cls = error_for_status(status, message, error_type=etype)
    return cls(
        f"{provider}: {message}" if provider else message,
        status_code=status,
        provider=provider,
        model=model,
        body=parsed if parsed is not None else text,
        retry_after=retry_after_from_headers(headers),
        should_retry=should_retry_from_headers(headers),
        headers=dict(headers),
        error_type=etype,
    )


def encode_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Status and ``{"type": "error", "error": {"type", "message"}}``, as the anthropic SDK reads it."""
    if isinstance(exc, APIStatusError):
        status = exc.status_code or 500
        etype = exc.type if exc.type in STATUS_FOR_TYPE else None
        if etype is None:
            if isinstance(exc, ServiceUnavailableError):
                etype = "overloaded_error"
            else:
                etype = _TYPE_FOR_STATUS.get(status, "invalid_request_error" if status < 500 else "api_error")
        message = exc.message
    elif isinstance(exc, APITimeoutError):
        status, etype, message = 504, "timeout_error", str(exc)
    elif isinstance(exc, APIError):
        status, etype, message = 502, "api_error", str(exc)
    else:
        # never leak a traceback or an internal message to a client
        status, etype, message = 500, "api_error", "Internal server error"
    return status, {"type": "error", "error": {"type": etype, "message": message}}
