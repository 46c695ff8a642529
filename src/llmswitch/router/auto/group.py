"""An ``auto`` group: one request, one decision (weak or strong tier), then the router's usual call.

    decide   a per-request override (``x-llmswitch-route`` header, or ``route`` in the body / SDK call)
             wins; else the difficulty score against the group's threshold; a tier the caller may not
             use (key permissions, budget) is never chosen when the other one is allowed
    call     the chosen tier's model group, through the same router (retries, fallbacks, breakers)
    cascade  (when configured, and the weak tier was chosen by score) the weak answer is checked
             (:mod:`~llmswitch.router.auto.checks`) and the strong tier answers if a check fails;
             a stream is read only as far as the checks need before anything is relayed

The answer's :class:`AutoRoute` names the tier's group (``x-llmswitch-model-group``) and carries the
:class:`~llmswitch.router.auto.decision.Decision`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.errors import APIError, ConfigError, PermissionDeniedError
from llmswitch.router.auto import context
from llmswitch.router.auto.checks import Answer, answer_of_events, answer_of_response, run_checks
from llmswitch.router.auto.decision import Decision, Tier
from llmswitch.router.auto.replay import ReplayStream
from llmswitch.router.auto.settings import AutoSettings, load_check
from llmswitch.router.fallbacks import reason_of
from llmswitch.router.outcomes import Route
from llmswitch.router.retry import classify

if TYPE_CHECKING:
    from llmswitch.router.auto.scorer import Scorer
    from llmswitch.router.outcomes import Ask
    from llmswitch.router.router import Router

__all__ = ["AutoGroup", "AutoRoute"]

log = logging.getLogger("llmswitch.router.auto")

#: a refusal shows in the opening words: a stream checked only for refusals is held this far, no further
REFUSAL_WINDOW = 160

Counter = Callable[[str, Decision], None]


class AutoRoute(Route):
    """The tier that answered (its group is the route's group) and why it was chosen (``auto``)."""

    __slots__ = ("auto",)

    def __init__(self, route: Route, requested: str, decision: Decision) -> None:
        super().__init__(route.target, route.group, route.attempts, requested, route.dropped_params)
        self.auto = decision

    def info(self) -> dict[str, Any]:
        info = super().info()
        info["route"] = self.auto.log()
        return info


def _body_override(ask: Ask) -> str | None:
    """``route`` in the request body (the SDK's keyword, or an OpenAI client's extra field): read and
    removed, so that it never reaches a provider."""
    extra = ask.req.extra
    if not extra or "route" not in extra:
        return None
    value = extra["route"]
    ask.req.extra = {k: v for k, v in extra.items() if k != "route"} or None
    if ask.raw is not None and "route" in ask.raw:
        ask.raw = {k: v for k, v in ask.raw.items() if k != "route"}
    return str(value).strip().lower() if value is not None else None


class AutoGroup:
    """The ``auto`` group ``name``; ``scorer`` is shared by every auto group of a router."""

    def __init__(self, name: str, settings: AutoSettings, scorer: Scorer, on_decision: Counter | None = None) -> None:
        self.name = name
        self.settings = settings
        self.scorer = scorer
        self.on_decision = on_decision
        s = settings
        model = scorer.model
        if s.threshold is not None:
            self.threshold = s.threshold
        elif s.strong_share is not None:
            self.threshold = model.threshold_for_share(s.scorer, s.strong_share)
        else:
            target = s.quality_target if s.quality_target is not None else 0.95
            self.threshold = model.threshold_for_share(s.scorer, model.share_for_quality(s.scorer, target))
        self.user_check = load_check(s.cascade.check) if s.cascade is not None and s.cascade.check else None

    @property
    def tiers(self) -> tuple[str, str]:
        return self.settings.weak, self.settings.strong

    def check_tiers(self, router: Router) -> None:
        """Each tier must be a model group the router serves (not another auto group)."""
        for key, group in (("weak", self.settings.weak), ("strong", self.settings.strong)):
            if router.is_auto(group):
                raise ConfigError(f"auto group {self.name!r}: router.{key} names another auto group {group!r}")
            if not router.has(group):
                known = ", ".join(n for n in router.model_names() if not router.is_auto(n)) or "none"
                raise ConfigError(
                    f"auto group {self.name!r}: router.{key} names no model group {group!r}; known: {known}"
                )

    # ---------------------------------------------------------------- decide

    async def decide(self, ask: Ask) -> Decision:
        s = self.settings
        wanted = _body_override(ask) or context.override()
        if wanted in ("weak", "strong"):
            tier: Tier = "strong" if wanted == "strong" else "weak"
            decision = Decision(tier, self._group(tier), None, None, f"override: {wanted} asked for", "override")
        elif not s.classify:
            decision = Decision("weak", s.weak, None, None, "no classification: the weak tier answers first")
        else:
            sc = await self.scorer.score(ask.req, s.rules, s.rules_bias, s.keywords)
            tier = "strong" if sc.value >= self.threshold else "weak"
            rel = ">=" if tier == "strong" else "<"
            why = ", ".join(sc.fired[:3]) or "no rule fired"
            kind = "" if sc.kind == s.scorer else f" ({sc.kind} only)"
            reason = f"score {sc.value:.3f} {rel} {self.threshold:.3f}{kind} ({why})"
            decision = Decision(tier, self._group(tier), sc.value, self.threshold, reason)
        return self._permitted(decision)

    def _group(self, tier: Tier) -> str:
        return self.settings.strong if tier == "strong" else self.settings.weak

    def _permitted(self, d: Decision) -> Decision:
        """Never a tier the caller may not use, when the other one is allowed."""
        permits = context.permits()
        if permits is None:
            return d
        why = permits(d.group, None)
        if why is None:
            return d
        other: Tier = "weak" if d.tier == "strong" else "strong"
        if permits(self._group(other), None) is not None:
            raise PermissionDeniedError(
                f"the caller may use neither tier of {self.name!r}: {why}",
                status_code=403,
                provider="llmswitch",
                error_type="permission_error",
            )
        if other == "strong":
            log.info("auto group %s: the weak tier is not allowed (%s); the strong tier answers", self.name, why)
        d.tier, d.group = other, self._group(other)
        d.reason = f"{d.reason}; {why}, so {other}"
        return d

    def _may_escalate(self, weak_call: tuple[Route, Any] | None) -> str | None:
        """Why the strong tier may not answer after the weak call (its route and usage), or ``None``."""
        permits = context.permits()
        return None if permits is None else permits(self.settings.strong, weak_call)

    # ---------------------------------------------------------------- serve

    async def serve(self, router: Router, ask: Ask) -> tuple[Any, Route]:
        decision = await self.decide(ask)
        cascade = self.settings.cascade
        if cascade is not None and decision.tier == "weak" and decision.source != "override":
            result, route = await self._cascade(router, ask, decision)
        else:
            result, route = await self._call(router, ask, decision.group)
        if self.on_decision is not None:
            self.on_decision(self.name, decision)
        return result, AutoRoute(route, self.name, decision)

    async def _call(self, router: Router, ask: Ask, group: str) -> tuple[Any, Route]:
        ask.model = group
        try:
            result, route = await router._serve(ask)
        finally:
            ask.model = self.name
        return result, route

    def _checks(self, req: ir.Request) -> list[str]:
        """The cascade's checks that can say something about this request."""
        assert self.settings.cascade is not None
        out: list[str] = []
        for name in self.settings.cascade.checks:
            if name == "schema" and (req.response_format is None or req.response_format.type == "text"):
                continue
            if name == "tools" and not req.tools:
                continue
            if name == "logprobs" and not req.logprobs:
                continue
            out.append(name)
        return out

    async def _failed(self, req: ir.Request, answer: Answer, checks: list[str]) -> list[tuple[str, str]]:
        assert self.settings.cascade is not None
        return await run_checks(
            req, answer, checks, min_logprob=self.settings.cascade.min_logprob, user_check=self.user_check
        )

    async def _cascade(self, router: Router, ask: Ask, decision: Decision) -> tuple[Any, Route]:
        checks = self._checks(ask.req)
        if not checks:
            return await self._call(router, ask, decision.group)
        raw, ask.raw = ask.raw, None  # the weak answer is read, so it is decoded
        try:
            result, route = await self._call(router, ask, decision.group)
        except APIError as exc:
            if classify(exc) == "fail" and reason_of(exc) == "error":
                raise  # the request itself is wrong: the strong tier would refuse it too
            # the weak tier failed (after its retries and fallbacks): a failed check like any other
            return await self._escalate(
                router, ask, decision, raw, [("error", f"the weak tier failed: {exc}")], None, exc
            )
        events: list[ir.StreamEvent] = []
        rest: AsyncIterator[ir.StreamEvent] | None = None
        if ask.stream:
            try:
                events, rest, answer = await self._read_stream(result, checks)
            except APIError as exc:  # the weak stream broke before the checks could judge it
                result.close()
                failed = [("error", f"the weak stream failed: {exc}")]
                return await self._escalate(router, ask, decision, raw, failed, (route, result.usage), exc)
        else:
            answer = answer_of_response(result)
        failed = await self._failed(ask.req, answer, checks)
        if not failed:
            decision.reason += f"; passed {', '.join(checks)}"
            return (ReplayStream(result, events, rest) if ask.stream else result), route
        weak_usage = result.usage if ask.stream else getattr(result, "usage", None)
        blocked = self._may_escalate((route, weak_usage))
        if blocked is not None:
            # the weak answer stands: escalating would pass the caller's permissions or budget
            decision.reason += f"; failed {', '.join(n for n, _ in failed)} but not escalated: {blocked}"
            return (ReplayStream(result, events, rest) if ask.stream else result), route
        if ask.stream:
            result.close()
        return await self._escalate(router, ask, decision, raw, failed, (route, weak_usage), None)

    async def _escalate(
        self,
        router: Router,
        ask: Ask,
        decision: Decision,
        raw: dict[str, Any] | None,
        failed: list[tuple[str, str]],
        weak_call: tuple[Route, Any] | None,
        error: APIError | None,
    ) -> tuple[Any, Route]:
        """The strong tier answers instead (unless the caller may not use it: then ``error``, if any)."""
        if error is not None and self._may_escalate(weak_call) is not None:
            raise error
        decision.tier, decision.group, decision.source = "strong", self.settings.strong, "cascade"
        decision.failed_checks = tuple(n for n, _ in failed)
        decision.reason += f"; escalated: {'; '.join(why for _, why in failed)}"
        decision.weak_call = weak_call
        ask.raw = raw
        return await self._call(router, ask, self.settings.strong)

    async def _read_stream(
        self, stream: Any, checks: list[str]
    ) -> tuple[list[ir.StreamEvent], AsyncIterator[ir.StreamEvent] | None, Answer]:
        """Read the weak stream as far as ``checks`` need: its opening words for a refusal alone, else to
        its end. Returns the events read, the rest (``None``: read to the end) and the answer so far."""
        events: list[ir.StreamEvent] = []
        gen = stream.events()
        opening_only = checks == ["refusal"]
        chars = 0
        async for ev in gen:
            events.append(ev)
            if ev.text:
                chars += len(ev.text)
            if opening_only and ev.finish_reason is None and (chars >= REFUSAL_WINDOW or ev.tool_calls):
                return events, gen, answer_of_events(events)
        return events, None, answer_of_events(events)
