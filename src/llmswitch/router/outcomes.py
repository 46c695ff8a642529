"""One attempt on one deployment, and what its outcome teaches the router.

:class:`Outcomes` sends an attempt (its timeout cut to the request's deadline), keeps the deployment's
live state (in flight, latency averages, rpm/tpm counts, breaker, rest after a 429, last error) and
turns a failure into the router's next move: ``"retry"`` the same deployment, ``"failover"`` to
another, ``"exclude"`` it for the rest of the request (its key or model is wrong there), or ``"fail"``.
:class:`Ask` is one request in flight through the router; :class:`Route` says what served it.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from llmswitch import engine, ir
from llmswitch.cache import prompt as prompt_cache
from llmswitch.errors import (
    APIError,
    APITimeoutError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnsupportedParamsError,
)
from llmswitch.providers import params
from llmswitch.providers.base import HTTPCall
from llmswitch.router.attempts import Attempt, AttemptHook, outcome_of, tell
from llmswitch.router.deployments import Target
from llmswitch.router.retry import classify, error_class, retry_after_of
from llmswitch.router.strategies import MostHeadroom

if TYPE_CHECKING:
    from llmswitch.router.router import Router

Move = Literal["retry", "failover", "exclude", "fail"]
Kind = Literal["chat", "stream", "embedding"]

# a timeout the caller's own deadline cut short says little about the deployment, unless the attempt
# still had at least this long (and several times its usual latency)
BLAME_FLOOR = 10.0


def estimate_tokens(req: ir.Request | ir.EmbeddingRequest) -> int:
    """A cheap prompt size estimate: about four characters per token.

    >>> estimate_tokens(ir.EmbeddingRequest(model="m", input=["x" * 400]))
    100
    """
    if isinstance(req, ir.EmbeddingRequest):
        return math.ceil(sum(len(s) for s in req.input) / 4)
    chars = 0
    for m in req.messages:
        for p in m.content:
            if isinstance(p, ir.TextPart | ir.ReasoningPart | ir.ToolResultPart):
                chars += len(p.text)
            elif isinstance(p, ir.ToolCallPart):
                chars += len(p.name) + len(p.arguments)
    return math.ceil(chars / 4)


class Ask:
    """One request on its way through the router."""

    __slots__ = (
        "_call",
        "_tokens",
        "attempt_timeout",
        "attempts",
        "deadline",
        "dropped",
        "generation",
        "kind",
        "model",
        "num_retries",
        "probe",
        "raw",
        "req",
        "stream",
        "timeout_cut",
    )

    def __init__(
        self,
        kind: Kind,
        req: Any,
        raw: dict[str, Any] | None,
        deadline: engine.Deadline,
        num_retries: int | None = None,
    ) -> None:
        self.kind = kind
        self.req = req
        self.raw = raw
        self.deadline = deadline
        self.model: str = req.model
        self.stream = kind == "stream"
        self.num_retries = num_retries
        self.attempts = 0
        self.probe = False  # a background health check, not a client's request
        # the breaker generation the current attempt went out under (see Breaker.acquire)
        self.generation = 0
        self.attempt_timeout: float | None = None
        self.timeout_cut = False
        self._tokens: int | None = None
        self._call: tuple[str, HTTPCall, bool] | None = None
        # the caller's names of the parameters dropped for the deployment that served (drop_params)
        self.dropped: tuple[str, ...] = ()

    def prompt_tokens(self) -> int:
        if self._tokens is None:
            self._tokens = estimate_tokens(self.req)
        return self._tokens


class Route:
    """What served a request: the deployment (``target``), its group, and how many calls it took.

    ``id`` and ``model`` are the deployment's, so a ``Route`` reads like the deployment it names.
    """

    __slots__ = ("attempts", "dropped_params", "group", "requested", "target")

    def __init__(
        self, target: Target, group: str, attempts: int, requested: str, dropped_params: tuple[str, ...] = ()
    ) -> None:
        self.target = target
        self.group = group
        self.attempts = attempts
        self.requested = requested
        self.dropped_params = dropped_params

    @property
    def id(self) -> str:
        return self.target.id

    @property
    def model(self) -> str:
        return self.target.model

    @property
    def provider(self) -> str:
        return self.target.provider.name

    def info(self) -> dict[str, Any]:
        """As the SDK Router's results carry it (``r.llmswitch``)."""
        info: dict[str, Any] = {
            "deployment": self.id,
            "model_group": self.group,
            "model": self.model,
            "provider": self.provider,
            "attempts": self.attempts,
        }
        if self.dropped_params:
            info["dropped_params"] = list(self.dropped_params)
        return info

    def __repr__(self) -> str:
        return f"<Route {self.id} group={self.group} attempts={self.attempts}>"


