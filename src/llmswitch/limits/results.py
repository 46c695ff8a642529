"""What the limiter answers: a :class:`Reservation` to settle later, or a :class:`Refusal` naming the limit.

    result = await limiter.admit([SubjectLimits("key:9f2c", rpm_limit=60)], tokens=900, cost=0.02)
    if isinstance(result, Refusal):
        raise_429(result.message, rate_limit_headers(result.decision))
    ...                                   # call the model
    await limiter.settle(result, actual_cost=0.013, actual_tokens=640)

Both carry a :class:`Decision`, the numbers behind the ``x-ratelimit-*`` headers. These are plain
slotted dataclasses, not frozen ones: one is built per request, and a frozen one costs about a
microsecond more to build. Treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple

from llmswitch.limits.periods import NEVER, from_us
from llmswitch.limits.spec import LimitKind

if TYPE_CHECKING:
    from llmswitch.limits.admission import AdmitRequest
    from llmswitch.limits.base import Limiter


class LimitRef(NamedTuple):
    """One limit of one subject, e.g. ``LimitRef("key:9f2c", "rpm_limit")``."""

    subject: str
    kind: LimitKind

    def __str__(self) -> str:
        return f"{self.kind} of {self.subject}"


@dataclass(slots=True)
class Window:
    """A per-minute limit as clients see it: ``remaining`` now, ``reset_s`` until it is full again."""

    limit: int
    remaining: int
    reset_s: float


@dataclass(slots=True)
class Decision:
    """The outcome of the rate checks, and the numbers for the response headers.

    ``limit``, ``remaining`` and ``reset_s`` describe ``which_limit``: the limit that refused, or when
    allowed the one closest to refusing. ``requests`` and ``tokens`` are the tightest rpm and tpm
    windows over all subjects, as OpenAI's ``x-ratelimit-*-requests`` / ``-tokens`` headers report them.
    ``retry_after_s`` is ``None`` when allowed, and when waiting cannot help (a request bigger than the
    whole limit, a parallel-requests limit whose slots free up when other requests end).
    """

    allowed: bool
    retry_after_s: float | None = None
    limit: float | None = None
    remaining: float | None = None
    reset_s: float | None = None
    which_limit: LimitRef | None = None
    requests: Window | None = None
    tokens: Window | None = None


@dataclass(slots=True)
class BudgetState:
    """A subject's budget as the limiter holds it: spend settled this period, and reserved in flight."""

    subject: str
    max_budget: float | None
    spent: float
    reserved: float
    reset_at_us: int

    @property
    def reset_at(self) -> datetime | None:
        """When the spend next resets to zero; ``None`` if it never does."""
        return None if self.reset_at_us == NEVER else from_us(self.reset_at_us)

    @property
    def remaining(self) -> float | None:
        """What is left to admit against; ``None`` without a budget."""
        if self.max_budget is None:
            return None
        return max(0.0, self.max_budget - self.spent - self.reserved)


@dataclass(slots=True)
class Refusal:
    """A request that a limit refused; nothing was consumed or reserved for it.

    ``limit`` is the configured limit (requests or tokens per minute, parallel requests, USD), ``used``
    what counts against it right now (in the window, in flight, spent plus reserved), ``requested``
    what this request needed of it. Budget refusals carry the budget's state in ``budget``.
    """

    which_limit: LimitRef
    limit: float
    used: float
    requested: float
    retry_after_s: float | None
    decision: Decision
    budget: BudgetState | None = None
    budgets: tuple[BudgetState, ...] = ()
    allowed: ClassVar[Literal[False]] = False

    @property
    def message(self) -> str:
        """A message for the caller, naming the limit (and for budgets, the spend and reset time)."""
        subject, kind = self.which_limit
        if kind == "max_budget" and self.budget is not None:
            b = self.budget
            inflight = f" (+{b.reserved:.6g} reserved by requests in flight)" if b.reserved else ""
            reset = f"; resets at {b.reset_at.isoformat()}" if b.reset_at is not None else ""
            return (
                f"Budget has been exceeded! {subject}: current cost {b.spent:.6g}{inflight}, "
                f"max_budget {self.limit:.6g}{reset}"
            )
        if kind == "max_parallel_requests":
            return f"Max parallel request limit reached for {subject}: {kind}={self.limit:g} in flight"
        if self.retry_after_s is None:
            unit = "requests" if kind == "rpm_limit" else "tokens"
            return (
                f"Rate limit for {subject}: this request needs about {self.requested:g} {unit}, "
                f"more than the whole {kind}={self.limit:g} per minute"
            )
        return (
            f"Rate limit reached for {subject}: {kind}={self.limit:g} per minute; retry in {self.retry_after_s:.3g} s"
        )


class Reservation:
    """What an admitted request holds until it ends: tokens estimated, a parallel slot, budget reserved.

    Give it back exactly once: ``settle`` with the real cost and tokens when the call is answered,
    ``release`` when it failed. One that is never given back expires after the limiter's lease TTL, so
    a crashed process cannot hold a budget or a slot forever.
    """

    __slots__ = ("_done", "_origin", "_request", "budgets", "decision")
    allowed: ClassVar[Literal[True]] = True

    def __init__(
        self, decision: Decision, budgets: tuple[BudgetState, ...], request: AdmitRequest, origin: Limiter
    ) -> None:
        self.decision = decision
        self.budgets = budgets
        self._request = request
        self._origin = origin
        self._done = False

    def __repr__(self) -> str:
        subjects = ", ".join(lim.subject for lim in self._request.limits)
        state = "settled" if self._done else "held"
        return f"<Reservation {state} tokens={self.tokens} cost={self.cost:g} for {subjects}>"

    @property
    def tokens(self) -> int:
        """The token estimate counted against tpm limits at admission."""
        return self._request.tokens

    @property
    def cost(self) -> float:
        """The cost estimate reserved against budgets at admission."""
        return self._request.cost

    @property
    def settled(self) -> bool:
        return self._done
