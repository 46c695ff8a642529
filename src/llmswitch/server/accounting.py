"""Who may spend what, and what was spent: limits before a call, cost and a durable record after.

Before routing, a request is admitted against every limit that applies to it — its key's, its
user's and its team's rpm, tpm, parallel requests and budget — in one atomic limiter call (memory, or
Redis shared by every gateway process). A budget is reserved from an estimate and settled to the real
cost after the answer. Each answered request's :class:`SpendRecord` is appended to the local journal
before the response's last byte goes out; the shipper moves records to the store in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.cost import price_for
from llmswitch.errors import APIStatusError, RateLimitError, ServiceUnavailableError
from llmswitch.limits import LimiterError, SubjectLimits, rate_limit_headers
from llmswitch.limits.errors import BudgetsUnavailableError
from llmswitch.limits.model_limits import model_limits_for_key
from llmswitch.server import lost_attempts
from llmswitch.server.cascade_spend import journal_weak_call
from llmswitch.server.estimates import (
    estimate_embedding_tokens,
    estimate_prompt_tokens,
    tokens_of_chars,
    usage_so_far,
)
from llmswitch.server.journals import Adopter, adopt_orphans, close_journal, open_own_journal
from llmswitch.server.key_plans import KeyPlan, subject_limits, subject_name
from llmswitch.server.lease_renewal import renew_leases
from llmswitch.server.lost_attempts import journal_lost
from llmswitch.server.pricing import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    cost_header,
    cost_of_usage,
    dearer,
    deployment_of,
    overrides_of,
    reachable_deployments,
    reserve_estimate,
)
from llmswitch.server.spend_lines import spend_line
from llmswitch.server.spend_loader import spend_loader_for
from llmswitch.server.spend_records import spend_record
from llmswitch.spend.framing import encode_line
from llmswitch.store.errors import StoreError
from llmswitch.store.records import CallType
from llmswitch.telemetry import traces

if TYPE_CHECKING:
    from llmswitch.limits import Limiter, Reservation
    from llmswitch.server.auth import Principal
    from llmswitch.server.http import Request
    from llmswitch.spend import Journal, Shipper
    from llmswitch.telemetry.metrics import Metrics

log = logging.getLogger("llmswitch.accounting")
_MISSING: Any = object()


class BudgetExceededError(APIStatusError):
    """A request refused because a key's, user's or team's budget is spent."""


