"""The Router: which deployment serves a request, and what happens when that fails.

    >>> router = Router(model_list=[
    ...     {"model_name": "main", "litellm_params": {"model": "openai/gpt-4o"}, "model_info": {"priority": 1}},
    ...     {"model_name": "main", "litellm_params": {"model": "anthropic/claude-sonnet-4-20250514"},
    ...      "model_info": {"priority": 2}},
    ... ], allowed_fails=3, cooldown_time=60)
    >>> r = await router.acompletion(model="main", messages=[{"role": "user", "content": "hi"}])  # doctest: +SKIP
    >>> r.llmswitch  # doctest: +SKIP
    {'deployment': 'main#0', 'model_group': 'main', 'attempts': 1, ...}

For each request: the lowest priority tier (``order`` / ``priority``) with an available deployment
(breaker not open, not resting after a 429, under its rpm/tpm caps, the prompt fits its context
window), then the routing strategy inside that tier. A failure is judged by its class
(:func:`llmswitch.router.retry.classify`): transient failures are retried on the same deployment
(full-jitter backoff, the provider's Retry-After honoured), deployment failures move to another
deployment at once, request errors fail fast. When the group is exhausted, its fallback groups take
over. One deadline bounds everything: no wait starts that would end past it, and each attempt's
timeout is cut to what is left.

This module is the decision loop; the parts live beside it: ``deployments`` (targets and their live
state), ``strategies``, ``breaker``, ``usage`` (rpm/tpm counters), ``fallbacks``, ``retry`` (classes,
backoff, Retry-After forms), ``settings``, ``probes`` (background health checks) and ``completions``
(the LiteLLM-style ``completion`` / ``acompletion`` / ``embedding`` surface).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from llmswitch import engine, ir
from llmswitch.errors import (
    APIError,
    APITimeoutError,
    ContextWindowExceededError,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
)
from llmswitch.procid import RNG
from llmswitch.router import completions
from llmswitch.router.attempts import AttemptHook
from llmswitch.router.auto import auto_row, build_groups
from llmswitch.router.breaker import Breaker
from llmswitch.router.deployments import Spec, Target, Wildcards
from llmswitch.router.fallbacks import Fallbacks, reason_of
from llmswitch.router.health import health_report
from llmswitch.router.outcomes import Ask, Outcomes, Route
from llmswitch.router.retry import RetryPolicy, classify, count_retry, may_retry, retry_wait
from llmswitch.router.settings import Settings, resolve_settings
from llmswitch.router.strategies import CostSource, Strategy, model_info_cost, strategy_for
from llmswitch.router.usage import LocalUsage, UsageCounter

__all__ = ["Route", "Router", "Target"]

# LiteLLM's default allowed_fails; unset, it feeds our breaker's own rule (consecutive or failure rate)
DEFAULT_ALLOWED_FAILS = 3


class Router(completions.CompletionMethods):
    """Routes requests for model groups to deployments, with LiteLLM Router-compatible names.

    ``model_list`` takes config :class:`~llmswitch.config.Deployment` objects, LiteLLM ``model_list``
    rows or flat dicts; ``settings`` a config ``RouterSettings``; keywords (LiteLLM's names) override
    it. ``clock``, ``sleep`` and ``rng`` are injectable so tests step through cooldowns and backoff
    without waiting; ``usage`` (rpm/tpm counters) and ``cost_source`` (prices) are pluggable;
    ``on_attempt`` is told about every call sent upstream, once (:mod:`llmswitch.router.attempts`);
    ``on_timeout`` only about those that timed out after they were sent (work a provider may bill though
    no answer came back), so that accounting for them costs the answered ones nothing.
    """

    def __init__(
        self,
        model_list: Iterable[Any] | None = None,
        *,
        settings: Any = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = RNG.random,
        usage: UsageCounter | None = None,
        cost_source: CostSource = model_info_cost,
        strategy: Strategy | None = None,
        on_attempt: AttemptHook | None = None,
        on_timeout: AttemptHook | None = None,
        **options: Any,
    ) -> None:
        if strategy is not None:
            options["strategy"] = strategy
        self.settings: Settings = resolve_settings(settings, options)
        s = self.settings
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.usage: UsageCounter = usage if usage is not None else LocalUsage(clock)
        self.cost_source = cost_source
        # told once about every call sent upstream (llmswitch.router.attempts), answered or not
        self.on_attempt = on_attempt
        # told once about every call sent upstream that timed out (the provider may have billed it)
        self.on_timeout = on_timeout
        self.strategy: Strategy = strategy_for(s.strategy, rng=rng, usage=self.usage)
        self.num_retries = s.num_retries
        self.timeout = s.timeout
        self.policy = RetryPolicy(
            num_retries=s.num_retries,
            base_delay=s.base_delay,
            max_delay=s.max_delay,
            max_retry_after=s.max_retry_after,
            rng=rng,
            per_class=s.retry_policy,
        )
        self.fallbacks = Fallbacks(
            fallbacks=s.fallbacks,
            context_window_fallbacks=s.context_window_fallbacks,
            content_policy_fallbacks=s.content_policy_fallbacks,
            default_fallbacks=s.default_fallbacks,
            max_fallbacks=s.max_fallbacks,
        )
        self.aliases = dict(s.model_group_alias)
        self._groups: dict[str, list[Target]] = {}
        self._sized: set[str] = set()  # groups with a deployment that names its context window
        self._wildcards = Wildcards(self._new_breaker, max_names=s.max_wildcard_names, on_evict=self._forget)
        self._outcomes = Outcomes(self)
        auto_rows: list[tuple[str, Any]] = []
        for i, row in enumerate(model_list or ()):
            if (auto := auto_row(row)) is not None:  # an `auto` group: its tiers are other groups
                auto_rows.append(auto)
                continue
            spec = Spec(row, i)
            if spec.is_wildcard:
                self._wildcards.add(spec)
            else:
                self._groups.setdefault(spec.group, []).append(spec.target(spec.model, self._new_breaker()))
        for targets in self._groups.values():
            self._prepare(targets)
        self._probes: Any = None
        #: told (group, Decision) once per request an `auto` group served (the gateway counts them)
        self.on_auto_decision: Callable[[str, Any], None] | None = None
        self._auto: dict[str, Any] = build_groups(auto_rows, self._auto_decided) if auto_rows else {}
        for auto_group in self._auto.values():
            auto_group.check_tiers(self)

    @classmethod
    def from_config(cls, config: Any, **options: Any) -> Router:
        """A router for a loaded :class:`~llmswitch.config.GatewayConfig`."""
        return cls(config.deployments, settings=config.router, **options)

    def _new_breaker(self) -> Breaker:
        s = self.settings
        return Breaker(
            allowed_fails=DEFAULT_ALLOWED_FAILS if s.allowed_fails is None else s.allowed_fails,
            cooldown=s.cooldown_time,
            window=s.window,
            failure_rate=s.failure_rate,
            min_volume=s.min_volume,
            counted=s.allowed_fails is not None,
            enabled=not s.disable_cooldowns,
            clock=self.clock,
        )

    def _auto_decided(self, group: str, decision: Any) -> None:
        if self.on_auto_decision is not None:
            self.on_auto_decision(group, decision)

    def is_auto(self, group: str) -> bool:
        """Whether ``group`` is an ``auto`` group (llmswitch.router.auto), routed between tiers."""
        return bool(self._auto) and self.aliases.get(group, group) in self._auto

    def _forget(self, group: str, targets: list[Target]) -> None:
        """A wildcard-served name left the router's memory: drop what is kept about it by name or id."""
        self._sized.discard(group)
        forget = getattr(self.usage, "forget", None)  # optional in the UsageCounter interface
        if forget is not None:
            for t in targets:
                forget(t.id)

    def _prepare(self, targets: list[Target]) -> None:
        """Sort a group by tier (the pick walks tiers in order) and fill what is computed once."""
        targets.sort(key=lambda t: t.tier)
        solo = len(targets) == 1 and not self.fallbacks.has(targets[0].group, "error")
        for t in targets:
            t.solo = solo
            t.cost = self.cost_source(t)
            if t.max_input_tokens:
                self._sized.add(t.group)

    # ---------------------------------------------------------------- lookup

    def model_names(self) -> list[str]:
        """Groups clients may ask for (aliases included, hidden ones not)."""
        names = set(self._groups) | set(self._auto)
        names.update(a for a, g in self.aliases.items() if g in self._groups and a not in self.settings.hidden_aliases)
        return sorted(names)

    def has(self, group: str) -> bool:
        return bool(self._targets(group))

    def deployments(self, group: str) -> list[Target]:
        """The deployments serving ``group`` (after aliases and wildcards), lowest tier first."""
        return list(self._targets(group))

    def _targets(self, group: str) -> list[Target]:
        group = self.aliases.get(group, group)
        found = self._groups.get(group)
        if found:
            return found
        if group in self._auto:  # both tiers' deployments (prices, health); _serve dispatches it
            return [t for tier in self._auto[group].tiers for t in self._targets(tier)]
        return self._wildcards.resolve(group, self._prepare)

    def _require(self, group: str) -> list[Target]:
        targets = self._targets(group)
        if not targets:
            raise NotFoundError(
                f"model {group!r} is not served here; available: {', '.join(self.model_names()) or 'none'}",
                status_code=404,
                provider="llmswitch",
                error_type="not_found_error",
                param="model",
            )
        return targets

    def health(self) -> list[dict[str, Any]]:
        """Per-deployment state, for ``GET /health``: breaker, in flight, latency, usage, last error."""
        return health_report(self, self._groups.values(), self._wildcards)

    # ---------------------------------------------------------------- public calls

    async def chat(
        self, req: ir.Request, *, timeout: float | None = None, raw: dict[str, Any] | None = None
    ) -> tuple[ir.Response | bytes, Route]:
        """Serve a chat request; with ``raw`` (the client's own OpenAI body) a deployment that speaks plain
        OpenAI answers with its bytes unchanged (the gateway's fast path)."""
        result, route = await self._serve(Ask("chat", req, raw, self._deadline(timeout)))
        return result, route

    async def chat_stream(
        self, req: ir.Request, *, timeout: float | None = None, raw: dict[str, Any] | None = None
    ) -> tuple[engine.ChatStream, Route]:
        """Open a stream on the best deployment, returned once its first content event has arrived (a
        failure before that is retried or failed over unseen). ``ChatStream.passthrough`` tells whether
        its raw bytes are already in the client's (OpenAI) dialect."""
        result, route = await self._serve(Ask("stream", req, raw, self._deadline(timeout)))
        return result, route

    async def embed(
        self, req: ir.EmbeddingRequest, *, timeout: float | None = None
    ) -> tuple[ir.EmbeddingResponse, Route]:
        """Serve an embedding request (IR in, IR out), as :meth:`chat` does a chat request."""
        result, route = await self._serve(Ask("embedding", req, None, self._deadline(timeout)))
        return result, route

    def embedding(self, *args: Any, **kwargs: Any) -> Any:
        """Two callers, one name. With an ``ir.EmbeddingRequest`` (the gateway): the awaitable of
        :meth:`embed`. Otherwise LiteLLM's sync ``router.embedding(model=..., input=...)``, returning an
        ``EmbeddingResponse``.

            >>> r = router.embedding(model="embed", input=["hello"])  # doctest: +SKIP
        """
        first = args[0] if args else kwargs.get("req")
        if isinstance(first, ir.EmbeddingRequest):
            return self.embed(first, timeout=kwargs.get("timeout"))
        from llmswitch._sync import run

        return run(self.aembedding(*args, **kwargs))

    def _deadline(self, timeout: float | None) -> engine.Deadline:
        if timeout is None:
            timeout = self.timeout if self.timeout is not None else self.settings.default_timeout
        return engine.Deadline(timeout, self.clock)

    # ---------------------------------------------------------------- the decision loop

    async def _serve(self, ask: Ask) -> tuple[Any, Route]:
        group = self.aliases.get(ask.model, ask.model)
        if self._auto and group in self._auto:
            result, route = await self._auto[group].serve(self, ask)
            return result, route
        targets = self._require(group)
        try:
            return await self._serve_group(group, targets, ask)
        except APIError as exc:
            chain = self.fallbacks.chain(group, reason_of(exc)) if self.fallbacks else ()
            if not chain or (classify(exc) == "fail" and reason_of(exc) == "error"):
                raise
            last = exc
        for fallback in chain:
            if ask.deadline.expired():
                break
            fb_targets = self._targets(fallback)
            if not fb_targets:
                continue  # a fallback naming no group: `llmswitch config check` reports it
            if self._too_late(fb_targets, ask, 0.0):
                raise self._out_of_time(fallback, last, ask) from last
            try:
                return await self._serve_group(fallback, fb_targets, ask)
            except APIError as exc:
                last = exc
                if classify(exc) == "fail" and reason_of(exc) == "error":
                    raise  # the request itself is wrong here too
        raise last

    def _fitting(self, group: str, targets: list[Target], ask: Ask) -> list[Target]:
        """Deployments whose context window the prompt fits (estimated); all of them when none would."""
        if targets[0].group not in self._sized:
            return targets
        need = ask.prompt_tokens()
        fits = [t for t in targets if t.max_input_tokens is None or t.max_input_tokens >= need]
        if len(fits) == len(targets):
            return targets
        if fits:
            return fits
        if self.fallbacks.has(group, "context"):
            raise ContextWindowExceededError(
                f"the prompt (about {need} tokens) exceeds the context window of every deployment of {group!r}",
                status_code=400,
                provider="llmswitch",
                error_type="invalid_request_error",
                code="context_length_exceeded",
            )
        return targets  # the estimate is rough: let the provider judge

    def _usable(self, t: Target) -> bool:
        if t.solo:
            return True
        return t.breaker.available() and t.rest_until <= self.clock() and not self._capped(t)

    def _choose(self, targets: list[Target], ask: Ask, skip: set[str] | None) -> Target | None:
        """The strategy's pick among the usable deployments of the lowest tier that has any."""
        if len(targets) == 1:
            t = targets[0]
            return t if (not skip or t.id not in skip) and self._usable(t) else None
        pool: list[Target] = []
        tier = None
        for t in targets:  # sorted by tier
            if tier is not None and t.tier != tier:
                break
            if (skip and t.id in skip) or not self._usable(t):
                continue
            tier = t.tier
            pool.append(t)
        if not pool:
            return None
        return pool[0] if len(pool) == 1 else self.strategy.pick(pool, ask.stream)

    async def _serve_group(self, group: str, all_targets: list[Target], ask: Ask) -> tuple[Any, Route]:
        targets = self._fitting(group, all_targets, ask)
        tried: set[str] = set()
        hard: set[str] = set()  # deployments this request must not go back to (their key, their model)
        retries: dict[str, int] = {}
        last: APIError | None = None
        current: Target | None = None
        while True:
            if ask.deadline.expired():
                raise last or _timed_out(group)
            t = current or self._choose(targets, ask, tried)
            current = None
            if t is None and may_retry(self.policy, last, retries, ask.num_retries):
                # nothing fresh to fail over to: retry a deployment after a backoff, or once its rest ends
                t, wait = self._soonest(
                    targets, hard, retry_wait(self.policy, last, retries, self.settings.retry_after)
                )
                if t is not None:
                    if not ask.deadline.allows(wait):
                        raise last or self._unavailable(group, targets)
                    if last is not None and self._too_late((t,), ask, wait):
                        raise self._out_of_time(group, last, ask) from last
                    count_retry(self.policy, last, retries)
                    if wait > 0:
                        await self.sleep(wait)
            if t is None:
                raise last or self._unavailable(group, targets)
            if last is not None and self._too_late((t,), ask, 0.0):
                raise self._out_of_time(group, last, ask) from last
            try:
                result = await self._outcomes.attempt(t, ask)
            except APIError as exc:
                last = exc
                move = self._outcomes.failed(t, ask, exc)
                if move == "fail":
                    raise
                if move == "retry" and may_retry(self.policy, exc, retries, ask.num_retries) and self._usable(t):
                    wait = retry_wait(self.policy, exc, retries, self.settings.retry_after)
                    if not ask.deadline.allows(wait):
                        raise
                    if self._too_late((t,), ask, wait):
                        raise self._out_of_time(group, exc, ask) from exc
                    count_retry(self.policy, exc, retries)
                    await self.sleep(wait)
                    current = t
                    continue
                tried.add(t.id)
                if move == "exclude":
                    hard.add(t.id)
                continue
            return result, Route(t, group, ask.attempts, ask.model, ask.dropped)

    # ---------------------------------------------------------------- time budget

    def _too_late(self, targets: Iterable[Target], ask: Ask, wait: float) -> bool:
        """Whether, after ``wait``, too little of the deadline is left for an attempt to be worth sending:
        less than the deployment's median latency of late (time to first token for a stream) once it has answered,
        else less than ``min_attempt_time``. An attempt started with milliseconds left only times out,
        and the upstream may bill it all the same."""
        left = ask.deadline.remaining()
        if left is None:
            return False
        left -= wait
        floor = self.settings.min_attempt_time
        for t in targets:
            usual = t.usual_latency(first_token=ask.stream)
            if left >= (floor if usual is None else usual):
                return False
        return True

    def _out_of_time(self, group: str, last: APIError | None, ask: Ask) -> APITimeoutError:
        left = ask.deadline.remaining() or 0.0
        why = f"; the last attempt failed with {type(last).__name__}: {last}" if last is not None else ""
        return APITimeoutError(
            f"the request for {group!r} ran out of time: {left:.3f} s left, too little for another attempt{why}",
            provider=last.provider if last is not None else "llmswitch",
            model=last.model if last is not None else None,
        )

    def _soonest(self, targets: list[Target], hard: set[str], backoff: float) -> tuple[Target | None, float]:
        """The deployment that can take a retry soonest and the wait before it: the backoff, or its rest
        after a 429 if longer. Open breakers and rests longer than the wait cap are not waited for."""
        now = self.clock()
        best: Target | None = None
        best_wait = 0.0
        for t in targets:
            if t.id in hard or (not t.solo and (not t.breaker.available() or self._capped(t))):
                continue
            rest = max(t.rest_until - now, 0.0)
            if rest > self.settings.max_retry_after:
                continue
            wait = max(backoff, rest)
            if best is None or wait < best_wait:
                best, best_wait = t, wait
        return best, best_wait

    def _capped(self, t: Target) -> bool:
        if not (t.rpm or t.tpm):
            return False
        requests, tokens = self.usage.used(t.id)
        return bool((t.rpm and requests >= t.rpm) or (t.tpm and tokens >= t.tpm))

    def _unavailable(self, group: str, targets: list[Target]) -> APIError:
        """Nothing could even be tried: every deployment is cooling down, resting or over its caps."""
        now = self.clock()
        capped = [self.usage.frees_in(t.id) for t in targets if self._capped(t) and t.breaker.available()]
        resting = [t.rest_until - now for t in targets if t.rest_until > now]
        if capped or resting:
            wait = min(capped + resting)
            return RateLimitError(
                f"every deployment of {group!r} is rate limited; retry in {wait:.1f} s",
                status_code=429,
                provider="llmswitch",
                retry_after=wait,
                error_type="rate_limit_error",
            )
        wait = min((t.breaker.reopens_in() for t in targets), default=0.0)
        return ServiceUnavailableError(
            f"every deployment of {group!r} is cooling down after failures; retry in {wait:.1f} s",
            status_code=503,
            provider="llmswitch",
            retry_after=wait,
            error_type="service_unavailable",
        )

    # ---------------------------------------------------------------- background health checks

    async def start_health_checks(self, interval: float | None = None) -> None:
        """Probe every deployment every ``interval`` seconds in the background (off unless called)."""
        from llmswitch.router.probes import HealthChecks

        interval = interval or self.settings.health_check_interval
        if interval and self._probes is None:
            self._probes = HealthChecks(self, interval)
            self._probes.start()

    async def stop_health_checks(self) -> None:
        if self._probes is not None:
            await self._probes.stop()
            self._probes = None


def _timed_out(group: str) -> APITimeoutError:
    return APITimeoutError(f"the request for {group!r} ran out of time before it could be answered")
