"""The error tree: classification by status and meaning, decoding vendor envelopes, encoding ours."""

from __future__ import annotations

import functools
import json
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from llmswitch import errors
from llmswitch.dialects.openai_errors import (
    decode_error,
    encode_error,
    retry_after_from_headers,
    should_retry_from_headers,
)
from llmswitch.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    error_for_status,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
RECORDED = SHARED / "fixtures" / "recorded"


def recorded_message(case: str) -> str:
    """The provider's own error message in a recorded error response."""
    body = json.loads(json.loads((RECORDED / f"{case}.json").read_text())["response"]["body_text"])
    err = body.get("error", body)
    return str(err["message"] if isinstance(err, dict) else err)


def test_the_tree() -> None:
    assert issubclass(ContextWindowExceededError, BadRequestError)
    assert issubclass(ContentPolicyViolationError, BadRequestError)
    assert issubclass(ServiceUnavailableError, InternalServerError)
    assert issubclass(APITimeoutError, APIConnectionError)
    for cls in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        RateLimitError,
        InternalServerError,
    ):
        assert issubclass(cls, APIStatusError)
    assert issubclass(APIStatusError, APIError)
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.ConfigError, errors.LLMSwitchError)
    # the tree drawn in the docstring names every class there is
    classes = [n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, errors.LLMSwitchError)]
    assert all(name in (errors.__doc__ or "") for name in classes)


# ---------------------------------------------------------------- error_for_status


