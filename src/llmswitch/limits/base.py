"""The limiter interface: four primitives a backend implements, and the API the gateway calls.

    limiter = open_limiter()                                   # memory; redis_url=... for Redis
    key = SubjectLimits("key:9f2c", rpm_limit=60, tpm_limit=90_000, max_budget=25.0)
    result = await limiter.admit([key, team], tokens=1200, cost=0.03)
    if result.allowed:
        try:
            response = await call_model()
        except Exception:
            await limiter.release(result)
            raise
        await limiter.settle(result, response.cost, actual_tokens=response.usage.total_tokens)

A backend implements ``_admit`` (check every limit of every subject and, only if all pass, consume
them: all or nothing), ``_settle``, ``_settle_tokens`` and ``_seed``; everything else is built here
on top of them, so each backend is a few atomic operations and no policy.
"""

from __future__ import annotations

import itertools
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import ClassVar, Literal, Self

from llmswitch import procid
from llmswitch.errors import ConfigError
from llmswitch.limits.admission import AdmitRequest, Unseeded
from llmswitch.limits.errors import LimiterError
from llmswitch.limits.money import to_nanos
from llmswitch.limits.periods import NEVER, BudgetPeriod, to_us
from llmswitch.limits.results import BudgetState, Decision, Refusal, Reservation
from llmswitch.limits.spec import SubjectLimits

Money = float | int | Decimal
"""An amount of USD as callers give it; the limiters count whole nano-dollars (:mod:`llmswitch.limits.money`)."""

SpendLoader = Callable[[str], Awaitable[tuple[Money, datetime | None] | None]]
"""``await loader(subject)`` -> ``(spent, budget_reset_at)`` from the store, or ``None`` if unknown."""

SeedMode = Literal["raise", "set", "read"]
DEFAULT_LEASE_TTL_S = 900.0  # longer than any request's deadline: a reservation outliving it is a leak
# lease ids only need to be unique among live leases of a subject: the process's prefix (renewed in a
# forked child, see procid) keeps processes apart, one counter for the process keeps its limiters apart
_lease_seq = itertools.count(1)