class Accounting:
    """Limits, costs and spend records for one gateway process."""

    def __init__(
        self,
        *,
        limiter: Limiter | None,
        store: Any,
        journal_dir: str | None,
        fsync: str = "os",
        subjects: Any = None,
        default_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
        renew_every_s: float | None = None,
    ) -> None:
        self.limiter = limiter
        self.default_output_tokens = default_output_tokens
        self.store = store
        self.subjects = subjects
        self._journal_base = Path(journal_dir) if journal_dir else None
        self._fsync = fsync
        self.journal: Journal | None = None
        self.shipper: Shipper | None = None
        #: the requests this process is answering (the app counts them): the spend shipper's load
        self.in_flight = 0
        self._adopter: Adopter | None = None
        # per key record (records are immutable, a change is a new one): its limits, built once
        self._plans: dict[int, KeyPlan] = {}
        # per user or team record, likewise
        self._subject_limits: dict[int, tuple[Any, SubjectLimits]] = {}
        self._group_price: dict[str, Any] = {}
        # records and settlements that had to wait (a journal commit, Redis), run apart from the request
        # so that its cancellation (a client hanging up) cannot stop them halfway; stop() waits for them
        self._finishing: set[asyncio.Future[None]] = set()
        self._outage_logged = 0.0
        # reservations holding leases (slots, budget reservations) while their requests run: renewed
        # every third of the lease TTL, so a request longer than the TTL keeps them to its end
        self._held: set[Reservation] = set()  # by identity: a reservation's hash is its id
        self._renew_every_s = renew_every_s
        self._renewer: asyncio.Task[None] | None = None
        self.metrics: Metrics | None = None  # the gateway's, when metrics are on

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self.limiter is not None and self._renewer is None:
            every = self._renew_every_s or self.limiter.lease_ttl_s / 3
            self._renewer = asyncio.get_running_loop().create_task(renew_leases(self.limiter, self._held, every))
        if self._journal_base is None or self.store is None:
            return
        from llmswitch.spend import Shipper

        self._journal_base.mkdir(parents=True, exist_ok=True)
        await adopt_orphans(self._journal_base, self.store, self._fsync)
        self.journal = await open_own_journal(self._journal_base, self._fsync)
        self.shipper = Shipper(self.journal, self.store, load=self._load)
        await self.shipper.start()
        # a gateway that dies while this one runs (its pid possibly reused at once) is adopted within seconds
        self._adopter = Adopter(self._journal_base, self.store, self._fsync)
        self._adopter.start()

    def _load(self) -> int:
        return self.in_flight

    async def ship_pending(self, timeout_s: float = 0.5) -> None:
        """Get what this process has journaled into the store, waiting ``timeout_s`` at most: before the
        limiter loads a budget's spend from the store, so the load counts this process's latest answers."""
        shipper = self.shipper
        if shipper is None:
            return
        with contextlib.suppress(TimeoutError, RuntimeError):  # a store that is slow or away: load what it has
            async with asyncio.timeout(timeout_s):
                await shipper.drain()

    async def stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._adopter is not None:
            await self._adopter.stop()
            self._adopter = None
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)
        await close_journal(self.shipper, self.journal, self.store)
        if self.limiter is not None:
            with contextlib.suppress(Exception):
                await self.limiter.aclose()

    # ---------------------------------------------------------------- before the call

    def limits_for(self, principal: Principal, model: str | None = None) -> Sequence[SubjectLimits]:
        """Every limit a request by ``principal`` for ``model`` is admitted against: its key's, the key's
        on that model (per-model limits), its user's, its team's."""
        rec = principal.record
        if rec is None:
            return ()
        plan = self._plans.get(id(rec))
        if plan is None or plan.record is not rec:
            plan = self._plan(rec)
        on_model = plan.model_limits.get(model) if plan.model_limits and model is not None else None
        if (not plan.has_subjects or self.subjects is None) and on_model is None:
            return plan.limits
        out = list(plan.limits)
        if on_model is not None:
            out.append(on_model)
        if not plan.has_subjects or self.subjects is None:
            return out
        for kind, sid in (("user", plan.user_id), ("team", plan.team_id)):
            if sid:
                sub = self.subjects.get(kind, sid)
                if sub is not None:
                    cached = self._subject_limits.get(id(sub))
                    if cached is None or cached[0] is not sub:
                        if len(self._subject_limits) > 100_000:
                            self._subject_limits.clear()
                        cached = (sub, subject_limits(kind, sub))
                        self._subject_limits[id(sub)] = cached
                    if cached[1].has_limits:
                        out.append(cached[1])
        return out

    def _plan(self, rec: Any) -> KeyPlan:
        if len(self._plans) > 100_000:
            self._plans.clear()
        own = SubjectLimits.for_key(rec)
        plan = self._plans[id(rec)] = KeyPlan(rec, (own,) if own.has_limits else ())
        plan.model_limits = model_limits_for_key(rec) if getattr(rec, "model_max_budget", None) is not None else {}
        return plan

    def price_hint(self, router: Any, group: str) -> Any:
        """The prices a budget reservation is estimated at before the router has picked a deployment:
        those of every deployment the request may reach (its group's, and its fallback groups'), less
        any that another is at least as dear as in every rate. A tuple, or ``None`` when none is known."""
        if self.limiter is None:
            return None
        best = self._group_price.get(group, _MISSING)
        if best is not _MISSING:
            return best
        prices: list[Any] = []
        try:
            for t in reachable_deployments(router, group):
                p = price_for(t.model, t.provider.name, overrides_of(t))
                if p is not None and not any(dearer(q, p) for q in prices):
                    prices = [q for q in prices if not dearer(p, q)] + [p]
        except Exception:
            prices = []
        best = tuple(prices) or None
        if len(self._group_price) < 10_000:
            self._group_price[group] = best
        return best

    async def admit(
        self,
        principal: Principal,
        req: ir.Request | ir.EmbeddingRequest,
        request: Request,
        price_hint: Any = None,
    ) -> Reservation | None:
        """Admit the request against its limits; raise a 429 or a budget error naming the limit, or a 503
        when what the limits need (the store, for a budget's spend) cannot be reached, or when the spend
        journal cannot write (fail closed: an answer whose record would be lost is not started)."""
        # the router's timed-out attempts (the provider may bill them) are this request's: lost_attempts.py
        lost_attempts.current.set((request, req))
        if self.metrics is not None:
            self.metrics.begin(request.state, type(req) is ir.Request and req.stream)
        if traces.ACTIVE is not None and self.limiter is not None:
            with traces.step("limiter", **{"llmswitch.limiter": self.limiter.name}):
                return await self._admit(principal, req, request, price_hint)
        return await self._admit(principal, req, request, price_hint)

    async def _admit(
        self,
        principal: Principal,
        req: ir.Request | ir.EmbeddingRequest,
        request: Request,
        price_hint: Any,
    ) -> Reservation | None:
        journal = self.journal
        if journal is not None and journal.failing:
            raise ServiceUnavailableError(
                "the gateway cannot record spend right now; retry shortly",
                status_code=503,
                provider="llmswitch",
                error_type="service_unavailable",
                retry_after=1.0,
            )
        limiter = self.limiter
        if limiter is None:
            return None
        limits = self.limits_for(principal, req.model)
        if not limits:
            return None
        if type(req) is ir.EmbeddingRequest:
            tokens = estimate_embedding_tokens(req)
            max_tokens: int | None = 0  # an embedding has no output to pay for
        else:
            tokens = estimate_prompt_tokens(req)  # type: ignore[arg-type]
            max_tokens = req.max_tokens  # type: ignore[union-attr]
        request.state["tokens_estimate"] = tokens
        cost = 0.0
        if price_hint is not None:
            for lim in limits:
                if lim.max_budget is not None:
                    for price in price_hint:
                        estimate = reserve_estimate(price, tokens, max_tokens, self.default_output_tokens)
                        if estimate > cost:
                            cost = estimate
                    break
        # a limiter in memory answers at once; one that needs I/O (Redis, a budget to load) is awaited
        result = limiter.admit_nowait(limits, tokens=tokens, cost=cost)
        if result is None:
            try:
                result = await limiter.admit(limits, tokens=tokens, cost=cost)
            except BudgetsUnavailableError as exc:
                # degraded and failing closed: the caller may retry; where Redis is stays in the limiter's
                # one outage warning, not in every answer
                retry = max(1, math.ceil(exc.retry_after_s))
                raise ServiceUnavailableError(
                    "budgets cannot be checked right now; retry shortly",
                    status_code=503,
                    provider="llmswitch",
                    error_type="service_unavailable",
                    retry_after=retry,
                    headers={"retry-after": str(retry)},
                ) from exc
            except (StoreError, LimiterError, OSError) as exc:
                raise self._unavailable(exc) from exc
        if result.allowed:
            self._held.add(result)  # one without leases costs the renewer nothing (renew() skips it)
            return result
        ref = result.which_limit
        if self.metrics is not None:
            self.metrics.note_refusal(ref.kind, ref.subject, principal)
        headers = rate_limit_headers(result.decision)
        message = result.message.replace(ref.subject, subject_name(ref.subject, principal))
        if ref.kind == "max_budget":
            raise BudgetExceededError(
                message,
                status_code=400,
                provider="llmswitch",
                error_type="budget_exceeded",
                param=ref.subject.split(":", 1)[0],
                headers=headers,
            )
        raise RateLimitError(
            message,
            status_code=429,
            provider="llmswitch",
            error_type="rate_limit_error",
            retry_after=result.retry_after_s,
            headers=headers,
        )

    def _unavailable(self, exc: BaseException) -> ServiceUnavailableError:
        """The caller's answer when a budget's spend cannot be read: a 503 that names nothing of the
        gateway's insides (the database's host and port are for the log, which says it once a minute)."""
        now = time.monotonic()
        if now - self._outage_logged >= 60.0 or not self._outage_logged:
            self._outage_logged = now
            log.error("cannot admit requests against budgets: %s", exc)
        return ServiceUnavailableError(
            "the gateway cannot check this key's limits right now; retry shortly",
            status_code=503,
            provider="llmswitch",
            error_type="service_unavailable",
            retry_after=1.0,
        )

    # ---------------------------------------------------------------- after the call

    async def finish(
        self,
        request: Request,
        reservation: Reservation | None,
        *,
        status: int,
        route: Any = None,
        usage: ir.Usage | None = None,
        error: BaseException | None = None,
        stream: bool = False,
        started: float,
        estimated: bool = False,
        call_type: CallType = "chat",
        cache_hit: bool = False,
        hit_counts: tuple[bool, bool] = (False, False),
        batch: bool = False,
    ) -> float | None:
        """Price the answer, journal its record, settle its reservation; the cost (USD) or None.

        A ``cache_hit`` costs nothing: its record keeps what the answer would have cost as
        ``cache_saved_cost``, and ``hit_counts`` says whether its tokens and its saved cost still count
        against the caller's limits (the cache's ``hits_count_tokens`` / ``hits_count_spend``). A line of
        a batch (``batch``) is priced at the provider's batch rates.

        The record is journaled first, and whatever must be awaited (a journal commit, a settlement in
        Redis) runs in a task of its own that the request's cancellation cannot stop: a client hanging
        up at that moment must neither lose the record nor leave its reservation held. Only a journal
        commit is waited for here (the record is written before the answer is); a settlement in Redis
        is sent before the answer and its reply awaited after it, off the response path.
        """
        served = deployment_of(route) if route is not None else None
        cost = None
        if usage is not None and served is not None and served.price is not None:
            cost = cost_of_usage(served.price, usage, batch=batch)
        saved = None
        if cache_hit:
            saved, cost = cost, 0.0
        if cost is not None:
            request.state["cost"] = cost  # for the access log and the callbacks
        commit: list[bytes] | None = None
        journal = self.journal
        if journal is not None and (usage is not None or error is not None):
            try:
                line = (
                    self._spend_line(
                        request, status, served, usage, cost, error, stream, started, estimated, call_type, saved
                    )
                    if getattr(route, "auto", None) is None  # an auto group's decision goes in its metadata
                    else None
                )
                if line is None:  # a value that needs the full check (and may fail it, loudly)
                    line = encode_line(
                        spend_record(
                            request, status, route, usage, cost, error, stream, started, estimated, call_type, saved
                        )
                    )
                if not journal.append_nowait(line):
                    commit = [line]
            except Exception as exc:
                # the answer is already computed; losing its record is logged loudly, never hidden
                log.error("could not journal spend record %s: %s", request.state.get("spend_id"), exc)
        lost_cost, lost_tokens = 0.0, 0
        if "lost_attempts" in request.state:
            lost_cost, lost_tokens, more = journal_lost(self.journal, request, started, stream, call_type)
            if more:
                commit = [*commit, *more] if commit is not None else more
        if getattr(route, "auto", None) is not None:  # an escalated cascade's weak call: cascade_spend.py
            here = lost_attempts.current.get()
            more_cost, more_tokens, more = journal_weak_call(
                self.journal, request, route, here[1] if here else None, started, stream, call_type
            )
            lost_cost, lost_tokens = lost_cost + more_cost, lost_tokens + more_tokens
            if more:
                commit = [*commit, *more] if commit is not None else more
        settle: Awaitable[None] | None = None
        tokens: int | None
        limiter = self.limiter
        if reservation is not None and limiter is not None:
            self._held.discard(reservation)
            charge, tokens = 0.0, 0
            if error is None or usage is not None:
                charge, tokens = cost or 0.0, (usage.total_tokens if usage is not None else None)
            if cache_hit:
                charge = (saved or 0.0) if hit_counts[1] else 0.0
                tokens = tokens if hit_counts[0] else 0
            if lost_tokens:
                charge, tokens = charge + lost_cost, (tokens or 0) + lost_tokens
            try:
                if not limiter.settle_nowait(reservation, charge, actual_tokens=tokens):
                    # sent now, before the answer (so it reaches a shared limiter ahead of any request the
                    # answer leads to, on whichever instance), its reply awaited after
                    settle = limiter.settle_soon(reservation, charge, actual_tokens=tokens)
            except Exception as exc:  # limits must never fail an answered request
                log.warning("settling limits failed: %s", exc)
        if self.metrics is not None:
            self.metrics.note_finish(request.state, status, route, served, usage, cost, error, started, call_type)
        if commit is not None or settle is not None:
            done = asyncio.ensure_future(self._complete(request, commit, settle))
            self._finishing.add(done)
            done.add_done_callback(self._finishing.discard)
            if commit is not None:
                await asyncio.shield(done)
            # a settlement alone is not waited for: it was sent above and the answer does not depend on
            # its reply; stop() waits for it
        return cost

    async def _complete(self, request: Request, lines: list[bytes] | None, settle: Awaitable[None] | None) -> None:
        """The awaited half of :meth:`finish`: the journal commits, then the settlement's answer."""
        if lines and self.journal is not None:
            for line in lines:
                try:
                    await self.journal.append_encoded(line)
                except Exception as exc:
                    log.error("could not journal spend record %s: %s", request.state.get("spend_id"), exc)
        if settle is not None:
            try:
                await settle
            except Exception as exc:  # limits must never fail an answered request
                log.warning("settling limits failed: %s", exc)

    def _spend_line(self, request: Request, *values: Any) -> bytes | None:
        """:func:`~llmswitch.server.spend_lines.spend_line` with the key's plan."""
        principal = request.state.get("principal")
        rec = getattr(principal, "record", None)
        plan = None
        if rec is not None:
            plan = self._plans.get(id(rec))
            if plan is None or plan.record is not rec:
                plan = self._plan(rec)
        return spend_line(request, principal, plan, *values)


__all__: Sequence[str] = (
    "Accounting",
    "BudgetExceededError",
    "cost_header",
    "estimate_embedding_tokens",
    "estimate_prompt_tokens",
    "spend_loader_for",
    "tokens_of_chars",
    "usage_so_far",
)
