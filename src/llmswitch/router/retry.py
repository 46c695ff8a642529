"""When to try a call again, where, and how long to wait first.

Every failure is judged once, by its class (:func:`classify`):

- ``"retry"``: it may pass by itself on the same deployment (5xx, timeouts, connection resets);
- ``"failover"``: it says something about *this* deployment (429 for its quota, its key rejected, the
  model missing there), so another deployment should take the request;
- ``"fail"``: the request itself is wrong (400, context too long, content policy): no deployment will
  answer it differently, so it fails fast (unless a fallback group is configured for that class).

Backoff is exponential with *full jitter* (a uniform draw between 0 and the exponential step), which
spreads retries from many clients instead of synchronising them. A provider's own word wins:
``retry-after`` / ``retry-after-ms`` / Gemini's ``RetryInfo`` / ``x-ratelimit-reset-*`` set the wait
(capped), and ``x-should-retry`` overrides the class-based decision.

    >>> policy = RetryPolicy(num_retries=2, base_delay=0.5, max_delay=8.0)
    >>> policy.delay(RateLimitError("slow down", status_code=429, retry_after=3.0), attempt=0)
    3.0
    >>> parse_duration("6m0s"), parse_duration("12ms")
    (360.0, 0.012)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from llmswitch.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyViolationError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from llmswitch.procid import RNG

Action = Literal["retry", "failover", "fail"]

# LiteLLM's names for the error classes of ``retry_policy`` / ``allowed_fails_policy``
ErrorClass = Literal[
    "BadRequestError",
    "AuthenticationError",
    "TimeoutError",
    "RateLimitError",
    "ContentPolicyViolationError",
    "InternalServerError",
]


def is_transient(exc: BaseException) -> bool:
    """True for failures that may pass by themselves: 429, 5xx, 408, connection errors and timeouts."""
    if not isinstance(exc, APIError):
        return False
    if exc.should_retry is not None and isinstance(exc, APIStatusError):
        return exc.should_retry
    if isinstance(exc, RateLimitError | InternalServerError | APIConnectionError):
        return True
    return isinstance(exc, APIStatusError) and exc.status_code in (408, 409)


def classify(exc: APIError) -> Action:
    """What the router does about a failed attempt.

    >>> classify(RateLimitError("quota", status_code=429))
    'failover'
    >>> classify(BadRequestError("bad", status_code=400))
    'fail'
    """
    if isinstance(exc, RateLimitError | AuthenticationError | PermissionDeniedError):
        return "failover"
    # a 404 from the provider means the model is not there (a wrong deployment); ours means no such group
    if isinstance(exc, NotFoundError):
        return "failover" if exc.provider != "llmswitch" else "fail"
    if isinstance(exc, InternalServerError | APIConnectionError) or exc.status_code in (408, 409):
        # x-should-retry: false says "not here, not now"; another deployment may still answer
        return "failover" if exc.should_retry is False else "retry"
    return "retry" if exc.should_retry is True else "fail"


def error_class(exc: APIError) -> ErrorClass:
    """The LiteLLM error-class name ``retry_policy`` and ``allowed_fails_policy`` key their counts by."""
    if isinstance(exc, ContentPolicyViolationError):
        return "ContentPolicyViolationError"
    if isinstance(exc, BadRequestError):
        return "BadRequestError"
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return "AuthenticationError"
    if isinstance(exc, APITimeoutError) or exc.status_code == 408:
        return "TimeoutError"
    if isinstance(exc, RateLimitError):
        return "RateLimitError"
    if isinstance(exc, APIStatusError) and exc.status_code is not None and exc.status_code < 500:
        return "BadRequestError"
    return "InternalServerError"


# ---------------------------------------------------------------- the provider's own wait

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str | None) -> float | None:
    """Seconds from a Go-style duration as OpenAI's ``x-ratelimit-reset-*`` headers write it
    (``"1s"``, ``"6m0s"``, ``"12ms"``, ``"1h2m3.5s"``), or from a plain number of seconds.

    >>> parse_duration("1s"), parse_duration("0.5"), parse_duration("soon")
    (1.0, 0.5, None)
    """
    if not text:
        return None
    text = text.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    total, end = 0.0, 0
    for m in _DURATION_PART.finditer(text):
        if m.start() != end:
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        end = m.end()
    return total if end == len(text) and end else None


def _reset_at(text: str | None, now: float) -> float | None:
    """Seconds until an RFC 3339 moment (Anthropic's ``anthropic-ratelimit-*-reset``)."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return max(when - now, 0.0)


def retry_after_of(exc: BaseException, now: float | None = None) -> float | None:
    """Seconds the provider asked to wait, in any form it uses; ``None`` when it did not say.

    ``exc.retry_after`` (``retry-after-ms``, ``retry-after``, Gemini's ``RetryInfo``) comes first. Then
    the rate-limit reset headers: the reset of the limit that is exhausted (remaining 0), or the
    soonest reset when the headers do not say which one ran out.

    >>> e = RateLimitError("x", status_code=429, headers={"x-ratelimit-reset-requests": "6m0s",
    ...     "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-tokens": "12ms"})
    >>> retry_after_of(e)
    360.0
    """
    ra = getattr(exc, "retry_after", None)
    if isinstance(ra, int | float) and ra > 0:
        return float(ra)
    headers: Mapping[str, str] | None = getattr(exc, "headers", None)
    if not headers:
        return None
    exhausted: list[float] = []
    resets: list[float] = []
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        wait = parse_duration(headers.get(f"x-ratelimit-reset-{kind}"))
        if wait is None:
            if now is None:
                import time

                now = time.time()
            wait = _reset_at(headers.get(f"anthropic-ratelimit-{kind}-reset"), now)
        if wait is None:
            continue
        resets.append(wait)
        remaining = headers.get(f"x-ratelimit-remaining-{kind}") or headers.get(f"anthropic-ratelimit-{kind}-remaining")
        if remaining is not None and remaining.strip() == "0":
            exhausted.append(wait)
    if exhausted:
        return max(exhausted)
    return min(resets) if resets else None


# ---------------------------------------------------------------- policy


@dataclass
class RetryPolicy:
    """How often and how long: ``num_retries`` overall, ``per_class`` overrides by LiteLLM error class.

    >>> p = RetryPolicy(num_retries=2, per_class={"RateLimitError": 5})
    >>> p.limit(RateLimitError("x", status_code=429)), p.limit(InternalServerError("x", status_code=500))
    (5, 2)
    """

    num_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    # the longest a provider's retry-after is honoured before giving up on waiting
    max_retry_after: float = 60.0
    rng: Callable[[], float] = field(default=RNG.random)
    per_class: Mapping[str, int] = field(default_factory=dict)

    def delay(self, exc: BaseException, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        ra = retry_after_of(exc)
        if ra is not None:
            return float(min(ra, self.max_retry_after))
        return backoff(attempt, self.base_delay, self.max_delay, self.rng)

    def limit(self, exc: APIError) -> int:
        """How many retries an error of this class may have in one request."""
        if self.per_class:
            n = self.per_class.get(f"{error_class(exc)}Retries", self.per_class.get(error_class(exc)))
            if n is not None:
                return n
        return self.num_retries

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        if not isinstance(exc, APIError):
            return False
        explicit = exc.should_retry is None and self.explicit(exc)
        return attempt < self.limit(exc) and (is_transient(exc) or explicit)

    def explicit(self, exc: APIError) -> bool:
        """Whether ``per_class`` names the error's class: then it is retried even if it is not transient
        (LiteLLM does the same with ``BadRequestErrorRetries``)."""
        if not self.per_class:
            return False
        name = error_class(exc)
        return bool(self.per_class.get(f"{name}Retries", self.per_class.get(name)))


# ---------------------------------------------------------------- one request's retries
# ``retries`` counts what a request has spent: by error class where ``retry_policy`` names the class, and
# overall under "*" (every retry counts there too)


def _retry_key(policy: RetryPolicy, exc: APIError | None) -> str:
    if exc is None or not policy.per_class:
        return "*"
    name = error_class(exc)
    return name if (f"{name}Retries" in policy.per_class or name in policy.per_class) else "*"


def may_retry(policy: RetryPolicy, exc: APIError | None, retries: dict[str, int], num_retries: int | None) -> bool:
    """Whether the request may spend one more retry (``num_retries``, else the policy's, or ``retry_policy``
    for the error's class)."""
    if exc is not None and exc.should_retry is False:
        return False
    key = _retry_key(policy, exc)
    if key == "*":
        limit = num_retries if num_retries is not None else policy.num_retries
    else:
        limit = policy.limit(exc)  # type: ignore[arg-type]
    return retries.get(key, 0) < limit


def count_retry(policy: RetryPolicy, exc: APIError | None, retries: dict[str, int]) -> None:
    key = _retry_key(policy, exc)
    retries[key] = retries.get(key, 0) + 1
    if key != "*":
        retries["*"] = retries.get("*", 0) + 1


def retry_wait(policy: RetryPolicy, exc: APIError | None, retries: dict[str, int], floor: float) -> float:
    """Seconds before the next retry: the backoff (or the error's retry-after), at least ``floor``."""
    if exc is None:
        return 0.0
    return max(policy.delay(exc, retries.get("*", 0)), floor)


def backoff(attempt: int, base: float, cap: float, rng: Callable[[], float] = RNG.random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng() * min(cap, base * (1 << attempt))
