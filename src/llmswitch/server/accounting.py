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
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.errors import APIStatusError, RateLimitError

if TYPE_CHECKING:
    from llmswitch.limits import Limiter, Reservation, SubjectLimits
    from llmswitch.server.auth import Principal
    from llmswitch.server.http import Request
    from llmswitch.spend import Journal, Shipper

log = logging.getLogger("llmswitch.accounting")


class BudgetExceededError(APIStatusError):
    """A request refused because a key's, user's or team's budget is spent."""


def estimate_prompt_tokens(req: ir.Request) -> int:
    """A cheap upper-ish estimate (about four characters a token) used for tpm and budget reservations."""
    chars = 0
    for m in req.messages:
        for p in m.content:
            text = getattr(p, "text", None)
            if isinstance(text, str):
                chars += len(text)
            elif isinstance(p, ir.ToolCallPart):
                chars += len(p.arguments) + len(p.name)
            else:
                chars += 1000  # an image or a file: a flat allowance
    return chars // 4 + 4 * len(req.messages) + 1


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
    ) -> None:
        self.limiter = limiter
        self.store = store
        self.subjects = subjects
        self._journal_base = Path(journal_dir) if journal_dir else None
        self._fsync = fsync
        self.journal: Journal | None = None
        self.shipper: Shipper | None = None
        self._limits_cache: dict[int, tuple[Any, SubjectLimits]] = {}
        self._group_price: dict[str, Any] = {}

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._journal_base is None or self.store is None:
            return
        from llmswitch.spend import Journal, Shipper

        self._journal_base.mkdir(parents=True, exist_ok=True)
        await self._adopt_orphans()
        # one directory per gateway instance (a process may run several, as tests do)
        self._own_name = f"w-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        own = self._journal_base / self._own_name
        self.journal = Journal(own, fsync=self._fsync)  # type: ignore[arg-type]
        await self.journal.open()
        self.shipper = Shipper(self.journal, self.store)
        await self.shipper.start()

    async def _adopt_orphans(self) -> None:
        """Ship what gateway processes that died (``kill -9``) left in their journals, then drop them."""
        from llmswitch.spend import Journal, JournalLockedError, Shipper

        assert self._journal_base is not None
        for d in sorted(self._journal_base.glob("w-*")):
            if not d.is_dir() or _owner_alive(d.name):
                continue
            journal = Journal(d, fsync=self._fsync)  # type: ignore[arg-type]
            try:
                await journal.open()
            except JournalLockedError:
                continue  # a live process owns it
            try:
                async with Shipper(journal, self.store) as shipper:
                    await shipper.drain()
                    shipped = shipper.stats.shipped
            finally:
                await journal.close()
            await asyncio.to_thread(_remove_dir, d)
            log.warning("replayed %d spend records left by a stopped gateway process (%s)", shipped, d.name)

    async def stop(self) -> None:
        drained = False
        if self.shipper is not None:
            with contextlib.suppress(Exception):
                await self.shipper.drain()
                drained = self.shipper.last_error is None
            await self.shipper.stop()
        if self.journal is not None:
            directory = self.journal.directory
            await self.journal.close()
            if drained:
                # everything is in the store: nothing for the next start to replay
                await asyncio.to_thread(_remove_dir, Path(directory))
        if self.limiter is not None:
            with contextlib.suppress(Exception):
                await self.limiter.aclose()

    # ---------------------------------------------------------------- before the call

    def limits_for(self, principal: Principal) -> list[SubjectLimits]:
        from llmswitch.limits import SubjectLimits

        rec = principal.record
        if rec is None:
            return []
        out: list[SubjectLimits] = []
        # one SubjectLimits per key record version, built once (records are immutable)
        cached = self._limits_cache.get(id(rec))
        if cached is None or cached[0] is not rec:
            if len(self._limits_cache) > 100_000:
                self._limits_cache.clear()
            cached = (rec, SubjectLimits.for_key(rec))
            self._limits_cache[id(rec)] = cached
        if cached[1].has_limits:
            out.append(cached[1])
        if self.subjects is not None:
            for kind, sid in (("user", rec.user_id), ("team", rec.team_id)):
                if sid:
                    sub = self.subjects.get(kind, sid)
                    if sub is not None:
                        lim = _subject_limits(kind, sub)
                        if lim.has_limits:
                            out.append(lim)
        return out

    def price_hint(self, router: Any, group: str) -> Any:
        """The dearest price among a group's deployments: what a budget reservation is estimated at
        before the router has picked one."""
        if self.limiter is None:
            return None
        if group in self._group_price:
            return self._group_price[group]
        from llmswitch.cost import price_for

        best = None
        try:
            for t in router.deployments(group):
                p = price_for(t.model, t.provider.name, _overrides(t))
                if p is not None and (best is None or (p.output, p.input) > (best.output, best.input)):
                    best = p
        except Exception:
            best = None
        if len(self._group_price) < 10_000:
            self._group_price[group] = best
        return best

    async def admit(
        self, principal: Principal, req: ir.Request, request: Request, price_hint: Any = None
    ) -> Reservation | None:
        """Admit the request against its limits; raise a 429 or a budget error naming the limit."""
        if self.limiter is None:
            return None
        limits = self.limits_for(principal)
        if not limits:
            return None
        tokens = estimate_prompt_tokens(req)
        request.state["tokens_estimate"] = tokens
        cost = 0.0
        if price_hint is not None and any(lim.max_budget is not None for lim in limits):
            from llmswitch.cost import estimate_cost

            with contextlib.suppress(Exception):
                cost = estimate_cost(price_hint, tokens, req.max_tokens)
        result = await self.limiter.admit(limits, tokens=tokens, cost=cost)
        if result.allowed:
            return result
        from llmswitch.limits import rate_limit_headers

        ref = result.which_limit
        headers = rate_limit_headers(result.decision)
        message = result.message.replace(ref.subject, _subject_name(ref.subject, principal))
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
    ) -> float | None:
        """Price the answer, journal its record, settle its reservation; the cost (USD) or None."""
        cost = None
        if usage is not None and route is not None:
            cost = _cost(route, usage)
        if reservation is not None and self.limiter is not None:
            try:
                if error is not None and usage is None:
                    await self.limiter.release(reservation)
                else:
                    await self.limiter.settle(
                        reservation, cost or 0.0, actual_tokens=usage.total_tokens if usage is not None else None
                    )
            except Exception as exc:  # limits must never fail an answered request
                log.warning("settling limits failed: %s", exc)
        if self.journal is not None and (usage is not None or error is not None):
            await self._record(
                request, status=status, route=route, usage=usage, cost=cost, error=error, stream=stream, started=started
            )
        return cost

    async def _record(
        self,
        request: Request,
        *,
        status: int,
        route: Any,
        usage: ir.Usage | None,
        cost: float | None,
        error: BaseException | None,
        stream: bool,
        started: float,
    ) -> None:
        from llmswitch.spend import SpendRecord

        assert self.journal is not None
        principal = request.state.get("principal")
        rec = getattr(principal, "record", None)
        u = usage or ir.Usage()
        record = SpendRecord(
            request_id=request.state["spend_id"],
            key_hash=getattr(principal, "key_hash", None) or None,
            key_alias=getattr(rec, "key_alias", None),
            user_id=getattr(rec, "user_id", None),
            team_id=getattr(rec, "team_id", None),
            model_group=request.state.get("model"),
            deployment_id=getattr(route, "id", None),
            provider=str(getattr(route, "provider", "")) or None,
            model=getattr(route, "model", None),
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            cache_read_tokens=u.cache_read_tokens,
            cache_write_tokens=u.cache_write_tokens,
            reasoning_tokens=u.reasoning_tokens,
            cost=cost,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            ttft_ms=request.state.get("ttft_ms"),
            status=status,
            error_class=type(error).__name__ if error is not None else None,
            stream=stream,
            metadata=_client_id(request),
        )
        try:
            await self.journal.append(record)
        except Exception as exc:
            # the answer is already computed; losing its record is logged loudly, never hidden
            log.error("could not journal spend record %s: %s", record.request_id, exc)


