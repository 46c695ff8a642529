"""Shared limits that degrade to local ones when the shared backend is unreachable, and come back.

    limiter = FallbackLimiter(RedisLimiter(url), MemoryLimiter())

Every call to Redis is bounded (see :class:`RedisLimiter`); when one fails, a circuit opens: for
``cooldown_s`` the limiter does not try Redis at all and answers from this process's memory, so a
dead Redis costs a request one deadline at most, never a hang. Then one request probes Redis; when it
answers, the circuit closes by itself. The outage is logged once as a warning, the recovery once as
info.

Degraded limits are per process, and no process sees what the others admit meanwhile, so what each
may do on its own is bounded by a :class:`~llmswitch.limits.degraded.DegradedPolicy`: by default a
request that carries a budget is refused (503) until Redis is back, and rate limits and parallel
slots hold at a share of their value per process; with ``share``, each budget starts from the
store's spend (or the last spend Redis reported, if larger) and this process may spend its share of
what is left. Settlements made meanwhile are journaled (and shipped to the store) by the gateway as
always, and replayed to Redis when it is back, stamped with when they happened: a budget Redis kept
through the outage adds them; one Redis lost (a restart without persistence, FLUSHALL) and loaded
again from the store afterwards does not, since the store's spend already holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from llmswitch.limits.admission import AdmitRequest, Unseeded
from llmswitch.limits.allowance import Allowances, Allowed
from llmswitch.limits.base import Limiter, Money, SeedMode, SpendLoader, check_tokens
from llmswitch.limits.degraded import DegradedPolicy
from llmswitch.limits.errors import BudgetsUnavailableError, LimiterUnavailableError
from llmswitch.limits.memory import MemoryLimiter
from llmswitch.limits.money import to_nanos
from llmswitch.limits.periods import NEVER, to_us
from llmswitch.limits.results import BudgetState, Refusal, Reservation
from llmswitch.limits.spec import SubjectLimits

log = logging.getLogger("llmswitch.limits")

Replay = Callable[[], Awaitable[object]]
_CLOSE_FLUSH_S = 2.0


class FallbackLimiter(Limiter):
    """``primary`` (shared) while it answers, ``local`` while it does not.

    ``monotonic`` is the circuit's clock (inject one in tests); ``max_deferred`` bounds the settlements
    kept for replay during an outage (the oldest are dropped past it, with a warning); ``policy`` what
    this process may admit on its own meanwhile (closed budgets by default).
    """

    name = "fallback"

    def __init__(
        self,
        primary: Limiter,
        local: MemoryLimiter,
        *,
        cooldown_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        max_deferred: int = 100_000,
        spend_loader: SpendLoader | None = None,
        policy: DegradedPolicy | None = None,
        allowances: bool = False,
    ) -> None:
        super().__init__(clock=local._clock, lease_ttl_s=local._lease_ttl_us / 1_000_000, spend_loader=spend_loader)
        # admit_nowait answers from allowances taken from the primary, when it can (allowance.py)
        self.allowances = Allowances(self) if allowances else None
        self.policy = policy or DegradedPolicy()
        # budgets given their degraded starting point in this outage (once each: later admissions
        # count on from what this process spent since)
        self._outage_seeded: set[str] = set()
        self._store_warned = False
        self.primary = primary
        self.local = local
        self._cooldown_s = cooldown_s
        self._monotonic = monotonic
        self._retry_at = 0.0
        self._degraded = False
        self._probing = False
        self._deferred: deque[Replay] = deque()
        self._max_deferred = max_deferred
        self._dropped = 0
        self._flush_task: asyncio.Task[None] | None = None

    @property
    def degraded(self) -> bool:
        """True while limits are enforced locally because the shared backend did not answer."""
        return self._degraded

    @property
    def deferred(self) -> int:
        """Settlements waiting to be replayed to the shared backend."""
        return len(self._deferred)

    async def aclose(self) -> None:
        if self.allowances is not None:
            await self.allowances.aclose()
        if self._deferred and not self._degraded:
            # give Redis what is still owed if it answers: shutting down must not drop spend
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_FLUSH_S):
                    await self.flush()
        if self._flush_task is not None:
            self._flush_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush_task
        if self._deferred:
            log.warning("closing with %d settlements not replayed to the limits backend", len(self._deferred))
        await self.primary.aclose()
        await self.local.aclose()

    # -- allowances (see allowance.py): answered in memory, or ``None`` / ``False`` as without them

    def admit_nowait(
        self, limits: Sequence[SubjectLimits], *, tokens: int = 0, cost: Money = 0.0
    ) -> Reservation | Refusal | None:
        allowances = self.allowances
        if allowances is None:
            return None
        if type(tokens) is not int or tokens < 0:
            check_tokens(tokens)
        return allowances.admit_nowait(limits, tokens, cost)

    def settle_nowait(self, reservation: Reservation, actual_cost: Money, *, actual_tokens: int | None = None) -> bool:
        if type(reservation) is not Allowed or self.allowances is None:
            return False
        nanos = 0 if actual_cost == 0.0 and type(actual_cost) is float else to_nanos(actual_cost)
        if actual_tokens is not None and (type(actual_tokens) is not int or actual_tokens < 0):
            check_tokens(actual_tokens)
        self.allowances.settle(reservation, nanos, actual_tokens)
        return True

    async def settle(self, reservation: Reservation, actual_cost: Money, *, actual_tokens: int | None = None) -> None:
        if not self.settle_nowait(reservation, actual_cost, actual_tokens=actual_tokens):
            await super().settle(reservation, actual_cost, actual_tokens=actual_tokens)

    async def renew(self, reservation: Reservation) -> None:
        if type(reservation) is Allowed and self.allowances is not None:
            await self.allowances.renew(reservation)
        else:
            await super().renew(reservation)

    async def admit_block(self, req: AdmitRequest) -> Reservation | Refusal | None:
        """An allowance (``req.count`` requests at once), loading unseeded budgets first; ``None`` while
        degraded (this process's own limits grant no allowances) or when a budget stays unseeded."""
        if self._degraded:
            return None
        req.strict = self._spend_loader is not None
        result = await self._admit(req)
        if isinstance(result, Unseeded):
            await self._load(result.subjects, req.limits, req.now_us)
            req.strict = False
            result = await self._admit(req)
        return None if isinstance(result, Unseeded) else result

    async def _admit(self, req: AdmitRequest) -> Reservation | Refusal | Unseeded:
        if self._primary_due():
            try:
                result = await self.primary._admit(req)
            except LimiterUnavailableError as exc:
                self._failed(exc)
            else:
                self._answered()
                if not isinstance(result, Unseeded) and result.budgets:
                    # so that falling back starts from the spend every process has charged
                    self.local.mirror_budgets(result.budgets)
                return result
            finally:
                self._probing = False
        return await self._admit_degraded(req)

    async def _admit_degraded(self, req: AdmitRequest) -> Reservation | Refusal | Unseeded:
        policy = self.policy
        if policy.budgets != "local" and not req.rate_only:
            for i, lim in enumerate(req.limits):
                if lim.max_budget is None:
                    continue
                if policy.budgets == "closed":
                    raise self._unavailable(f"budget of {lim.subject} cannot be checked")
                if lim.subject not in self._outage_seeded:
                    await self._seed_share(lim.subject, lim.max_budget_nanos or 0, req.ends[i], req.now_us)
        scaled = policy.scaled(req.limits)
        if scaled is not req.limits:
            req = AdmitRequest(
                scaled, req.tokens, req.cost, req.lease_id, req.now_us, req.rate_only, req.strict, req.count
            )
        return await self.local._admit(req)

    async def _seed_share(self, subject: str, max_nanos: int, end_us: int, now_us: int) -> None:
        """Start ``subject``'s budget for this outage from what is known to be spent, less all but this
        process's share of what is left."""
        held = await self.local._seed(subject, "read", 0, False, NEVER, now_us)
        spent = to_nanos(held.spent) if held is not None else 0  # the last spend Redis reported here
        loader = self._spend_loader
        if loader is not None:
            try:
                loaded = await loader(subject)
            except Exception as exc:  # the store is away too: nothing says what is left
                if not self._store_warned:  # once an outage: every budgeted request would say it again
                    self._store_warned = True
                    log.warning("loading spend from the store for degraded limits failed: %s", exc)
                raise self._unavailable(f"spend of {subject} cannot be loaded") from exc
            if subject in self._outage_seeded:
                return  # another request started it while this one waited: it may have spent since
            if loaded is not None and (loaded[1] is None or to_us(loaded[1]) > now_us):
                spent = max(spent, to_nanos(loaded[0]))
        await self.local._seed(subject, "set", self.policy.budget_spent(max_nanos, spent), True, end_us, now_us)
        self._outage_seeded.add(subject)

    def _unavailable(self, what: str) -> BudgetsUnavailableError:
        url = getattr(self.primary, "url", self.primary.name)
        retry = max(0.0, self._retry_at - self._monotonic())
        return BudgetsUnavailableError(f"{what}: limits backend {url} is unreachable", url=url, retry_after_s=retry)

    async def _settle(self, res: Reservation, cost: int, tokens: int | None, now_us: int) -> None:
        if res._origin is self.local:
            await self.local._settle(res, cost, tokens, now_us)
            # admitted while Redis was away: this adds the spend there, and frees the reservation too
            # if the admission that timed out did reach Redis after all
            await self._to_primary(
                lambda: self.primary._settle(res, cost, None, self.now_us()),
                lambda: self.primary._replay_settle(res, cost, None, now_us, self.now_us()),
            )
            return
        if self._primary_due():
            try:
                await self.primary._settle(res, cost, tokens, now_us)
            except LimiterUnavailableError as exc:
                self._failed(exc)
            else:
                self._answered()
                return
            finally:
                self._probing = False
        # count it here for as long as we are on our own, and give it to Redis when it is back
        await self.local._settle(res, cost, None, now_us)
        self._defer(lambda: self.primary._replay_settle(res, cost, tokens, now_us, self.now_us()))

    def settle_soon(
        self, reservation: Reservation, actual_cost: Money, *, actual_tokens: int | None = None
    ) -> Awaitable[None]:
        if reservation._done or reservation._origin is not self.primary or self._degraded:
            return self.settle(reservation, actual_cost, actual_tokens=actual_tokens)
        nanos = to_nanos(actual_cost)
        if actual_tokens is not None:
            check_tokens(actual_tokens)
        if self.allowances is not None:
            self.allowances.learn(reservation._request.limits, nanos, actual_tokens)
        return self.send_settlement(reservation, nanos, actual_tokens)

    def send_settlement(self, reservation: Reservation, cost: int, tokens: int | None) -> Awaitable[None]:
        """Settle ``reservation`` (an admission of the primary's) at ``cost`` nano-dollars, its command
        written to the primary before this returns when it can be; await the result for the rest."""
        reservation._done = True
        now_us = self.now_us()
        send = getattr(self.primary, "send_settle", None)
        if self._degraded or send is None:
            return self._settle(reservation, cost, tokens, now_us)
        try:
            sent = send(reservation, cost, tokens, now_us)
        except Exception:
            reservation._done = False
            raise
        return self._settled(reservation, cost, tokens, now_us, sent)

    async def _settled(
        self, res: Reservation, cost: int, tokens: int | None, now_us: int, sent: Awaitable[Any] | None
    ) -> None:
        """The rest of :meth:`settle_soon`: as :meth:`_settle` when the primary answers, or does not."""
        if sent is None:
            return
        try:
            await sent
        except LimiterUnavailableError as exc:
            self._failed(exc)
            # count it here for as long as we are on our own, and give it to Redis when it is back
            await self.local._settle(res, cost, None, now_us)
            self._defer(lambda: self.primary._replay_settle(res, cost, tokens, now_us, self.now_us()))
        else:
            self._answered()

    async def _renew(self, res: Reservation, now_us: int) -> None:
        if res._origin is self.local:
            await self.local._renew(res, now_us)
            return
        if self._primary_due():
            try:
                await self.primary._renew(res, now_us)
            except LimiterUnavailableError as exc:
                self._failed(exc)  # its leases run out in Redis; the settlement is replayed all the same
            else:
                self._answered()
            finally:
                self._probing = False

    async def _settle_tokens(self, subject: str, delta: int, now_us: int) -> None:
        if self._primary_due():
            try:
                await self.primary._settle_tokens(subject, delta, now_us)
            except LimiterUnavailableError as exc:
                self._failed(exc)
            else:
                self._answered()
                return
            finally:
                self._probing = False
        await self.local._settle_tokens(subject, delta, now_us)

    async def _seed(
        self, subject: str, mode: SeedMode, spent: int, valid: bool, end_us: int, now_us: int
    ) -> BudgetState | None:
        if mode == "read":
            if self._primary_due():
                try:
                    state = await self.primary._seed(subject, mode, spent, valid, end_us, now_us)
                except LimiterUnavailableError as exc:
                    self._failed(exc)
                else:
                    self._answered()
                    return state
                finally:
                    self._probing = False
            return await self.local._seed(subject, mode, spent, valid, end_us, now_us)
        local = await self.local._seed(subject, mode, spent, valid, end_us, now_us)
        seed = lambda: self.primary._seed(subject, mode, spent, valid, end_us, now_us)  # noqa: E731
        # a store load ("raise") is not kept for later: by then the store has moved on, and a Redis
        # that lost the budget loads it afresh; an admin's "set" is kept, dated when it was made, so
        # that settlements made after it and replayed with it still count
        shared = await self._to_primary(seed, seed if mode == "set" else None)
        return shared if isinstance(shared, BudgetState) else local

    # -- the circuit ------------------------------------------------------------------------------

    def _primary_due(self) -> bool:
        """Whether to try the primary now: always while it answers; one probe per cooldown when not."""
        if not self._degraded:
            return True
        if self._probing or self._monotonic() < self._retry_at:
            return False
        self._probing = True
        return True

    def _failed(self, exc: LimiterUnavailableError) -> None:
        self._retry_at = self._monotonic() + self._cooldown_s
        if not self._degraded:
            self._degraded = True
            self._outage_seeded.clear()
            self._store_warned = False
            policy = self.policy
            log.warning(
                "%s; enforcing rate limits and budgets in this process only (degraded budgets: %s, share %g), "
                "retrying every %g s",
                exc,
                policy.budgets,
                policy.share,
                self._cooldown_s,
            )

    def _answered(self) -> None:
        if not self._degraded:
            return
        self._degraded = False
        # what this process held on its own (a share's starting point above all) is not the shared
        # truth: the next outage starts again from what Redis and the store say then
        self.local.forget_budgets()
        log.info(
            "limits backend %s answers again; shared limits restored, replaying %d settlements",
            getattr(self.primary, "url", self.primary.name),
            len(self._deferred),
        )
        if self._deferred and (self._flush_task is None or self._flush_task.done()):
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def _to_primary(self, call: Replay, replay: Replay | None) -> object:
        """``call`` now if the primary is due, else (or if it fails) keep ``replay`` for its return."""
        if self._primary_due():
            try:
                result = await call()
            except LimiterUnavailableError as exc:
                self._failed(exc)
            else:
                self._answered()
                return result
            finally:
                self._probing = False
        if replay is not None:
            self._defer(replay)
        return None

    def _defer(self, replay: Replay) -> None:
        if len(self._deferred) >= self._max_deferred:
            self._deferred.popleft()
            self._dropped += 1
            if self._dropped == 1:
                log.warning(
                    "more than %d settlements waiting for the limits backend; dropping the oldest "
                    "(their spend stays in the store, and reaches the limiter when it is next seeded)",
                    self._max_deferred,
                )
        self._deferred.append(replay)

    async def flush(self) -> int:
        """Replay deferred settlements now (normally done in the background on recovery); how many are left."""
        task = self._flush_task
        if task is not None and not task.done():
            await task  # one replay at a time: it owns the items it has taken off the queue
        await self._flush()
        return len(self._deferred)

    async def _flush(self) -> None:
        while self._deferred and not self._degraded:
            replay = self._deferred.popleft()
            try:
                await replay()
            except LimiterUnavailableError as exc:
                self._deferred.appendleft(replay)
                self._failed(exc)
                return
        self._dropped = 0
