"""Admissions from an allowance: a block of a request's limits taken from Redis at once, spent in memory.

Admitting every request in Redis costs a script call per request, on the gateway and on Redis. Most
requests are far from every limit they carry; for those, a process takes an *allowance* in one atomic
call: ``n`` requests' worth of every subject's rpm, ``n`` times the request's token estimate of their
tpm and ``n`` times its cost estimate of their budgets, held in Redis as one reservation. It then
admits the next requests with the same limits from it, in memory and without I/O, and settles them in
memory too. An allowance is *retired* when it cannot cover the next request, or ``hold_s`` after it was
granted; once every request it admitted has settled, one settlement gives Redis back what was not used
(requests, tokens, money) and charges what was spent. The next allowance is asked for in the
background when half of the current one is used, so requests never wait for one.

What stays exact:

- Nothing is admitted that Redis did not grant. An allowance admits a request only while the money it
  holds, less what its requests spent and still reserve, covers the request's estimate: a budget is
  not even overshot by the one request a budget may otherwise overshoot by.
- Redis grants an allowance only where ``ROOM`` (16) times it fits every limit (``admit.lua``): near a
  limit every request is admitted there one by one, exactly as without allowances. What other
  processes may be refused while one holds an allowance it has not used up is at most a sixteenth of
  what was left when it was granted, for at most ``hold_s``.
- A process that dies holding an allowance never gives it back: its requests stay counted, and its
  money counts as spent in full when its lease expires (``common.lua``): a budget is over-counted by
  what the allowance did not spend, never resurrected. A settlement that arrives after that charges
  nothing more (``settle.lua``).
- Requests with a parallel-requests limit, and budgeted requests with no cost estimate, are never
  admitted from an allowance. While Redis is unreachable none is granted (the limiter's fallback
  decides, as before); a report Redis does not answer is replayed when it is back, once.

Allowances are taken and reported on one event loop (the gateway's: where the first one was taken);
none is asked for from elsewhere (a synchronous caller outside a loop gets ``None``: admit in Redis).

    allowances = Allowances(limiter)                 # the FallbackLimiter that grants and settles them
    result = allowances.admit_nowait(limits, tokens=900, cost=0.02)   # a Reservation, or None
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

from llmswitch import procid
from llmswitch.limits.admission import AdmitRequest
from llmswitch.limits.money import to_nanos
from llmswitch.limits.results import Decision, Reservation
from llmswitch.limits.spec import SubjectLimits

if TYPE_CHECKING:
    from llmswitch.limits.base import Money
    from llmswitch.limits.fallback import FallbackLimiter

log = logging.getLogger("llmswitch.limits")

HOLD_S = 0.25  # how long an allowance admits requests before what is left of it goes back
FIRST_SIZE, MAX_SIZE = 4, 1024  # requests in a subject set's first allowance, and at most
_ADMITTED = Decision(True)
_seq = itertools.count(1)


def _key(limits: Sequence[SubjectLimits]) -> object:
    """A set of limits by its objects' ids (the hot path's lookup; :meth:`Allowances._book` keeps them alive)."""
    return id(limits[0]) if len(limits) == 1 else tuple(map(id, limits))


class Allowed(Reservation):
    """A request admitted from an allowance (settled in memory, into it)."""

    __slots__ = ("allowance",)

    allowance: _Allowance


class _Allowance:
    """One block granted by Redis (``res``) and what of it is left to admit, and was spent."""

    __slots__ = ("book", "in_flight", "money", "requests", "res", "retired", "spent", "tokens", "used_tokens")

    def __init__(self, book: _Book, res: Reservation, requests: int) -> None:
        self.book = book
        self.res = res
        req = res._request
        self.requests = requests  # left to admit
        self.tokens = req.tokens  # tokens left: estimates of requests in flight, actual use of settled ones
        self.money = req.cost  # nano-dollars left, likewise
        self.spent = 0  # nano-dollars the settled requests cost
        self.used_tokens = 0  # tokens the settled requests used
        self.in_flight = 0
        self.retired = False


class _Book:
    """The allowances of one set of limits (the same SubjectLimits objects, in order)."""

    __slots__ = ("cost", "current", "granting", "limits", "next", "parallel", "size", "tight_until", "tokens", "tpm")

    def __init__(self, limits: tuple[SubjectLimits, ...]) -> None:
        self.limits = limits
        self.current: _Allowance | None = None
        self.next: _Allowance | None = None
        self.granting = False
        self.size = FIRST_SIZE
        self.tight_until = 0.0
        self.tokens = 0  # the largest per-request estimates seen: what an allowance is sized by
        self.cost = 0
        self.parallel = any(lim.max_parallel_requests is not None for lim in limits)
        self.tpm = any(lim.tpm_limit is not None for lim in limits)  # else tokens are not counted here


class Allowances:
    """The allowances of one limiter (a :class:`~llmswitch.limits.fallback.FallbackLimiter` over Redis)."""

    def __init__(self, owner: FallbackLimiter, *, hold_s: float = HOLD_S, max_size: int = MAX_SIZE) -> None:
        self._owner = owner
        self._hold_s = hold_s
        self._max_size = max_size
        self._books: dict[object, tuple[tuple[SubjectLimits, ...], _Book]] = {}  # by the limits' ids
        self._by_value: dict[tuple[object, ...], _Book] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.admitted = 0  # requests admitted from allowances (for the metrics)
        self.granted = 0  # allowances Redis granted
        self._closed = False

    # -- admitting and settling, in memory -----------------------------------------------------

    def admit_nowait(self, limits: Sequence[SubjectLimits], tokens: int, cost: Money) -> Allowed | None:
        """The request admitted from an allowance for ``limits``, or ``None``: then admit it in Redis. Asks
        for the next allowance in the background when one is due."""
        if not limits or self._closed:
            return None
        key = _key(limits)
        entry = self._books.get(key)
        book = entry[1] if entry is not None else self._book(key, limits)
        if book.parallel:
            return None
        nanos = 0 if cost == 0.0 and type(cost) is float else to_nanos(cost)
        if nanos > book.cost:
            book.cost = nanos
        if not book.tpm:
            tokens = 0
        elif tokens > book.tokens:
            book.tokens = tokens
        # held against the allowance: the estimate, or more if requests were seen to cost more
        need = book.cost
        a = book.current
        while a is not None:
            if a.requests > 0 and a.tokens >= tokens and a.money >= need:
                a.requests -= 1
                a.tokens -= tokens
                a.money -= need
                a.in_flight += 1
                self.admitted += 1
                if not book.granting and book.next is None and a.requests * 2 < a.res._request.count:
                    self._grant(book)  # half used: the next one, before this one runs out
                now = int(self._owner._clock() * 1_000_000)
                res = Allowed(_ADMITTED, (), AdmitRequest(book.limits, tokens, need, "", now), self._owner)
                res.allowance = a
                return res
            # used up for this request: retire it, carry on with the next one if it is there
            if a.requests <= 0 and book.size < self._max_size:
                book.size *= 2  # used up before its time: the next ones are larger
            self._retire(a)
            a = book.current = book.next
            book.next = None
        if not book.granting:
            self._grant(book)
        return None

    def settle(self, res: Allowed, cost: int, tokens: int | None) -> None:
        """Settle a request admitted from an allowance: into the allowance (Redis hears of it when the
        allowance is reported)."""
        if res._done:
            return
        res._done = True
        a = res.allowance
        req = res._request
        used = req.tokens if tokens is None else tokens
        a.spent += cost
        a.used_tokens += used
        a.money += req.cost - cost  # what it held back, its cost out: an allowance covers real costs
        a.in_flight -= 1
        book = a.book
        if book.tpm:
            a.tokens += req.tokens - used
        if cost > book.cost:
            book.cost = cost
        if used > book.tokens and book.tpm:
            book.tokens = used
        if not a.retired and a.money < 0:
            # it cost more than the allowance holds: Redis hears of it now, before the answer goes out
            # (tokens past an allowance's are counted when it is reported, as a rate limit's estimates are)
            self._unlink(a)
            self._retire(a)
        elif a.retired and a.in_flight == 0:
            self._report(a)

    def learn(self, limits: Sequence[SubjectLimits], cost: int, tokens: int | None) -> None:
        """What a request admitted in Redis used: allowances for its limits hold at least that per request."""
        entry = self._books.get(_key(limits))
        if entry is not None:
            book = entry[1]
            if cost > book.cost:
                book.cost = cost
            if tokens is not None and tokens > book.tokens and book.tpm:
                book.tokens = tokens

    async def renew(self, res: Allowed) -> None:
        """Keep the allowance a long request was admitted from held in Redis while it runs."""
        if not res._done:
            await self._owner.renew(res.allowance.res)

    # -- granting and giving back, in the background --------------------------------------------

    def _book(self, key: object, limits: Sequence[SubjectLimits]) -> _Book:
        """The book of ``limits``, by value: a key's record is loaded again whenever it changes (its spend,
        say), with new SubjectLimits objects for the same limits, which keep its allowances."""
        if len(self._books) >= 10_000:
            # keys come and go; an allowance in use holds its own book, and is retired by its timer
            self._books.clear()
            self._by_value.clear()
        value = tuple(
            (
                lim.subject, lim.rpm_limit, lim.tpm_limit, lim.max_parallel_requests, lim.max_budget_nanos,
                None if lim.budget_period is None else (lim.budget_period.duration, lim.budget_period.reset_at),
            )
            for lim in limits
        )  # fmt: skip
        book = self._by_value.get(value)
        if book is None:
            book = self._by_value[value] = _Book(tuple(limits))
        # the entry holds the objects its key is made of: their ids cannot be reused while it is here
        self._books[key] = (tuple(limits), book)
        return book

    def _grant(self, book: _Book) -> None:
        if self._closed or self._owner.degraded or book.parallel:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside an event loop (a synchronous caller): nothing to ask with
            return
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            return  # allowances belong to the loop that took the first one (the gateway's)
        if loop.time() < book.tight_until:
            return
        if book.cost == 0 and any(lim.max_budget is not None for lim in book.limits):
            return  # a budget with no cost estimate to hold money for: admitted one by one
        book.granting = True
        task = loop.create_task(self._take(book, book.size, book.tokens, book.cost))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take(self, book: _Book, size: int, tokens: int, cost: int) -> None:
        owner = self._owner
        try:
            lease = f"+{procid.PREFIX}{next(_seq):x}" if any(lim.max_budget is not None for lim in book.limits) else ""
            req = AdmitRequest(book.limits, tokens * size, cost * size, lease, owner.now_us(), count=size)
            result = await owner.admit_block(req)
        except Exception as exc:  # an outage the fallback has logged, a store that cannot load a budget
            log.debug("no allowance for %s: %s", ", ".join(lim.subject for lim in book.limits), exc)
            book.tight_until = asyncio.get_running_loop().time() + self._hold_s
            return
        finally:
            book.granting = False
        if not isinstance(result, Reservation):
            # near a limit (or over it): requests go to Redis one by one for a while; smaller next time
            book.tight_until = asyncio.get_running_loop().time() + self._hold_s
            book.size = max(FIRST_SIZE, book.size // 2)
            return
        if result._origin is not owner.primary or self._closed:
            # the fallback answered from this process's memory (Redis went away meanwhile): not an allowance
            await owner.settle(result, 0, actual_tokens=0)
            return
        self.granted += 1
        a = _Allowance(book, result, size)
        asyncio.get_running_loop().call_later(self._hold_s, self._expire, a)
        if book.current is None:
            book.current = a
        elif book.next is None:
            book.next = a
        else:  # cannot happen (one grant at a time); never lose one
            self._retire(a)

    def _expire(self, a: _Allowance) -> None:
        if a.retired:
            return
        book = a.book
        if a.requests * 2 > a.res._request.count and book.size > FIRST_SIZE:
            book.size //= 2  # mostly unused: the next ones are smaller
        self._unlink(a)
        self._retire(a)

    def _unlink(self, a: _Allowance) -> None:
        book = a.book
        if book.current is a:
            book.current, book.next = book.next, None
        elif book.next is a:
            book.next = None

    def _retire(self, a: _Allowance) -> None:
        if a.retired:
            return
        a.retired = True
        if a.in_flight == 0:
            self._report(a)

    def _report(self, a: _Allowance) -> None:
        """Give back what ``a`` did not use and charge what it spent: written to Redis now, in order with
        this process's later admissions; its answer awaited in the background."""
        res = a.res
        if res._done:
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:  # settled from elsewhere: reported from the allowances' own loop
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._report, a)
            return
        res._request.back = a.requests
        try:
            # in nano-dollars, as counted; the fallback replays it when Redis is back if it does not answer now
            sent = self._owner.send_settlement(res, a.spent, a.used_tokens)
        except Exception as exc:  # limits must never fail an answered request
            log.warning("settling an allowance failed: %s", exc)
            return
        assert self._loop is not None
        task = self._loop.create_task(self._settled(sent))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _settled(sent: Awaitable[None]) -> None:
        try:
            await sent
        except Exception as exc:
            log.warning("settling an allowance failed: %s", exc)

    def retire(self) -> None:
        """Retire every allowance now: what they did not use goes back to Redis (what is in flight, as
        it settles)."""
        for book in list(self._by_value.values()):
            for a in (book.current, book.next):
                if a is not None:
                    self._retire(a)
            book.current = book.next = None

    async def idle(self) -> None:
        """Wait for the grants and reports in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self, timeout_s: float = 2.0) -> None:
        """Grant no more, retire every allowance and wait (``timeout_s`` at most) for what goes back."""
        self._closed = True
        self.retire()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.idle()
