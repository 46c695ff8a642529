"""Limits held in this process: the embedded default, and the fallback when Redis is unreachable.

    limiter = MemoryLimiter()
    decision = await limiter.check_and_consume([SubjectLimits("key:9f2c", rpm_limit=1)])
    decision.allowed                # True

Every operation runs under one lock with no ``await`` inside, so it is atomic for asyncio tasks and
threads alike (the synchronous SDK runs its loop in a thread of its own). Each is O(1) in the number
of subjects it names, apart from dropping expired leases, which each lease pays for once. Nothing
does I/O: a few microseconds per request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from llmswitch.limits import gcra
from llmswitch.limits.admission import (
    BUD_OK,
    FRESH,
    OK,
    PAR_OK,
    PAR_USED,
    REFUSED,
    REQ_OK,
    REQ_REMAINING,
    REQ_RESET,
    REQ_RETRY,
    RESERVED,
    RESET_AT,
    SPENT,
    TOK_OK,
    TOK_REMAINING,
    TOK_RESET,
    TOK_RETRY,
    UNSEEDED,
    WIDTH,
    AdmitRequest,
    Unseeded,
    decide,
)  # fmt: skip
from llmswitch.limits.base import DEFAULT_LEASE_TTL_S, Limiter, Money, SeedMode, SpendLoader, check_tokens
from llmswitch.limits.gcra import decay, take
from llmswitch.limits.money import to_nanos, usd
from llmswitch.limits.periods import NEVER
from llmswitch.limits.results import BudgetState, Refusal, Reservation
from llmswitch.limits.spec import SubjectLimits

_DEFAULTS = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0]  # one subject with nothing to report
_MIN_SWEEP = 4096


class _Rate:
    """A subject's rpm and tpm debts (see :mod:`gcra`); the tpm limit is kept for ``settle_tokens``."""

    __slots__ = ("req_at", "req_debt", "req_limit", "tok_at", "tok_debt", "tok_limit", "touched")

    def __init__(self) -> None:
        self.req_debt = self.req_at = self.req_limit = 0
        self.tok_debt = self.tok_at = self.tok_limit = 0
        self.touched = 0


class _Budget:
    """Spend this period, the sum of live reservations, and the reservations oldest first; money in
    whole nano-dollars (Python integers: exact at any size)."""

    __slots__ = ("leases", "reserved", "reset_at", "seeded", "spent")

    def __init__(self, reset_at: int, *, seeded: bool) -> None:
        self.spent = 0
        self.reserved = 0
        self.reset_at = reset_at
        # False while only settlements wrote it: the spend the store knows has still to be added
        self.seeded = seeded
        # every lease lives the same TTL, so insertion order is expiry order: expired ones are at the front
        self.leases: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def roll(self, now: int, end: int) -> None:
        """Start a new period if this one has ended; drop reservations whose holders never came back."""
        if 0 < self.reset_at <= now:
            self.spent = 0
            self.reset_at = end
        leases = self.leases
        if leases:
            while leases:
                lease_id = next(iter(leases))
                amount, expires = leases[lease_id]
                if expires > now:
                    break
                del leases[lease_id]
                self.reserved -= amount

    def state(self, subject: str, max_budget: float | None) -> BudgetState:
        return BudgetState(subject, max_budget, usd(self.spent), usd(self.reserved), self.reset_at)


