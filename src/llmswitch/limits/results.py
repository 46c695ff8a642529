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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple

from llmswitch.limits.money import to_nanos, usd
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
    """A subject's budget as the limiter holds it: spend settled this period, and reserved in flight.

    Amounts are USD, each the double nearest to the exact whole nano-dollars the limiter counts."""

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
        # in nano-dollars, so that $0.05 less ten times $0.005 is 0, not 3.5e-18
        return usd(max(0, to_nanos(self.max_budget) - to_nanos(self.spent) - to_nanos(self.reserved)))


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

    ``decision`` and ``budgets`` are worked out from the backend's numbers when first read: most
    admissions are settled without anyone looking at them.
    """

    __slots__ = ("_budgets", "_decision", "_done", "_origin", "_raw", "_request")
    allowed: ClassVar[Literal[True]] = True

    def __init__(
        self,
        decision: Decision | None,
        budgets: tuple[BudgetState, ...] | None,
        request: AdmitRequest,
        origin: Limiter,
        raw: Sequence[float] | None = None,
    ) -> None:
        # either both of decision and budgets, or the raw numbers they are worked out from (see admission.judge)
        self._decision = decision
        self._budgets = budgets
        self._raw = raw
        self._request = request
        self._origin = origin
        self._done = False

    @property
    def decision(self) -> Decision:
        """The numbers for the ``x-ratelimit-*`` headers (see :class:`Decision`)."""
        if self._decision is None:
            self._judge()
        assert self._decision is not None
        return self._decision

    @property
    def budgets(self) -> tuple[BudgetState, ...]:
        """The state of every budget the request reserved against, as the admission left them."""
        if self._budgets is None:
            self._judge()
        assert self._budgets is not None
        return self._budgets

    def _judge(self) -> None:
        from llmswitch.limits.admission import judge

        assert self._raw is not None
        outcome = judge(self._request, self._raw)
        if isinstance(outcome, Refusal):  # a backend reported "ok" for numbers that refuse: a bug
            raise AssertionError(f"an admitted request's numbers refuse it: {outcome.message}")
        self._decision, self._budgets = outcome

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
        """The cost estimate (USD) reserved against budgets at admission."""
        return usd(self._request.cost)

    @property
    def settled(self) -> bool:
        return self._done

    @property
    def admitted_us(self) -> int:
        """When it was admitted, on the limiter's clock (µs since the epoch)."""
        return self._request.now_us