@pytest.mark.parametrize(
    ("status", "text", "kw", "cls"),
    [
        # plain statuses
        (400, "Unsupported parameter: 'stop'", {}, BadRequestError),
        (422, "field required", {}, BadRequestError),
        (413, "Request exceeds the maximum allowed number of bytes", {}, BadRequestError),
        (401, "Missing Authentication header", {}, AuthenticationError),
        (403, "You are not allowed to sample from this model", {}, PermissionDeniedError),
        (404, "The model `x` does not exist", {}, NotFoundError),
        (409, "conflict", {}, BadRequestError),
        (429, "Rate limit reached for requests", {}, RateLimitError),
        (500, "The server had an error", {}, InternalServerError),
        (502, "Bad Gateway", {}, InternalServerError),
        (504, "Gateway Timeout", {}, InternalServerError),
        (408, "Request Timeout", {}, InternalServerError),
        # context window, in each provider's words
        (
            400,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
            {"code": "context_length_exceeded"},
            ContextWindowExceededError,
        ),
        (400, "", {"code": "context_length_exceeded"}, ContextWindowExceededError),
        (400, recorded_message("anthropic/error_400_prompt_too_long"), {}, ContextWindowExceededError),
        (
            400,
            recorded_message("vertex/error_400_invalid_argument"),
            {"error_type": "INVALID_ARGUMENT"},
            ContextWindowExceededError,
        ),
        (
            400,
            "Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length",
            {},
            ContextWindowExceededError,
        ),
        (400, "Please reduce the length of the messages or completion.", {}, ContextWindowExceededError),
        (400, "Input is too long for requested model.", {}, ContextWindowExceededError),
        (413, "Request too large: too many tokens", {}, ContextWindowExceededError),
        # content policy
        (
            400,
            "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            {"code": "content_filter"},
            ContentPolicyViolationError,
        ),
        (400, "Your request was rejected as a result of our safety system.", {}, ContentPolicyViolationError),
        (400, "blocked", {"code": "content_policy_violation"}, ContentPolicyViolationError),
        # overloaded
        (529, "Overloaded", {"error_type": "overloaded_error"}, ServiceUnavailableError),
        (429, "Overloaded", {"error_type": "overloaded_error"}, ServiceUnavailableError),
        (500, "The model is overloaded. Please try again later.", {}, ServiceUnavailableError),
        (503, "Service Unavailable", {}, ServiceUnavailableError),
        (503, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", {}, ServiceUnavailableError),
        # a rate limit that mentions size is still a rate limit (retry later, not a smaller prompt)
        (429, recorded_message("openai/error_429_rate_limit_tpm"), {"code": "rate_limit_exceeded"}, RateLimitError),
        (429, recorded_message("anthropic/error_429_rate_limit"), {"error_type": "rate_limit_error"}, RateLimitError),
        # an invalid key is an authentication error whatever the status
        (400, recorded_message("xai/error_400_invalid_key"), {}, AuthenticationError),
        (403, "Incorrect API key provided: sk-***", {}, AuthenticationError),
        (400, "bad", {"code": "invalid_api_key"}, AuthenticationError),
        (401, "invalid x-api-key", {"error_type": "authentication_error"}, AuthenticationError),
        (401, "Authentication Fails", {"error_type": "authentication_error"}, AuthenticationError),
    ],
)
def test_error_for_status(status: int, text: str, kw: dict[str, Any], cls: type[APIStatusError]) -> None:
    assert error_for_status(status, text, **kw) is cls


def test_gemini_invalid_key_phrase_is_an_authentication_error() -> None:
    text = recorded_message("gemini/error_400_api_key_invalid")
    assert error_for_status(400, text, error_type="INVALID_ARGUMENT") is AuthenticationError


def test_bedrock_context_window_phrase() -> None:
    text = recorded_message("bedrock/converse_error_400_validation")
    assert error_for_status(400, text) is ContextWindowExceededError


# ---------------------------------------------------------------- decode_error


@pytest.mark.parametrize(
    ("status", "body", "cls", "message", "fields"),
    [
        pytest.param(
            400,
            {
                "error": {
                    "message": "Unsupported parameter: 'stop'",
                    "type": "invalid_request_error",
                    "param": "stop",
                    "code": "unsupported_parameter",
                }
            },
            BadRequestError,
            "Unsupported parameter: 'stop'",
            {"param": "stop", "code": "unsupported_parameter", "type": "invalid_request_error"},
            id="openai-envelope",
        ),
        pytest.param(
            400,
            {"code": "Client specified an invalid argument", "error": "Incorrect API key provided: in***ey."},
            AuthenticationError,
            "Incorrect API key provided: in***ey.",
            {"code": "Client specified an invalid argument"},
            id="xai-string-error",
        ),
        pytest.param(
            404,
            {"error": "model 'llama9' not found"},
            NotFoundError,
            "model 'llama9' not found",
            {},
            id="ollama-string-error",
        ),
        pytest.param(
            401, {"detail": "Invalid API Key"}, AuthenticationError, "Invalid API Key", {}, id="mistral-detail"
        ),
        pytest.param(
            422,
            {"detail": [{"loc": ["body", "messages"], "msg": "field required", "type": "missing"}]},
            BadRequestError,
            "field required",
            {},
            id="fastapi-detail-list",
        ),
        pytest.param(
            400,
            {"message": "The model returned the following errors: malformed input"},
            BadRequestError,
            "The model returned the following errors: malformed input",
            {},
            id="bare-message",
        ),
        pytest.param(
            429,
            [{"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}],
            RateLimitError,
            "Resource has been exhausted",
            {"type": "RESOURCE_EXHAUSTED"},
            id="json-list",
        ),
        pytest.param(
            429,
            {
                "error": {
                    "code": 429,
                    "message": "Provider returned error",
                    "metadata": {"provider_name": "Google", "raw": "gemini is rate-limited upstream"},
                }
            },
            RateLimitError,
            "Provider returned error: gemini is rate-limited upstream",
            {},
            id="openrouter-metadata-raw",
        ),
        pytest.param(
            404,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "DeploymentNotFound",
                    "message": "The API deployment for this resource does not exist.",
                }
            },
            NotFoundError,
            "The API deployment for this resource does not exist.",
            {"code": "DeploymentNotFound"},
            id="azure-deployment",
        ),
        pytest.param(
            503,
            "upstream connect error or disconnect/reset before headers",
            ServiceUnavailableError,
            "upstream connect error or disconnect/reset before headers",
            {},
            id="plain-text-503",
        ),
        pytest.param(500, "", InternalServerError, "HTTP 500", {}, id="empty-body"),
        pytest.param(
            200,
            {"error": {"message": "Rate limited mid-stream", "code": 429}},
            RateLimitError,
            "Rate limited mid-stream",
            {"status_code": 429},
            id="in-stream-error-with-status-code",
        ),
        pytest.param(
            200,
            {"error": {"message": "bad tool call", "type": "invalid_request_error"}},
            BadRequestError,
            "bad tool call",
            {"status_code": 400},
            id="in-stream-invalid-request",
        ),
        pytest.param(
            200,
            {"error": {"message": "boom"}},
            InternalServerError,
            "boom",
            {"status_code": 500},
            id="in-stream-unknown",
        ),
    ],
)
def test_decode_error(status: int, body: Any, cls: type[APIStatusError], message: str, fields: dict[str, Any]) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    err = decode_error(status, raw, {}, provider="acme", model="m1")
    assert type(err) is cls
    assert err.message == f"acme: {message}"
    assert str(err) == err.message
    assert (err.provider, err.model) == ("acme", "m1")
    assert err.body == (body[0] if isinstance(body, list) else body)  # parsed JSON, or the text
    expected = {"status_code": status, **fields}
    assert {k: getattr(err, k) for k in expected} == expected


def test_decode_error_without_provider_has_no_prefix() -> None:
    err = decode_error(404, b'{"error": {"message": "nope"}}')
    assert err.message == "nope"


# ---------------------------------------------------------------- retry hints in headers


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        # Azure sends retry-after-ms: 0 beside retry-after: 1 (recorded); the useful one wins
        ({"retry-after-ms": "0", "retry-after": "1"}, 1.0),
        ({"retry-after-ms": "soon", "retry-after": "4"}, 4.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),  # in the past
        ({"retry-after": "whenever"}, None),
        ({}, None),
    ],
)
def test_retry_after_from_headers(headers: dict[str, str], seconds: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_from_headers(headers, now=now) == seconds


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), ("maybe", None), (None, None)])
def test_should_retry_from_headers(value: str | None, expected: bool | None) -> None:
    assert should_retry_from_headers({} if value is None else {"x-should-retry": value}) is expected