class MemoryLimiter(Limiter):
    """Limits for one process. ``clock``, ``lease_ttl_s`` and ``spend_loader`` as for every :class:`Limiter`."""

    name = "memory"

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        spend_loader: SpendLoader | None = None,
    ) -> None:
        super().__init__(clock=clock, lease_ttl_s=lease_ttl_s, spend_loader=spend_loader)
        self._rates: dict[str, _Rate] = {}
        self._slots: dict[str, OrderedDict[str, int]] = {}
        self._budgets: dict[str, _Budget] = {}
        self._lock = threading.Lock()
        self._sweep_at = _MIN_SWEEP

    async def _admit(self, req: AdmitRequest) -> Reservation | Refusal | Unseeded:
        with self._lock:
            return self._admit_now(req)

    def admit_nowait(
        self, limits: Sequence[SubjectLimits], *, tokens: int = 0, cost: Money = 0.0
    ) -> Reservation | Refusal | None:
        req = self._admit_request(limits, tokens, cost)
        with self._lock:
            result = self._admit_now(req)
        # a budget never seen needs its spend from the store first, which admit() awaits
        return None if isinstance(result, Unseeded) else result

    def settle_nowait(self, reservation: Reservation, actual_cost: Money, *, actual_tokens: int | None = None) -> bool:
        if reservation._origin is not self:
            return False
        nanos = 0 if actual_cost == 0.0 and type(actual_cost) is float else to_nanos(actual_cost)
        if actual_tokens is not None and (type(actual_tokens) is not int or actual_tokens < 0):
            check_tokens(actual_tokens)
        if not reservation._done:
            reservation._done = True
            now = int(self._clock() * 1_000_000)
            with self._lock:
                self._settle_now(reservation, nanos, actual_tokens, now)
        return True

    def _admit_now(self, req: AdmitRequest) -> Reservation | Refusal | Unseeded:
        now, limits, rate_only, tokens = req.now_us, req.limits, req.rate_only, req.tokens
        raw: list[int] = _DEFAULTS * len(limits)
        plans: list[tuple[_Rate | None, int, int, _Budget | None]] = []
        refused = unseeded = False
        rates, budgets = self._rates, self._budgets
        # first check everything, changing nothing the answer depends on ...
        for i, lim in enumerate(limits):
            at = i * WIDTH
            rpm, tpm = lim.rpm_limit, lim.tpm_limit
            bucket = None
            new_req = new_tok = -1
            if rpm is not None or tpm is not None:
                bucket = rates.get(lim.subject)
                if rpm is not None:
                    debt = decay(bucket.req_debt, bucket.req_at, now, rpm) if bucket is not None else 0
                    ok, raw[at + REQ_REMAINING], raw[at + REQ_RESET], raw[at + REQ_RETRY], new_req = take(debt, rpm, 1)
                    if not ok:
                        raw[at + REQ_OK] = 0
                        refused = True
                if tpm is not None:
                    debt = decay(bucket.tok_debt, bucket.tok_at, now, tpm) if bucket is not None else 0
                    ok, raw[at + TOK_REMAINING], raw[at + TOK_RESET], raw[at + TOK_RETRY], new_tok = take(
                        debt, tpm, tokens
                    )
                    if not ok:
                        raw[at + TOK_OK] = 0
                        refused = True
            budget = None
            if not rate_only:
                if lim.max_parallel_requests is not None:
                    used = self._live_slots(lim.subject, now)
                    raw[at + PAR_USED] = used
                    if used >= lim.max_parallel_requests:
                        raw[at + PAR_OK] = 0
                        refused = True
                if lim.max_budget is not None:
                    budget = budgets.get(lim.subject)
                    if budget is None or not budget.seeded:
                        raw[at + FRESH] = 1
                        if req.strict:
                            unseeded = True
                            raw[at + RESET_AT] = req.ends[i]
                        elif budget is None:
                            budget = budgets[lim.subject] = _Budget(req.ends[i], seeded=True)
                        else:
                            budget.seeded = True  # no store to ask: what is held is the whole truth
                    if budget is not None:
                        if budget.leases or 0 < budget.reset_at <= now:
                            budget.roll(now, req.ends[i])
                        spent, reserved = budget.spent, budget.reserved
                        raw[at + SPENT], raw[at + RESERVED], raw[at + RESET_AT] = spent, reserved, budget.reset_at
                        if spent + reserved >= (lim.max_budget_nanos or 0):
                            raw[at + BUD_OK] = 0
                            refused = True
            plans.append((bucket, new_req, new_tok, budget))
        if unseeded:
            return decide(req, UNSEEDED, raw, self)
        if refused:
            return decide(req, REFUSED, raw, self)
        # ... then consume everything
        expires = now + self._lease_ttl_us
        for i, lim in enumerate(limits):
            bucket, new_req, new_tok, budget = plans[i]
            if new_req >= 0 or new_tok >= 0:
                if bucket is None:
                    bucket = self._new_rate(lim.subject, now)
                # a bucket's time never moves back (a clock stepped back must not refill it twice)
                if new_req >= 0:
                    bucket.req_debt = new_req
                    if now > bucket.req_at:
                        bucket.req_at = now
                    bucket.req_limit = lim.rpm_limit or 0
                if new_tok >= 0:
                    bucket.tok_debt = new_tok
                    if now > bucket.tok_at:
                        bucket.tok_at = now
                    bucket.tok_limit = lim.tpm_limit or 0
                bucket.touched = now
            if rate_only:
                continue
            if lim.max_parallel_requests is not None:
                slots = self._slots.get(lim.subject)
                if slots is None:
                    slots = self._slots[lim.subject] = OrderedDict()
                slots[req.lease_id] = expires
                raw[i * WIDTH + PAR_USED] = len(slots)
            if budget is not None:
                budget.leases[req.lease_id] = (req.cost, expires)
                budget.reserved += req.cost
                raw[i * WIDTH + RESERVED] = budget.reserved
        return decide(req, OK, raw, self)

    async def _settle(self, res: Reservation, cost: int, tokens: int | None, now_us: int) -> None:
        with self._lock:
            self._settle_now(res, cost, tokens, now_us)

    def _settle_now(self, res: Reservation, cost: int, tokens: int | None, now_us: int) -> None:
        req = res._request
        for lim in req.limits:
            if tokens is not None and lim.tpm_limit is not None and tokens != req.tokens:
                self._move_tokens(lim.subject, tokens - req.tokens, now_us, lim.tpm_limit)
            if lim.max_parallel_requests is not None:
                slots = self._slots.get(lim.subject)
                if slots is not None:
                    slots.pop(req.lease_id, None)
                    if not slots:
                        del self._slots[lim.subject]
            if lim.max_budget is not None:
                budget = self._budgets.get(lim.subject)
                if budget is None or 0 < budget.reset_at <= now_us:
                    budget = self._budget(lim, now_us)
                elif budget.leases:
                    budget.roll(now_us, budget.reset_at)  # the period goes on: only drops expired leases
                lease = budget.leases.pop(req.lease_id, None)
                if lease is not None:
                    budget.reserved -= lease[0]
                budget.spent += cost

    async def _renew(self, res: Reservation, now_us: int) -> None:
        req = res._request
        expires = now_us + self._lease_ttl_us
        with self._lock:
            for lim in req.limits:
                if lim.max_parallel_requests is not None:
                    slots = self._slots.get(lim.subject)
                    if slots is not None and req.lease_id in slots:
                        slots[req.lease_id] = expires
                        slots.move_to_end(req.lease_id)  # the latest expiry: insertion order stays expiry order
                if lim.max_budget is not None:
                    budget = self._budgets.get(lim.subject)
                    lease = budget.leases.get(req.lease_id) if budget is not None else None
                    if budget is not None and lease is not None:
                        budget.leases[req.lease_id] = (lease[0], expires)
                        budget.leases.move_to_end(req.lease_id)

    async def _settle_tokens(self, subject: str, delta: int, now_us: int) -> None:
        with self._lock:
            self._move_tokens(subject, delta, now_us, None)

    async def _seed(
        self, subject: str, mode: SeedMode, spent: int, valid: bool, end_us: int, now_us: int
    ) -> BudgetState | None:
        with self._lock:
            budget = self._budgets.get(subject)
            if mode == "read":
                if budget is None:
                    return None
                # a view, not a roll: reading must not end a period with an unknown successor
                live = sum(amount for amount, expires in budget.leases.values() if expires > now_us)
                current = 0 if 0 < budget.reset_at <= now_us else budget.spent
                return BudgetState(subject, None, usd(current), usd(live), budget.reset_at)
            if budget is None:
                budget = self._budgets[subject] = _Budget(end_us, seeded=False)
            else:
                budget.roll(now_us, end_us)
            if mode == "set":
                budget.spent, budget.reset_at = spent, end_us
            elif valid and not budget.seeded:
                # settled here since the state was lost: the store may not have it yet, so add
                # (erring towards refusing rather than overspending)
                budget.spent += spent
            elif valid and spent > budget.spent:
                budget.spent = spent
            budget.seeded = True
            return budget.state(subject, None)

    def mirror_budgets(self, states: Iterable[BudgetState]) -> None:
        """Take the shared backend's word for these budgets' spend, so falling back starts from it."""
        with self._lock:
            for state in states:
                budget = self._budgets.get(state.subject)
                if budget is None:
                    budget = self._budgets[state.subject] = _Budget(state.reset_at_us, seeded=True)
                budget.spent, budget.reset_at, budget.seeded = to_nanos(state.spent), state.reset_at_us, True

    def forget_budgets(self) -> None:
        """Drop every budget held; each is loaded again (or mirrored) when next needed."""
        with self._lock:
            self._budgets.clear()

    def _budget(self, lim: SubjectLimits, now: int) -> _Budget:
        end = lim.budget_period.end_us(now) if lim.budget_period is not None else NEVER
        budget = self._budgets.get(lim.subject)
        if budget is None:
            budget = self._budgets[lim.subject] = _Budget(end, seeded=False)
        else:
            budget.roll(now, end)
        return budget

    def _live_slots(self, subject: str, now: int) -> int:
        slots = self._slots.get(subject)
        if not slots:
            return 0
        while slots:
            lease_id = next(iter(slots))
            if slots[lease_id] > now:
                break
            del slots[lease_id]  # a holder that never released: its lease ran out
        return len(slots)

    def _move_tokens(self, subject: str, delta: int, now: int, limit: int | None) -> None:
        bucket = self._rates.get(subject)
        if bucket is None:
            if limit is None or delta <= 0:
                return  # nothing counted, nothing to give back
            bucket = self._new_rate(subject, now)
        limit = limit or bucket.tok_limit
        if not limit:
            return
        debt = gcra.decay(bucket.tok_debt, bucket.tok_at, now, limit) + delta * gcra.PERIOD_US
        bucket.tok_debt, bucket.tok_at, bucket.tok_limit, bucket.touched = (
            max(debt, 0),
            max(now, bucket.tok_at),
            limit,
            now,
        )

    def _new_rate(self, subject: str, now: int) -> _Rate:
        if len(self._rates) >= self._sweep_at:
            self._sweep(now)
        bucket = self._rates[subject] = _Rate()
        return bucket

    def _sweep(self, now: int) -> None:
        # forget subjects idle for a lease TTL (no settle can still come) whose buckets are full
        # again: such a state means the same as none. The threshold doubles with the live count, so
        # sweeping costs O(1) per new subject.
        idle_before = now - self._lease_ttl_us
        for subject, bucket in list(self._rates.items()):
            if (
                bucket.touched < idle_before
                and gcra.decay(bucket.req_debt, bucket.req_at, now, bucket.req_limit) == 0
                and gcra.decay(bucket.tok_debt, bucket.tok_at, now, bucket.tok_limit) == 0
            ):
                del self._rates[subject]
        self._sweep_at = max(_MIN_SWEEP, 2 * len(self._rates))
