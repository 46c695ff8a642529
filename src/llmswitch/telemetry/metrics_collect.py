"""Gauges read from the gateway's state: breakers, deployment health, budgets, the spend journal,
Redis and the database.

Nothing here runs per request. :class:`Collector` reads the state when a scrape comes (into this
worker's slots) and every ``EVERY_S`` seconds in the background, then writes this worker's values to
its file, so that a scrape answered by another worker sees this one as of a second ago at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from llmswitch.telemetry.metrics import Metrics

log = logging.getLogger("llmswitch.metrics")

EVERY_S = 1.0
# budgets are read at each scrape, and in the background every BUDGETS_EVERY collections: each one is a
# limiter read (a Redis call with Redis limits); a worker's older reading loses to the scraping worker's
# fresh one (spend combines by max, what remains by min)
BUDGETS_EVERY = 15
MAX_BUDGETS = 1000
_STATE = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


class Collector:
    """Reads a gateway's state into its metrics; :meth:`start` / :meth:`stop` the background refresh."""

    def __init__(self, metrics: Metrics, gateway: Any) -> None:
        self.metrics = metrics
        self.gateway = gateway
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="llmswitch-metrics")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self.collect()
        self.metrics.flush()  # a worker that stops loses nothing it counted

    async def _run(self) -> None:
        n = 0
        while True:
            budgets, n = n % BUDGETS_EVERY == 0, n + 1
            try:
                await self.collect(budgets=budgets)
                self.metrics.flush()
            except Exception as exc:  # metrics must never take the gateway down
                log.warning("collecting metrics failed: %s", exc)
            await asyncio.sleep(EVERY_S)

    async def collect(self, *, budgets: bool = True) -> None:
        self.deployments()
        self.spend()
        if budgets:
            await self.budgets()

    def deployments(self) -> None:
        m = self.metrics
        caps = m.caps
        for t in _targets(self.gateway.router):
            labels = (caps["model_group"](t.group), caps["deployment"](t.id), str(t.provider.name))
            breaker = t.breaker
            state = breaker.state
            if state == "open" and breaker.reopens_in() <= 0:
                state = "half_open"  # the next call is let through as a probe
            m.set_gauge("llmswitch_breaker_state", labels, _STATE.get(state, 0.0))
            m.set_total("llmswitch_breaker_opened", labels, float(breaker.times_opened))
            for to, times in (
                ("open", breaker.times_opened),
                ("half_open", breaker.times_half_opened),
                ("closed", breaker.times_closed),
            ):
                m.set_total("llmswitch_breaker_transitions", (*labels, to), float(times))
            m.set_gauge("llmswitch_upstream_in_flight", labels, float(t.in_flight))
            resting = t.rest_until > self.gateway.router.clock()
            m.set_gauge("llmswitch_deployment_healthy", labels, 0.0 if state == "open" or resting else 1.0)

    def spend(self) -> None:
        m = self.metrics
        acc = self.gateway.accounting
        shipper = getattr(acc, "shipper", None)
        if shipper is not None:
            done = shipper.stats.shipped + shipper.stats.rejected
            backlog = max(0, m.recorded - done)
            # the shipper's own time (it catches up between batches even when a sample here never sees
            # an empty backlog, as under steady load)
            lag = 0.0 if backlog == 0 else max(0.0, time.monotonic() - shipper.caught_up_at)
            m.set_gauge("llmswitch_spend_journal_backlog_records", (), float(backlog))
            m.set_gauge("llmswitch_spend_shipper_lag_seconds", (), lag)
        if self.gateway.store is not None:
            failing = (shipper is not None and shipper.last_error is not None) or bool(
                getattr(self.gateway.keys, "_lookup_failing", False)
            )
            m.set_gauge("llmswitch_database_up", (), 0.0 if failing else 1.0)
        degraded = getattr(acc.limiter, "degraded", None)
        if isinstance(degraded, bool):
            m.set_gauge("llmswitch_redis_up", (), 0.0 if degraded else 1.0)
        allowances = getattr(acc.limiter, "allowances", None)
        if allowances is not None:
            m.set_total("llmswitch_limiter_allowances", (), float(allowances.granted))
            m.set_total("llmswitch_limiter_allowance_admissions", (), float(allowances.admitted))

    async def budgets(self) -> None:
        m = self.metrics
        limiter = self.gateway.accounting.limiter
        caps = m.caps
        for n, (kind, subject, name, record) in enumerate(_limited(self.gateway)):
            if n >= MAX_BUDGETS:
                break
            label = caps["key_alias"](name) if kind == "key" else caps["team"](name)
            for limit, field in _LIMITS:
                value = getattr(record, field, None)
                if value is not None:
                    m.set_gauge("llmswitch_limit_configured", (kind, label, limit), float(value))
            if getattr(record, "max_budget", None) is None:
                continue
            ceiling = float(record.max_budget)
            spent = float(getattr(record, "spend", 0.0) or 0.0)
            if limiter is not None:
                try:
                    state = await limiter.budget(subject)
                except Exception:
                    state = None  # Redis away: the record's spend (as of the last refresh) stands in
                if state is not None:
                    spent = state.spent + state.reserved
            m.set_gauge("llmswitch_budget_max_usd", (kind, label), ceiling)
            m.set_gauge("llmswitch_budget_spent_usd", (kind, label), spent)
            m.set_gauge("llmswitch_budget_remaining_usd", (kind, label), max(0.0, ceiling - spent))


