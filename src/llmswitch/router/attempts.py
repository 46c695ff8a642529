"""One record per call the router sent upstream, told exactly once, for whoever accounts for them.

A request may take several attempts: a timed-out one, then a retry that answers. The upstream may have
done (and billed) the work of the timed-out one all the same, so the router tells its ``on_attempt``
hook about *every* attempt it sent, once each, when its outcome is known: at the answer or the failure,
and for a stream when the stream ends (its usage is only known then). Calls refused before anything was
sent (a parameter the deployment cannot take, a missing key) are not attempts and are not told.

    >>> seen = []
    >>> router = Router(model_list, on_attempt=seen.append)  # doctest: +SKIP
    >>> [(a.deployment, a.outcome) for a in seen]  # doctest: +SKIP
    [('main#0', 'timeout'), ('main#0', 'ok')]
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from llmswitch import ir
from llmswitch.errors import APIError, APITimeoutError

Outcome = Literal["ok", "error", "timeout", "cancelled"]

log = logging.getLogger("llmswitch.router")


class Attempt:
    """What one call upstream came to. Every told attempt was sent: the provider may bill it even when no
    answer came back (``outcome`` ``"timeout"`` or ``"cancelled"``)."""

    __slots__ = (
        "_answer",
        "_usage",
        "deployment",
        "elapsed",
        "error",
        "group",
        "model",
        "number",
        "outcome",
        "probe",
        "provider",
        "status",
    )

    def __init__(
        self,
        *,
        deployment: str,
        group: str,
        provider: str,
        model: str,
        number: int,
        outcome: Outcome,
        elapsed: float,
        error: str | None = None,
        status: int | None = None,
        usage: ir.Usage | None = None,
        probe: bool = False,
        answer: Any = None,
    ) -> None:
        self.deployment = deployment
        self.group = group
        self.provider = provider
        self.model = model
        self.number = number
        """1 for the request's first attempt, 2 for the next (retries, failovers and fallbacks alike)."""
        self.outcome: Outcome = outcome
        self.elapsed = elapsed
        self.error = error
        self.status = status
        self._usage = usage
        # the answer whose usage is read only if someone asks (a relayed body is parsed again for it)
        self._answer = answer
        self.probe = probe
        """A background health check (``start_health_checks``), no client's request."""

    @property
    def usage(self) -> ir.Usage | None:
        """Tokens the provider reported (answers only; a timed-out attempt's are unknown)."""
        if self._answer is not None:
            from llmswitch.router.outcomes import usage_of

            self._usage, self._answer = usage_of(self._answer), None
        return self._usage

    def __repr__(self) -> str:
        return f"<Attempt {self.number} {self.deployment} {self.outcome}{f' {self.error}' if self.error else ''}>"


AttemptHook = Callable[[Attempt], None]


def outcome_of(exc: BaseException | None) -> tuple[Outcome, str | None, int | None]:
    """(outcome, error class name, status) for how an attempt ended."""
    if exc is None:
        return "ok", None, None
    if isinstance(exc, APITimeoutError):
        return "timeout", type(exc).__name__, None
    if isinstance(exc, APIError):
        return "error", type(exc).__name__, exc.status_code
    return "cancelled", type(exc).__name__, None


def tell(hook: AttemptHook, attempt: Attempt) -> None:
    """Call the hook; its failure is logged, never the request's."""
    try:
        hook(attempt)
    except Exception:
        log.exception("on_attempt hook failed for %r", attempt)