class Limiter(ABC):
    """Rate limits, parallel-request slots and budgets for subjects (``"key:<hash>"``, ``"team:<id>"``).

    ``clock`` returns epoch seconds (inject one in tests). ``lease_ttl_s`` bounds how long a reservation
    or slot is held if its holder never gives it back (a crashed process). With ``spend_loader``, a
    budget the limiter has never seen is loaded from the store before the first request is admitted
    against it, so a restarted or flushed Redis cannot forget what a key has spent.
    """

    name: ClassVar[str]

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        spend_loader: SpendLoader | None = None,
    ) -> None:
        if not (isinstance(lease_ttl_s, int | float) and math.isfinite(lease_ttl_s) and lease_ttl_s > 0):
            raise ConfigError(f"lease_ttl_s must be a positive number of seconds, got {lease_ttl_s!r}")
        self._clock = clock
        self._lease_ttl_us = int(lease_ttl_s * 1_000_000)
        self._spend_loader = spend_loader

    # -- the primitives a backend implements ------------------------------------------------------

    @abstractmethod
    async def _admit(self, req: AdmitRequest) -> Reservation | Refusal | Unseeded:
        """Check every limit in ``req``; consume all of them only if every one admits. Atomic."""

    @abstractmethod
    async def _settle(self, res: Reservation, cost: int, tokens: int | None, now_us: int) -> None:
        """Give back what ``res`` holds; add ``cost`` (nano-dollars) to its budgets; move tpm debt to ``tokens``."""

    @abstractmethod
    async def _settle_tokens(self, subject: str, delta: int, now_us: int) -> None:
        """Move ``subject``'s tpm debt by ``delta`` tokens (negative gives tokens back)."""

    @abstractmethod
    async def _seed(
        self, subject: str, mode: SeedMode, spent: int, valid: bool, end_us: int, now_us: int
    ) -> BudgetState | None:
        """``raise``: spend to at least ``spent`` nano-dollars (if ``valid``); ``set``: to exactly it; ``read``: neither."""

    async def _renew(self, res: Reservation, now_us: int) -> None:  # noqa: B027 - optional, see renew()
        """Extend the leases of ``res`` (its parallel slots and budget reservations) to ``now_us`` plus the TTL."""

    async def _replay_settle(
        self, res: Reservation, cost: int, tokens: int | None, settled_us: int, now_us: int
    ) -> None:
        """:meth:`_settle` given late (an outage's settlement replayed), made at ``settled_us``. A backend
        that can lose its state and load it again from the store skips one the store already holds."""
        await self._settle(res, cost, tokens, now_us)

    async def aclose(self) -> None:  # noqa: B027 - optional: only backends holding connections override it
        """Release connections; the limiter is not used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- the API --------------------------------------------------------------------------------

    @property
    def lease_ttl_s(self) -> float:
        """How long a reservation or slot is held if its holder never gives it back nor renews it."""
        return self._lease_ttl_us / 1_000_000

    def now_us(self) -> int:
        """The limiter's clock in microseconds since the epoch."""
        return int(self._clock() * 1_000_000)

    async def admit(
        self, limits: Sequence[SubjectLimits], *, tokens: int = 0, cost: Money = 0.0
    ) -> Reservation | Refusal:
        """Admit one request against every limit of ``limits``, all or nothing, atomically.

        ``tokens`` is the estimate counted against tpm limits, ``cost`` (USD) the estimate reserved
        against budgets. Money is counted in whole nano-dollars, exactly (a float is read as the
        decimal it was written as, see :mod:`llmswitch.limits.money`), so sequential requests of $0.005
        each against a $0.05 budget are admitted exactly ten times. A budget admits while
        ``spent + reserved < max_budget``, as LiteLLM's does, so however many
        requests race, the last one admitted is the only one that can end past the budget: overshoot
        is less than one request's estimate (plus whatever real costs exceed their estimates).
        Nothing is consumed when any limit refuses.

            result = await limiter.admit([SubjectLimits("key:9f2c", rpm_limit=2)])
            result.decision.requests        # Window(limit=2, remaining=1, reset_s=30.0)
        """
        req = self._admit_request(limits, tokens, cost)
        result = await self._admit(req)
        if isinstance(result, Unseeded):
            await self._load(result.subjects, limits, req.now_us)
            req.strict = False
            result = await self._admit(req)
        if isinstance(result, Unseeded):  # only strict admissions report it
            raise LimiterError(f"budgets of {', '.join(result.subjects)} are missing after seeding")
        return result

    def admit_nowait(
        self, limits: Sequence[SubjectLimits], *, tokens: int = 0, cost: Money = 0.0
    ) -> Reservation | Refusal | None:
        """:meth:`admit` answered without waiting, when the backend can (memory); ``None`` when it cannot
        (it needs the network, or a budget's spend from the store): then ``await admit(...)``.

        Nothing is consumed when it returns ``None``. The asynchronous API costs a coroutine or two
        per call; a limiter held in memory needs none, and the gateway calls this on every request.
        """
        return None

    def settle_nowait(self, reservation: Reservation, actual_cost: Money, *, actual_tokens: int | None = None) -> bool:
        """:meth:`settle` done at once if the backend can (memory): ``True``; else ``False`` and nothing
        done, so ``await settle(...)``."""
        return False

    def settle_soon(
        self, reservation: Reservation, actual_cost: Money, *, actual_tokens: int | None = None
    ) -> Awaitable[None]:
        """:meth:`settle`, with what can be sent to the backend at once sent before this returns; await
        the result for the rest. The gateway calls it before the answer goes out and awaits it after, so
        the settlement reaches a shared backend ahead of any request the answer leads to, without its
        round trip on the response path. By default nothing is sent early."""
        return self.settle(reservation, actual_cost, actual_tokens=actual_tokens)

    def _admit_request(self, limits: Sequence[SubjectLimits], tokens: int, cost: Money) -> AdmitRequest:
        if type(tokens) is not int or tokens < 0:
            check_tokens(tokens)
        nanos = 0 if cost == 0.0 and type(cost) is float else to_nanos(cost)
        leases = False
        for lim in limits:
            if lim.max_parallel_requests is not None or lim.max_budget is not None:
                leases = True
                break
        return AdmitRequest(
            limits,
            tokens,
            nanos,
            f"{procid.PREFIX}{next(_lease_seq):x}" if leases else "",
            int(self._clock() * 1_000_000),
            False,
            self._spend_loader is not None,
        )

    async def settle(self, reservation: Reservation, actual_cost: Money, *, actual_tokens: int | None = None) -> None:
        """Turn a reservation into spend: free its slots and reserved estimate, add ``actual_cost``.

        With ``actual_tokens`` the tpm limits count the real usage instead of the estimate. Settling a
        reservation a second time does nothing (so a ``finally`` that also releases is harmless).

            await limiter.settle(reservation, 0.0123, actual_tokens=812)
        """
        nanos = to_nanos(actual_cost)
        if actual_tokens is not None:
            check_tokens(actual_tokens)
        if reservation._done:
            return
        reservation._done = True
        await self._settle(reservation, nanos, actual_tokens, self.now_us())

    async def renew(self, reservation: Reservation) -> None:
        """Keep what ``reservation`` holds for another lease TTL from now: a request that runs longer than
        the TTL (a long stream) keeps its parallel slot and budget reservation for as long as it runs.
        Nothing happens once it is settled. A backend without leases to extend does nothing.

            await limiter.renew(reservation)   # every third of the TTL while the request runs
        """
        if reservation._done or not reservation._request.lease_id:
            return
        await self._renew(reservation, self.now_us())

    async def release(self, reservation: Reservation) -> None:
        """Give a reservation back unspent, when the call failed: nothing is charged, no tokens counted.

        await limiter.release(reservation)
        """
        await self.settle(reservation, 0.0, actual_tokens=0)

    async def check_and_consume(self, limits: Sequence[SubjectLimits], tokens_estimate: int = 0) -> Decision:
        """Only the rpm/tpm limits of ``limits``: consume one request and ``tokens_estimate`` tokens if all admit.

        Correct the tokens with :meth:`settle_tokens` once the real usage is known.

            limits = [SubjectLimits("key:9f2c", rpm_limit=1)]
            (await limiter.check_and_consume(limits)).allowed          # True
            (await limiter.check_and_consume(limits)).retry_after_s    # 60.0
        """
        check_tokens(tokens_estimate)
        req = AdmitRequest(limits, tokens=tokens_estimate, cost=0, lease_id="", now_us=self.now_us(), rate_only=True)
        result = await self._admit(req)
        if isinstance(result, Unseeded):  # rate-only admissions touch no budget
            raise LimiterError("a rate-only admission reported unseeded budgets")
        return result.decision

    async def settle_tokens(self, subject: str, estimate: int, actual: int) -> None:
        """Count ``actual`` tokens instead of the ``estimate`` consumed at admission for ``subject``'s tpm.

        await limiter.settle_tokens("key:9f2c", estimate=4000, actual=1250)   # 2750 tokens back
        """
        check_tokens(estimate)
        check_tokens(actual)
        if actual != estimate:
            await self._settle_tokens(subject, actual - estimate, self.now_us())

    async def reserve(
        self, subject: str, estimate: Money, max_budget: float, period: BudgetPeriod | None = None
    ) -> Reservation | Refusal:
        """Reserve ``estimate`` USD of ``subject``'s budget, or a :class:`Refusal` naming it.

        res = await limiter.reserve("team:research", 0.40, max_budget=100.0, period=BudgetPeriod("1mo"))
        res.budgets[0].reserved         # 0.4
        """
        return await self.admit([SubjectLimits(subject, max_budget=max_budget, budget_period=period)], cost=estimate)

    async def acquire_slot(self, subject: str, max_parallel_requests: int) -> Reservation | Refusal:
        """Take one of ``subject``'s parallel-request slots; give it back with :meth:`release` or :meth:`settle`.

        slot = await limiter.acquire_slot("key:9f2c", 4)
        """
        return await self.admit([SubjectLimits(subject, max_parallel_requests=max_parallel_requests)])

    async def seed_spend(
        self, subject: str, spent: Money, reset_at: datetime | None = None, *, duration: str | None = None
    ) -> BudgetState | None:
        """Load the store's spend for ``subject`` (e.g. at start-up): idempotent, and it only ever raises.

        ``reset_at`` and ``duration`` are the key's ``budget_reset_at`` and ``budget_duration``. Within
        the current period the limiter keeps the larger of its spend and ``spent`` (it may hold spend
        the store has not received yet); a ``reset_at`` already past means ``spent`` belongs to an ended
        period and counts for nothing. A budget that only settlements have written since the limiter
        lost it (a restarted Redis) gets ``spent`` added instead: the store may not have those yet.

            await limiter.seed_spend("key:9f2c", rec.spend, rec.budget_reset_at, duration=rec.budget_duration)
        """
        nanos = to_nanos(spent)
        now = self.now_us()
        end, valid = _period_end(reset_at, duration, now)
        return await self._seed(subject, "raise", nanos, valid, end, now)

    async def set_spend(
        self, subject: str, spent: Money = 0.0, reset_at: datetime | None = None, *, duration: str | None = None
    ) -> BudgetState | None:
        """Overwrite ``subject``'s spend and period (an admin reset); reservations in flight are kept."""
        nanos = to_nanos(spent)
        now = self.now_us()
        end, _ = _period_end(reset_at, duration, now)
        return await self._seed(subject, "set", nanos, True, end, now)

    async def budget(self, subject: str) -> BudgetState | None:
        """``subject``'s budget as the limiter holds it now, or ``None`` if it holds none. Changes nothing."""
        now = self.now_us()
        return await self._seed(subject, "read", 0, False, NEVER, now)

    async def _load(self, subjects: Sequence[str], limits: Sequence[SubjectLimits], now: int) -> None:
        loader = self._spend_loader
        assert loader is not None
        for lim in limits:
            if lim.subject not in subjects:
                continue
            loaded = await loader(lim.subject)
            spent, reset_at = loaded if loaded is not None else (0, None)
            end = lim.budget_period.end_us(now) if lim.budget_period is not None else NEVER
            valid = reset_at is None or to_us(reset_at) > now
            await self._seed(lim.subject, "raise", to_nanos(spent), valid, end, now)


def _period_end(reset_at: datetime | None, duration: str | None, now: int) -> tuple[int, bool]:
    if reset_at is None and duration is None:
        return NEVER, True
    end = BudgetPeriod(duration, reset_at).end_us(now)
    return end, reset_at is None or to_us(reset_at) > now


def check_tokens(tokens: int) -> None:
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise ValueError(f"token counts must be non-negative integers, got {tokens!r}")