def _targets(router: Any) -> Iterator[Any]:
    """Every deployment the router holds: its groups' and the wildcard names resolved so far."""
    seen: set[str] = set()
    groups = getattr(router, "_groups", {})
    wildcards = getattr(router, "_wildcards", None)
    resolved = wildcards.resolved() if wildcards is not None else []
    for targets in (*groups.values(), resolved):
        for t in targets:
            if t.id not in seen:
                seen.add(t.id)
                yield t


_LIMITS = (("rpm", "rpm_limit"), ("tpm", "tpm_limit"), ("parallel", "max_parallel_requests"))


def _has_limits(rec: Any) -> bool:
    return getattr(rec, "max_budget", None) is not None or any(getattr(rec, f, None) is not None for _, f in _LIMITS)


def _limited(gateway: Any) -> Iterator[tuple[str, str, str, Any]]:
    """(kind, limiter subject, label name, record) of each key and team with a budget or a rate limit."""
    keys = getattr(gateway.keys, "_keys", {})
    for rec in list(keys.values()):
        if _has_limits(rec):
            name = getattr(rec, "key_alias", None) or getattr(rec, "key_name", None) or ""
            yield "key", f"key:{rec.token_hash}", str(name), rec
    subjects = getattr(gateway.subjects, "_subjects", {})
    for (kind, ident), rec in list(subjects.items()):
        if kind == "team" and _has_limits(rec):
            yield "team", f"team:{ident}", str(ident), rec


def attach_metrics(gateway: Any, metrics: Metrics) -> Collector:
    """Wire ``metrics`` into a gateway: its accounting's hooks, its router's ``on_attempt`` (after any hook
    already there), the config's names exempt from the label caps; the collector, for the gateway to start."""
    router = gateway.router
    targets = list(_targets(router))
    metrics.know(
        tuple(router.model_names()),
        tuple(t.id for t in targets) + tuple(t.model for t in targets),
        dict(getattr(router, "aliases", {})),
    )
    gateway.accounting.metrics = metrics
    router.on_attempt = chain_hooks(router.on_attempt, metrics.note_attempt)
    if hasattr(router, "on_auto_decision"):  # auto groups' decisions (llmswitch.router.auto)
        router.on_auto_decision = metrics.note_auto_route
    return Collector(metrics, gateway)


def chain_hooks(first: Callable[[Any], None] | None, then: Callable[[Any], None]) -> Callable[[Any], None]:
    """One ``on_attempt`` hook calling ``first`` (if any) and then ``then``."""
    if first is None:
        return then

    def both(attempt: Any) -> None:
        try:
            first(attempt)
        finally:
            then(attempt)

    return both
