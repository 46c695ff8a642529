"""Google's error envelope <-> our error classes: API_KEY_INVALID, RetryInfo, statuses, and back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from llmswitch.dialects import gemini
from llmswitch.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
RECORDED = SHARED / "fixtures" / "recorded"
sys.path.insert(0, str(SHARED / "conformance"))
import expect  # noqa: E402


def fixture(name: str, provider: str = "gemini") -> dict[str, Any]:
    return json.loads((RECORDED / provider / f"{name}.json").read_text())


KEY_INVALID = fixture("error_400_api_key_invalid")["response"]["body_text"]
EXHAUSTED = fixture("error_429_resource_exhausted")["response"]["body_text"]


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> str:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = list(details)
    return json.dumps({"error": err})


ERRORS = [
    (400, KEY_INVALID, {}, AuthenticationError, None, "API key not valid"),
    (429, EXHAUSTED, {}, RateLimitError, 48.0, "You exceeded your current quota"),
    (
        429,
        google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "slow",
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "48.9s"},
        ),
        {},
        RateLimitError,
        48.9,
        "slow",
    ),
    (429, google_error(429, "RESOURCE_EXHAUSTED", "slow"), {"retry-after": "7"}, RateLimitError, 7.0, "slow"),
    (
        400,
        google_error(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1250074) exceeds the maximum number of tokens allowed (1048576).",
        ),
        {},
        ContextWindowExceededError,
        None,
        "input token count",
    ),
    (
        400,
        google_error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
        {},
        BadRequestError,
        None,
        "User location",
    ),
    (
        401,
        google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
        {},
        AuthenticationError,
        None,
        "invalid authentication",
    ),
    (
        403,
        google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
        {},
        PermissionDeniedError,
        None,
        "unregistered callers",
    ),
    (
        404,
        fixture("error_404_model_not_found")["response"]["body_text"],
        {},
        NotFoundError,
        None,
        "is not found for API version",
    ),
    (
        500,
        google_error(500, "INTERNAL", "An internal error has occurred."),
        {},
        InternalServerError,
        None,
        "internal error",
    ),
    (
        503,
        google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        {},
        ServiceUnavailableError,
        None,
        "overloaded",
    ),
    (200, "[" + google_error(503, "UNAVAILABLE", "in stream") + "]", {}, ServiceUnavailableError, None, "in stream"),
    (502, "<html>Bad Gateway</html>", {}, InternalServerError, None, "Bad Gateway"),
]


@pytest.mark.parametrize(("status", "body", "headers", "cls", "retry_after", "text"), ERRORS)
def test_decode_error(
    status: int, body: str, headers: dict[str, str], cls: type, retry_after: float | None, text: str
) -> None:
    e = gemini.decode_error(status, body.encode(), headers, provider="gemini", model="gemini-2.5-flash")
    assert type(e) is cls
    assert e.retry_after == retry_after
    assert text in str(e) and str(e).startswith("gemini: ")
    assert (e.provider, e.model) == ("gemini", "gemini-2.5-flash")


ENCODED = [
    (AuthenticationError("bad key", status_code=401), 401, "UNAUTHENTICATED"),
    (PermissionDeniedError("no", status_code=403), 403, "PERMISSION_DENIED"),
    (NotFoundError("no model", status_code=404), 404, "NOT_FOUND"),
    (RateLimitError("slow", status_code=429, retry_after=48.5), 429, "RESOURCE_EXHAUSTED"),
    (InternalServerError("oops", status_code=500), 500, "INTERNAL"),
    (ServiceUnavailableError("overloaded", status_code=529), 503, "UNAVAILABLE"),
    (ContextWindowExceededError("prompt is too long", status_code=400), 400, "INVALID_ARGUMENT"),
    (
        AuthenticationError(
            "API key not valid.", status_code=400, code="API_KEY_INVALID", error_type="INVALID_ARGUMENT"
        ),
        400,
        "INVALID_ARGUMENT",
    ),
    (APITimeoutError("slow upstream"), 504, "DEADLINE_EXCEEDED"),
    (APIConnectionError("refused"), 502, "UNAVAILABLE"),
    (ValueError("secret detail"), 500, "INTERNAL"),
]


@pytest.mark.parametrize(("exc", "status", "name"), ENCODED)
def test_encode_error_and_back(exc: BaseException, status: int, name: str) -> None:
    got_status, body = gemini.encode_error(exc)
    assert (got_status, body["error"]["code"], body["error"]["status"]) == (status, status, name)
    if isinstance(exc, ValueError):
        assert "secret" not in json.dumps(body)
        return
    back = gemini.decode_error(got_status, json.dumps(body).encode())
    assert str(exc) in str(back)
    if isinstance(
        exc, AuthenticationError | RateLimitError | NotFoundError | PermissionDeniedError | ContextWindowExceededError
    ):
        assert type(back) is type(exc)
    assert back.retry_after == getattr(exc, "retry_after", None)


RECORDED_ERRORS = [
    (provider, p.stem)
    for provider in ("gemini", "vertex")
    for p in sorted((RECORDED / provider).glob("*.json"))
    if json.loads(p.read_text())["response"]["status"] >= 400
]


@pytest.mark.parametrize(("provider", "name"), RECORDED_ERRORS)
def test_recorded_errors_read_as_the_reference_does(provider: str, name: str) -> None:
    fx = fixture(name, provider)
    resp = fx["response"]
    e = gemini.decode_error(resp["status"], resp["body_text"].encode(), resp["headers"], provider="gemini")
    assert expect.expected_error("gemini", fx) in [c.__name__ for c in type(e).__mro__]
    assert expect.error_message(fx)[:25].lower() in str(e).lower()
