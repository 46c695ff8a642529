"""When to try a call again, and how long to wait first.

Backoff is exponential with *full jitter* (a uniform draw between 0 and the exponential step), which
spreads retries from many clients instead of synchronising them. A provider's own word wins:
``retry-after`` / ``retry-after-ms`` / Gemini's ``RetryInfo`` set the wait (capped), and
``x-should-retry`` overrides the class-based decision.

    >>> policy = RetryPolicy(num_retries=2, base_delay=0.5, max_delay=8.0)
    >>> policy.delay(RateLimitError("slow down", status_code=429, retry_after=3.0), attempt=0)
    3.0
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from llmswitch.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    InternalServerError,
    RateLimitError,
)


def is_transient(exc: BaseException) -> bool:
    """True for failures that may pass by themselves: 429, 5xx, 408, connection errors and timeouts."""
    if not isinstance(exc, APIError):
        return False
    if exc.should_retry is not None and isinstance(exc, APIStatusError):
        return exc.should_retry
    if isinstance(exc, RateLimitError | InternalServerError | APIConnectionError):
        return True
    return isinstance(exc, APIStatusError) and exc.status_code in (408, 409)


@dataclass
class RetryPolicy:
    num_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    # the longest a provider's retry-after is honoured before giving up on waiting
    max_retry_after: float = 60.0
    rng: Callable[[], float] = field(default=random.random)

    def delay(self, exc: BaseException, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        ra = getattr(exc, "retry_after", None)
        if isinstance(ra, int | float) and ra > 0:
            return float(min(ra, self.max_retry_after))
        return backoff(attempt, self.base_delay, self.max_delay, self.rng)

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        return attempt < self.num_retries and is_transient(exc)


def backoff(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng() * min(cap, base * (1 << attempt))