def test_decode_error_reads_retry_headers() -> None:
    when = formatdate(time.time() + 30, usegmt=True)
    err = decode_error(429, b'{"error": {"message": "slow down"}}', {"retry-after": when, "x-should-retry": "false"})
    assert err.retry_after is not None and 28 <= err.retry_after <= 30
    assert err.should_retry is False
    assert err.headers == {"retry-after": when, "x-should-retry": "false"}
    plain = decode_error(503, b"busy", {"retry-after-ms": "1200", "x-should-retry": "true"})
    assert (plain.retry_after, plain.should_retry) == (1.2, True)
    assert decode_error(500, b"x").retry_after is None


# ---------------------------------------------------------------- encode_error: the OpenAI envelope


@functools.cache
def _error_schema() -> Draft202012Validator:
    doc = json.loads((SHARED / "specs" / "openai-openapi.json").read_text())
    return Draft202012Validator({"$ref": "#/components/schemas/ErrorResponse", "components": doc["components"]})


@pytest.mark.parametrize(
    ("exc", "status", "error"),
    [
        (
            BadRequestError(
                "Invalid value for 'stop'", status_code=400, param="stop", error_type="invalid_request_error"
            ),
            400,
            {"message": "Invalid value for 'stop'", "type": "invalid_request_error", "param": "stop", "code": None},
        ),
        (
            RateLimitError("openai: slow down", status_code=429, code="rate_limit_exceeded"),
            429,
            {"message": "openai: slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"},
        ),
        (
            AuthenticationError("bad key", status_code=401),
            401,
            {"message": "bad key", "type": "authentication_error", "param": None, "code": None},
        ),
        (
            PermissionDeniedError("no", status_code=403),
            403,
            {"message": "no", "type": "permission_error", "param": None, "code": None},
        ),
        (
            NotFoundError("gone", status_code=404),
            404,
            {"message": "gone", "type": "not_found_error", "param": None, "code": None},
        ),
        (
            ServiceUnavailableError("busy", status_code=503),
            503,
            {"message": "busy", "type": "server_error", "param": None, "code": None},
        ),
        (
            APITimeoutError("openai: request to api.openai.com timed out"),
            502,
            {
                "message": "openai: request to api.openai.com timed out",
                "type": "api_connection_error",
                "param": None,
                "code": None,
            },
        ),
        # anything unexpected is a 500 that does not leak its text
        (
            KeyError("secret internals"),
            500,
            {"message": "internal error", "type": "api_error", "param": None, "code": None},
        ),
    ],
)
def test_encode_error(exc: BaseException, status: int, error: dict[str, Any]) -> None:
    got_status, body = encode_error(exc)
    assert (got_status, body) == (status, {"error": error})
    assert list(_error_schema().iter_errors(body)) == []


def test_decode_then_encode_keeps_the_providers_words() -> None:
    raw = (RECORDED / "openai" / "error_400_unsupported_parameter.json").read_text()
    fx = json.loads(raw)["response"]
    err = decode_error(fx["status"], fx["body_text"].encode(), provider="openai")
    status, body = encode_error(err)
    assert status == 400
    assert body["error"] == {
        "message": "openai: Unsupported parameter: 'stop' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "stop",
        "code": "unsupported_parameter",
    }