class _UsageOnly(msgspec.Struct):
    usage: dict[str, Any] | None = None


_usage_decoder = msgspec.json.Decoder(_UsageOnly)


def _body_tokens(body: bytes) -> int | None:
    try:
        u = _usage_decoder.decode(body).usage
    except msgspec.DecodeError:
        return None
    total = u.get("total_tokens") if u else None
    return total if isinstance(total, int) else None


def usage_of(result: Any) -> ir.Usage | None:
    """An answer's usage: the IR's, or read from the relayed OpenAI body."""
    if not isinstance(result, bytes):
        usage = getattr(result, "usage", None)
        return usage if isinstance(usage, ir.Usage) else None
    try:
        u = _usage_decoder.decode(result).usage
    except msgspec.DecodeError:
        return None
    if not u:
        return None
    prompt, completion = u.get("prompt_tokens"), u.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return ir.Usage(input_tokens=prompt, output_tokens=completion)


def _with_params(body: dict[str, Any], t: Target) -> dict[str, Any]:
    """The deployment's own parameters under the client's (the client's win); prompt-cache settings are the
    gateway's (an OpenAI upstream caches prefixes by itself)."""
    if not t.params:
        return body
    own = t.params if prompt_cache.SETTINGS.isdisjoint(t.params) else prompt_cache.without_settings(t.params)
    return {**own, **body}


def _request_for(req: ir.Request, t: Target, ask: Ask, drop: bool) -> ir.Request:
    # what the deployment cannot take is mapped, dropped or refused before anything is sent
    req, ask.dropped = params.apply(
        req,
        t.provider.policy or t.provider.name,
        model=t.model,
        deployment=t.group,
        drop=drop or t.drop_params,
        additional=t.additional_drop_params,
        dialect=t.provider.dialect,
    )
    if not t.params:
        return req
    extra = dict(t.params)
    if not prompt_cache.SETTINGS.isdisjoint(extra):
        # cache breakpoints, for the providers that take them (see llmswitch.cache.prompt)
        req = prompt_cache.apply_prompt_cache(req, extra, t.provider.dialect, t.model)
        extra = prompt_cache.without_settings(extra)
        if not extra:
            return req
    extra.update(req.extra or {})
    return msgspec.structs.replace(req, extra=extra)


