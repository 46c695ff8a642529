"""The one error tree of llmswitch, named as the openai SDK names its errors.

    LLMSwitchError
     ├── ConfigError                      a model string, setting or config file is wrong
     ├── ResponseParseError               a structured-output reply did not match its schema
     ├── MaxStepsExceededError            a tool loop hit its step limit
     └── APIError                         anything that went wrong talking to a provider
          ├── APIConnectionError          the provider could not be reached
          │    └── APITimeoutError        ... or did not answer in time
          ├── APIResponseValidationError  the provider answered with something unreadable
          └── APIStatusError              the provider answered with an error status
               ├── BadRequestError                    400 / 413 / 422
               │    ├── ContextWindowExceededError    the prompt is too long for the model
               │    ├── ContentPolicyViolationError   refused by a safety or policy filter
               │    └── UnsupportedParamsError        a parameter the deployment cannot take (no drop_params)
               ├── AuthenticationError                401, or an invalid key in any status
               ├── PermissionDeniedError              403
               ├── NotFoundError                      404, unknown model or deployment
               ├── RateLimitError                     429
               └── InternalServerError                every 5xx
                    └── ServiceUnavailableError       503, 529, "overloaded"

Every :class:`APIStatusError` carries ``status_code``, ``provider``, ``body`` (the parsed error body,
or its text) and ``retry_after`` (seconds, from headers or the body) and its message includes the
provider's own error text. :func:`error_for_status` picks the class by meaning, not only status.
"""

from __future__ import annotations

from typing import Any


class LLMSwitchError(Exception):
    """Base of every error llmswitch raises on purpose."""


class ConfigError(LLMSwitchError, ValueError):
    """A model string, keyword or configuration value is invalid."""


class ResponseParseError(LLMSwitchError, ValueError):
    """A structured-output response was not valid JSON or did not validate against its schema."""

    def __init__(self, message: str, *, content: str | None = None) -> None:
        super().__init__(message)
        self.content = content


class APIError(LLMSwitchError):
    """A call to a provider failed."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.body = body

    # the router reads these; only some subclasses set them meaningfully
    status_code: int | None = None
    retry_after: float | None = None
    should_retry: bool | None = None


class APIConnectionError(APIError):
    """The provider could not be reached, or the connection broke mid-way."""


class APITimeoutError(APIConnectionError):
    """The provider did not answer within the timeout."""


class APIResponseValidationError(APIError):
    """The provider answered 2xx with a body that could not be read."""


class APIStatusError(APIError):
    """The provider answered with an error status (or an error event inside a stream)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        provider: str | None = None,
        model: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        error_type: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider, model=model, body=body)
        self.status_code = status_code
        self.retry_after = retry_after
        self.should_retry = should_retry
        self.headers = headers or {}
        self.code = code
        self.type = error_type
        self.param = param


class BadRequestError(APIStatusError):
    pass


class ContextWindowExceededError(BadRequestError):
    pass


class ContentPolicyViolationError(BadRequestError):
    pass


class UnsupportedParamsError(BadRequestError):
    """The request carries a parameter the chosen deployment cannot take, and ``drop_params`` is not set.

    Raised before any upstream call. ``param`` names the caller's own field (``top_k``,
    ``generationConfig.candidateCount`` …); ``params`` lists them all.

        >>> llmswitch.completion("anthropic/claude-sonnet-4-5", msgs, seed=1)  # doctest: +SKIP
        UnsupportedParamsError: anthropic/claude-sonnet-4-5 cannot take 'seed' ...
    """

    params: tuple[str, ...] = ()


class AuthenticationError(APIStatusError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    pass


class InternalServerError(APIStatusError):
    pass


class ServiceUnavailableError(InternalServerError):
    pass


_CONTEXT_WORDS = (
    "context length",
    "context_length_exceeded",
    "maximum context",
    "context window",
    "prompt is too long",
    "too many tokens",
    "input is too long",
    "exceeds the maximum number of tokens",
    "reduce the length",
    "string_above_max_length",
    "input tokens exceeded",
)
_POLICY_WORDS = ("content_policy", "content policy", "content management policy", "safety system", "content_filter")
_AUTH_WORDS = (
    "api key not valid",
    "incorrect api key",
    "invalid api key",
    "invalid x-api-key",
    "api_key_invalid",
    "invalid_api_key",
)


def error_for_status(
    status: int, text: str, *, code: str | None = None, error_type: str | None = None
) -> type[APIStatusError]:
    """The error class for a provider's status and error text, judged by meaning first.

    >>> error_for_status(400, "This model's maximum context length is 8192 tokens").__name__
    'ContextWindowExceededError'
    """
    low = f"{text} {code or ''} {error_type or ''}".lower()
    if any(w in low for w in _AUTH_WORDS) or error_type == "authentication_error":
        return AuthenticationError
    if code == "model_not_found":  # OpenAI's Responses API says it with a 400
        return NotFoundError
    if status in (400, 413, 422) or (status < 500 and status not in (401, 403, 404, 408, 409, 429)):
        if any(w in low for w in _CONTEXT_WORDS) or (status == 413 and "token" in low):
            return ContextWindowExceededError
        if any(w in low for w in _POLICY_WORDS):
            return ContentPolicyViolationError
        return BadRequestError
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDeniedError
    if status == 404:
        return NotFoundError
    if status == 429:
        if error_type == "overloaded_error" or ("overloaded" in low and "rate" not in low):
            return ServiceUnavailableError
        return RateLimitError
    if status in (503, 529) or "overloaded" in low:
        return ServiceUnavailableError
    if status == 408:
        return InternalServerError
    if status >= 500:
        return InternalServerError
    return BadRequestError if status < 500 else InternalServerError


class MaxStepsExceededError(LLMSwitchError):
    """A tool loop reached its step limit before the model gave a final answer."""
