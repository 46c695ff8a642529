"""Error bodies of OpenAI and the OpenAI-compatible vendors -> our error classes, and back.

Vendors wrap the same thing many ways: ``{"error": {"message", "type", "code", "param"}}`` (OpenAI,
Groq, DeepSeek, Azure), ``{"error": "text"}`` (Ollama, xAI), ``{"detail": …}`` (Mistral),
``{"message": …}``, a JSON list, or plain text from a proxy in front of them. The message always
keeps the provider's own words.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from llmswitch.dialects._json import loads_lenient
from llmswitch.errors import APIError, APIStatusError, error_for_status


def retry_after_from_headers(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``retry-after`` (seconds or HTTP date).

    >>> retry_after_from_headers({"retry-after-ms": "1500"})
    1.5
    """
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            v = float(ms) / 1000
            if v > 0:
                return v
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(float(ra), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(ra).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    if now is None:
        import time

        now = time.time()
    return max(when - now, 0.0)


def should_retry_from_headers(headers: Mapping[str, str]) -> bool | None:
    v = headers.get("x-should-retry")
    if v == "true":
        return True
    if v == "false":
        return False
    return None


def decode_error(
    status: int,
    body: bytes | str,
    headers: Mapping[str, str] | None = None,
    *,
    provider: str | None = None,
    model: str | None = None,
) -> APIStatusError:
    """The error a non-2xx answer (or an error event in a stream) stands for."""
    headers = headers or {}
    parsed = loads_lenient(body) if body else None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    message, code, etype, param = text.strip() or f"HTTP {status}", None, None, None
    if isinstance(parsed, dict):
        err = parsed.get("error", parsed.get("detail", parsed))
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("msg") or err.get("detail") or message)
            code = err.get("code")
            etype = err.get("type") or err.get("status")
            param = err.get("param")
            raw = (err.get("metadata") or {}).get("raw") if isinstance(err.get("metadata"), dict) else None
            if raw:
                message = f"{message}: {raw}"
        elif isinstance(err, list):
            message = "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in err)
        elif err is not None:
            message = str(err)
            if isinstance(parsed.get("code"), str):
                code = parsed["code"]
        if isinstance(code, int) and 400 <= code < 600 and status < 400:
            status = code  # an error that arrived inside a 200 stream
    if status < 400:
        status = 400 if etype == "invalid_request_error" else 500
    cls = error_for_status(status, message, code=code if isinstance(code, str) else None, error_type=etype)
    prefix = f"{provider}: " if provider else ""
    return cls(
        f"{prefix}{message}",
        status_code=status,
        provider=provider,
        model=model,
        body=parsed if parsed is not None else text,
        retry_after=retry_after_from_headers(headers),
        should_retry=should_retry_from_headers(headers),
        headers=dict(headers),
        code=str(code) if code is not None else None,
        error_type=etype,
        param=param,
    )


_OPENAI_TYPES = frozenset(
    (
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "rate_limit_error",
        "insufficient_quota",
        "server_error",
        "tokens",
        "requests",
        "budget_exceeded",
    )
)
_TYPE_FOR_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}


def _type_for_status(status: int) -> str:
    return _TYPE_FOR_STATUS.get(status) or ("server_error" if status >= 500 else "invalid_request_error")


def encode_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Status and OpenAI error envelope for an error, as the openai SDK expects to read it."""
    if isinstance(exc, APIStatusError):
        status = exc.status_code or 500
        # keep a type only when it is one of OpenAI's own; other providers' names (Gemini's
        # RESOURCE_EXHAUSTED, Anthropic's overloaded_error) would confuse an OpenAI client
        etype = exc.type if exc.type in _OPENAI_TYPES else _type_for_status(status)
        err: dict[str, Any] = {
            "message": exc.message,
            "type": etype,
            "param": exc.param,
            "code": exc.code,
        }
        return status, {"error": err}
    if isinstance(exc, APIError):
        return 502, {"error": {"message": str(exc), "type": "api_connection_error", "param": None, "code": None}}
    return 500, {"error": {"message": "internal error", "type": "api_error", "param": None, "code": None}}
