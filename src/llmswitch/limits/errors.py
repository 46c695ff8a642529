"""Errors of the limiter, hung under llmswitch's one tree (see :mod:`llmswitch.errors`).

    LLMSwitchError
     ├── ConfigError                   a limit, duration or Redis URL is malformed
     └── LimiterError                  the limiter failed an operation
          └── LimiterUnavailableError  the shared backend (Redis) could not be reached in time
               └── BudgetsUnavailableError  ... and a budgeted request is refused for it (degraded, closed)

A refused request is not an error: ``admit`` returns a :class:`~llmswitch.limits.Refusal` that the
gateway turns into a 429 (rate, parallel) or a budget error, so the hot path never raises to say no.
:class:`LimiterUnavailableError` only escapes a bare ``RedisLimiter``; ``open_limiter`` wraps it in a
fallback that degrades to local limits instead; that fallback raises :class:`BudgetsUnavailableError`
for a budgeted request when its policy is to fail closed (see :mod:`llmswitch.limits.degraded`).
"""

from __future__ import annotations

from llmswitch.errors import LLMSwitchError


class LimiterError(LLMSwitchError):
    """The limiter failed an operation."""


class LimiterUnavailableError(LimiterError):
    """The shared backend could not be reached, or did not answer within its time bound.

    ``url`` is the backend's URL with its password masked, safe to log.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class BudgetsUnavailableError(LimiterUnavailableError):
    """A request carries a budget that cannot be checked now: the shared backend is away and the
    degraded policy is ``closed`` (or the store could not say what was spent). ``retry_after_s`` is
    when the backend will next be tried."""

    def __init__(self, message: str, *, url: str, retry_after_s: float) -> None:
        super().__init__(message, url=url)
        self.retry_after_s = retry_after_s