def _remove_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        for f in directory.iterdir():
            f.unlink()
        directory.rmdir()


def _owner_alive(name: str) -> bool:
    """Whether the process that made journal directory ``w-<pid>-<token>`` still runs (on this host):
    a live process's journal is never taken over, even in the instant before it locks it."""
    try:
        pid = int(name.split("-")[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return False  # an earlier instance in this process: its lock tells (JournalLockedError)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _client_id(request: Request) -> dict[str, Any]:
    rid = request.state.get("request_id")
    return {"client_request_id": rid} if rid is not None and rid != request.state.get("spend_id") else {}


def _subject_name(subject: str, principal: Principal) -> str:
    """``key:<hash>`` as a person reads it: the key's alias or masked name; users and teams by id."""
    kind, _, ident = subject.partition(":")
    if kind == "key":
        rec = principal.record
        alias = getattr(rec, "key_alias", None)
        name = getattr(rec, "key_name", None)
        if alias:
            return f"key '{alias}'" + (f" ({name})" if name else "")
        return f"key {name or ident[:12]}"
    return f"{kind} '{ident}'"


def _subject_limits(kind: str, sub: Any) -> SubjectLimits:
    from llmswitch.limits import BudgetPeriod, SubjectLimits

    period = None
    if getattr(sub, "budget_duration", None) is not None or getattr(sub, "budget_reset_at", None) is not None:
        period = BudgetPeriod(sub.budget_duration, sub.budget_reset_at)
    return SubjectLimits(
        subject=f"{kind}:{sub.id}",
        rpm_limit=sub.rpm_limit,
        tpm_limit=sub.tpm_limit,
        max_parallel_requests=getattr(sub, "max_parallel_requests", None),
        max_budget=sub.max_budget,
        budget_period=period,
    )


def _overrides(target: Any) -> dict[str, Any] | None:
    params = getattr(target, "params", None) or {}
    info = getattr(target, "model_info", None) or {}
    if not params and not info:
        return None
    return {**params, **info}


_MISSING = object()
# the price of each deployment's model, resolved once: (target, model) -> Price | None
_prices: dict[tuple[int, str], Any] = {}


def _cost(route: Any, usage: ir.Usage) -> float | None:
    from llmswitch.cost import cost_of, cost_of_embedding, price_for

    target = getattr(route, "target", route)
    model = str(getattr(route, "model", ""))
    key = (id(target), model)
    price = _prices.get(key, _MISSING)
    if price is _MISSING:
        try:
            price = price_for(model, str(getattr(route, "provider", "")) or None, _overrides(target))
        except Exception:
            price = None
        if len(_prices) > 10_000:
            _prices.clear()
        _prices[key] = price
    if price is None:
        return None
    try:
        return float(cost_of_embedding(usage, price) if price.mode == "embedding" else cost_of(usage, price))
    except Exception:
        return None


def spend_loader_for(store: Any) -> Any:
    """The limiter's way to learn what a subject has spent in its current budget period (after a
    restart, or a Redis that lost its state): the spend records of the period when the budget resets,
    the stored total when it never does."""
    from datetime import UTC, datetime, timedelta

    from llmswitch.limits import BudgetPeriod
    from llmswitch.store.durations import parse_duration

    columns = {"key": "key_hash", "user": "user_id", "team": "team_id"}

    async def load(subject: str) -> tuple[float, Any] | None:
        kind, _, ident = subject.partition(":")
        if kind == "key":
            rec = await store.get_key(ident)
        elif kind in ("user", "team") and hasattr(store, "get_subject"):
            rec = await store.get_subject(kind, ident)
        else:
            return None
        if rec is None:
            return None
        duration = rec.budget_duration
        if duration is None:
            return rec.spend, rec.budget_reset_at
        now = datetime.now(UTC)
        end = BudgetPeriod(duration, rec.budget_reset_at).end_at(now)
        if end is None:
            return rec.spend, rec.budget_reset_at
        start = end - parse_duration(duration, start=end - timedelta(days=31))
        spent = await store.spend_since(columns[kind], ident, start)
        return spent, end

    return load


def cost_header(cost: float | None) -> dict[str, str]:
    return {} if cost is None else {"x-llmswitch-cost": f"{cost:.10f}".rstrip("0").rstrip(".") or "0"}


__all__: Sequence[str] = ("Accounting", "BudgetExceededError", "cost_header", "estimate_prompt_tokens")