class Outcomes:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.count_tokens = isinstance(router.strategy, MostHeadroom)

    # ------------------------------------------------------------ sending

    def _timeout(self, t: Target, ask: Ask) -> None:
        rem = ask.deadline.remaining()
        own = t.timeout
        if ask.stream:
            own = t.stream_timeout or self.router.settings.stream_timeout or own
        if own is not None and (rem is None or own <= rem):
            ask.attempt_timeout, ask.timeout_cut = own, False
        else:
            ask.attempt_timeout, ask.timeout_cut = rem, rem is not None

    def _call(self, t: Target, ask: Ask) -> tuple[HTTPCall, bool]:
        """The call to send to ``t``, and whether it relays the client's body (the fast path)."""
        # a retry on the same deployment sends the same bytes: encode once (and decide the path once)
        cached = ask._call
        if cached is not None and cached[0] == t.id:
            return cached[1], cached[2]
        assert t.endpoint is not None
        relayed = False
        if ask.kind == "embedding":
            call = t.provider.embedding_call(ask.req, model=t.model, endpoint=t.endpoint)
        elif self._relayed(t, ask):
            relayed = True
            assert ask.raw is not None
            ask.dropped = ()
            call = t.provider.passthrough_call(_with_params(ask.raw, t), model=t.model, endpoint=t.endpoint)
        else:
            req = _request_for(ask.req, t, ask, self.router.settings.drop_params)
            call = t.provider.chat_call(req, model=t.model, endpoint=t.endpoint)
        if t.endpoint.network is not None or t.endpoint.auth is not None:
            call = call._replace(network=t.endpoint.network, auth=t.endpoint.auth)
        ask._call = (t.id, call, relayed)
        return call, relayed

    @staticmethod
    def _relayed(t: Target, ask: Ask) -> bool:
        """The fast path: the client's OpenAI body as it is, unless it has a key the policy must see."""
        return ask.raw is not None and t.provider.passthrough and t.passthrough_blockers.isdisjoint(ask.raw)

    async def attempt(self, t: Target, ask: Ask) -> Any:
        if t.endpoint_error is not None:
            raise t.endpoint_error
        self._timeout(t, ask)
        call, relayed = self._call(t, ask)
        timeout = ask.attempt_timeout
        ask.attempts += 1
        t.in_flight += 1
        ask.generation = generation = t.breaker.acquire()
        reserved = ask.prompt_tokens() if self.count_tokens or t.tpm else 0
        self.router.usage.add(t.id, requests=1, tokens=reserved)
        started = time.perf_counter()
        result: Any
        try:
            if ask.kind == "chat":
                if relayed:
                    result = await engine.send_raw(t.provider, call, model=t.model, timeout=timeout)
                else:
                    result = await engine.send_chat(t.provider, call, model=t.model, timeout=timeout)
            elif ask.kind == "stream":
                result = await engine.send_stream(t.provider, call, model=t.model, timeout=timeout, passthrough=relayed)
            else:
                result = await engine.send_embedding(t.provider, call, model=t.model, timeout=timeout)
        except BaseException as exc:
            t.in_flight -= 1
            if not isinstance(exc, APIError):
                # cancelled (the client left) or our own bug: no verdict on the deployment
                t.breaker.release(generation)
            if self.router.on_attempt is not None:
                self._tell(t, ask, time.perf_counter() - started, exc, None)
            if isinstance(exc, APITimeoutError) and self.router.on_timeout is not None and not ask.probe:
                self._tell(t, ask, time.perf_counter() - started, exc, None, self.router.on_timeout)
            raise
        elapsed = time.perf_counter() - started
        t.successes += 1
        t.breaker.success(generation)
        if ask.kind == "stream":
            t.note_latency(elapsed, first_token=True)
            result.context = (t, reserved, generation, ask, started)
            result.on_end = self._stream_ended
        else:
            t.in_flight -= 1
            t.note_latency(elapsed, first_token=False)
            if reserved or t.tpm:
                self._settle(t, reserved, result)
            if self.router.on_attempt is not None:
                self._tell(t, ask, elapsed, None, None, answer=result)
        return result

    def _tell(
        self,
        t: Target,
        ask: Ask,
        elapsed: float,
        exc: BaseException | None,
        usage: ir.Usage | None,
        hook: AttemptHook | None = None,
        answer: Any = None,
    ) -> None:
        """The attempt's one record, to the router's ``on_attempt`` hook (or ``hook``); ``answer``: an
        answer whose usage the record reads only when asked."""
        if hook is None:
            hook = self.router.on_attempt
        assert hook is not None
        outcome, error, status = outcome_of(exc)
        record = Attempt(
            deployment=t.id,
            group=t.group,
            provider=t.provider.name,
            model=t.model,
            number=ask.attempts,
            outcome=outcome,
            elapsed=elapsed,
            error=error,
            status=status,
            usage=usage,
            probe=ask.probe,
            answer=answer,
        )
        tell(hook, record)

    def _settle(self, t: Target, reserved: int, result: Any) -> None:
        """Replace the estimated tokens counted at send time by the real count, when known."""
        if isinstance(result, bytes):
            total = _body_tokens(result)
        else:
            usage = getattr(result, "usage", None)
            total = usage.total_tokens if usage is not None else None
        if total is not None:
            self.router.usage.add(t.id, tokens=total - reserved)

    def _stream_ended(self, s: engine.ChatStream, error: APIError | None) -> None:
        t, reserved, generation, ask, started = s.context
        t.in_flight -= 1
        if self.router.on_attempt is not None:
            self._tell(t, ask, time.perf_counter() - started, error, s.usage)
        if s.usage is not None and (reserved or t.tpm):
            self.router.usage.add(t.id, tokens=s.usage.total_tokens - reserved)
        if error is not None and classify(error) != "fail":
            self._blame(t, error)
            t.breaker.failure(self._allowed_fails(error), generation)

    # ------------------------------------------------------------ judging a failure

    def _blame(self, t: Target, exc: APIError) -> None:
        t.failures += 1
        t.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
        t.last_error_at = self.router.clock()

    def _allowed_fails(self, exc: APIError) -> int | None:
        policy = self.router.settings.allowed_fails_policy
        return policy.get(f"{error_class(exc)}AllowedFails") if policy else None

    def failed(self, t: Target, ask: Ask, exc: APIError) -> Move:
        router = self.router
        if isinstance(exc, UnsupportedParamsError):
            return "fail"  # refused before anything was sent: no verdict on the deployment
        action = classify(exc)
        gen = ask.generation
        if action == "fail":
            # the deployment answered, correctly, that the request is wrong: it is healthy
            t.breaker.success(gen)
            return "retry" if router.policy.explicit(exc) else "fail"
        now = router.clock()
        settings = router.settings
        wait = retry_after_of(exc)
        # the provider's own word on when to come back is honoured (capped), cooldowns or not
        rest = 0.0 if wait is None else min(wait, settings.max_retry_after)
        if isinstance(exc, RateLimitError):
            t.last_error, t.last_error_at = f"{type(exc).__name__}: {str(exc)[:200]}", now
            allowed = self._allowed_fails(exc)
            if allowed is not None:
                # RateLimitErrorAllowedFails: 429s count like other failures, the breaker opens past them
                t.breaker.failure(allowed, gen)
            else:
                # as LiteLLM does: a rate-limited deployment cools down at once, for cooldown_time or the
                # provider's wait when that is longer (a full quota is not sickness: the breaker is untouched);
                # a group's only deployment is not cooled down, as in LiteLLM
                if not (settings.disable_cooldowns or t.solo):
                    rest = max(rest, settings.cooldown_time)
                t.breaker.release(gen)
            if rest > 0:
                t.rest_until = max(t.rest_until, now + rest)
            return "failover"
        if rest > 0:
            t.rest_until = max(t.rest_until, now + rest)
        self._blame(t, exc)
        if isinstance(exc, AuthenticationError | PermissionDeniedError | NotFoundError):
            allowed = self._allowed_fails(exc) if not isinstance(exc, NotFoundError) else None
            if allowed is not None:
                t.breaker.failure(allowed, gen)  # AuthenticationErrorAllowedFails: counted, as in LiteLLM
            else:
                t.breaker.trip(gen)  # its key or model is wrong: nothing will pass until a probe says otherwise
            return "exclude"
        if isinstance(exc, APITimeoutError) and not self._timeout_blames(t, ask):
            t.breaker.release(gen)
        else:
            t.breaker.failure(self._allowed_fails(exc), gen)
        return action

    def _timeout_blames(self, t: Target, ask: Ask) -> bool:
        if not ask.timeout_cut:
            return True  # the deployment's own timeout passed
        usual = (t.ttft if ask.stream else t.latency) or 0.0
        return ask.attempt_timeout is not None and ask.attempt_timeout >= max(BLAME_FLOOR, 3 * usual)
