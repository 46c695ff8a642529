"""Limits shared by every gateway process through Redis: one atomic Lua script call per operation.

    limiter = RedisLimiter("redis://127.0.0.1:6379/0")
    result = await limiter.admit([key_limits, user_limits, team_limits], tokens=1500, cost=0.02)

A request's rpm, tpm, parallel slots and budgets, for all its subjects at once, take one script call
(``admit``), and so does giving them back (``settle``, which the gateway runs after the answer, off
the response path). For a plain ``redis://`` URL the calls go through
:class:`~llmswitch.limits.redis_pipe.ScriptPipe`: pipelined on one lean connection per process,
written as they are made. TLS (``rediss://``), sockets, and a ``client`` given by the caller go
through redis-py.

Every call is bounded by ``deadline_s`` (250 ms), connecting included (redis-py's sockets also time out
after ``timeout_s``, 100 ms; the lean connection is made once for every call waiting on it, during a
burst perhaps, so it gets the whole deadline); then it raises :class:`LimiterUnavailableError`, which the fallback of
``open_limiter`` turns into local limits. This class alone never falls back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from llmswitch.cache.backends.resp import RespError, encode_command, lean_url
from llmswitch.errors import ConfigError
from llmswitch.limits.admission import OK, WIDTH, AdmitRequest, Unseeded, decide
from llmswitch.limits.base import DEFAULT_LEASE_TTL_S, Limiter, SeedMode, SpendLoader
from llmswitch.limits.errors import LimiterError, LimiterUnavailableError
from llmswitch.limits.gcra import PERIOD_US
from llmswitch.limits.money import usd
from llmswitch.limits.periods import NEVER
from llmswitch.limits.redis_pipe import LuaScript, ScriptPipe
from llmswitch.limits.redis_scripts import ADMIT, RENEW, SEED, SETTLE, budget_keys, subject_keys
from llmswitch.limits.results import BudgetState, Refusal, Reservation
from llmswitch.store.urls import mask_url

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "llmswitch:limits"
# a server that cannot serve writes right now is as good as unreachable for the limiter
_OUTAGE_REPLIES = (
    "READONLY",
    "MISCONF",
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "NOREPLICAS",
    "OOM",
)
_NOTHING = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0]


class RedisLimiter(Limiter):
    """Limits in Redis at ``url`` (``redis://[:password@]host:port/db``, ``rediss://`` for TLS).

    ``prefix`` namespaces the keys (tests and tenants sharing a server use distinct ones). Give
    ``client`` to share a connection pool; it is then not closed by :meth:`aclose`.
    """

    name = "redis"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = 0.1,
        deadline_s: float = 0.25,
        clock: Callable[[], float] = time.time,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
        spend_loader: SpendLoader | None = None,
        client: Redis | None = None,
    ) -> None:
        super().__init__(clock=clock, lease_ttl_s=lease_ttl_s, spend_loader=spend_loader)
        if not (0 < timeout_s <= deadline_s):
            raise ConfigError(f"need 0 < timeout_s <= deadline_s, got {timeout_s!r} and {deadline_s!r}")
        self.url = mask_url(url)
        self.prefix = prefix
        self._deadline_s = deadline_s
        self._owns_client = client is None
        self._pipe: ScriptPipe | None = None
        self._client: Redis | None = None
        self._admit_script, self._settle_script = LuaScript(ADMIT), LuaScript(SETTLE)
        self._seed_script, self._renew_script = LuaScript(SEED), LuaScript(RENEW)
        self._registered: dict[str, Any] = {}
        if client is None and lean_url(url):
            try:
                self._pipe = ScriptPipe(url, connect_timeout=deadline_s)
            except ValueError as exc:
                raise ConfigError(f"invalid Redis URL {self.url!r}: {exc}") from exc
            return
        if client is None:
            try:
                client = Redis.from_url(
                    url,
                    socket_timeout=timeout_s,
                    socket_connect_timeout=timeout_s,
                    # one immediate retry heals a pooled connection the server closed (a restart);
                    # a timeout is not retried: the deadline is the point
                    retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                    retry_on_timeout=False,
                    health_check_interval=0,
                )
            except ValueError as exc:
                raise ConfigError(f"invalid Redis URL {self.url!r}: {exc}") from exc
        self._client = client
        for script in (self._admit_script, self._settle_script, self._seed_script, self._renew_script):
            self._registered[script.sha] = client.register_script(script.body)

    async def aclose(self) -> None:
        if self._pipe is not None:
            await self._pipe.aclose()
        elif self._owns_client and self._client is not None:
            await self._client.aclose()

    async def ping(self) -> bool:
        """Whether Redis answers within the deadline (for health checks)."""
        try:
            async with asyncio.timeout(self._deadline_s):
                if self._pipe is not None:
                    return bool(await self._pipe.call(encode_command(b"PING")) == "PONG")
                assert self._client is not None
                return bool(await self._client.ping())
        except (RedisError, RespError, OSError, TimeoutError):
            if self._pipe is not None:
                self._pipe.timed_out()
            return False

    async def _admit(self, req: AdmitRequest) -> Reservation | Refusal | Unseeded:
        limits = req.limits
        if not any(lim.has_limits for lim in limits):
            return decide(req, OK, _NOTHING * len(limits), self)
        keys: list[str] = []
        args: list[str | int] = [
            req.now_us, self._lease_ttl_us, req.lease_id, req.tokens, req.cost, PERIOD_US, "1" if req.strict else "0",
            req.count,
        ]  # fmt: skip
        rate_only = req.rate_only
        for i, lim in enumerate(limits):
            keys.extend(subject_keys(self.prefix, lim.subject))
            args.append(_int(lim.rpm_limit))
            args.append(_int(lim.tpm_limit))
            args.append("" if rate_only else _int(lim.max_parallel_requests))
            args.append("" if rate_only or lim.max_budget_nanos is None else lim.max_budget_nanos)
            args.append(req.ends[i])
        status, *values = (await self._run(self._admit_script, keys, args)).split()
        raw = [float(value) for value in values]
        if len(raw) != WIDTH * len(limits):
            raise LimiterUnavailableError(f"Redis at {self.url} answered {len(raw)} values to admit", url=self.url)
        return decide(req, status.decode(), raw, self)

    async def _settle(self, res: Reservation, cost: int, tokens: int | None, now_us: int) -> None:
        await self._settle_at(res, cost, tokens, "", "", now_us)

    async def _replay_settle(
        self, res: Reservation, cost: int, tokens: int | None, settled_us: int, now_us: int
    ) -> None:
        # admitted here: its reservation lives in this Redis until at least a lease TTL after admission,
        # so one already gone before then was settled (a settlement written before an outage and
        # answered into it): the script then leaves it alone rather than charging it twice
        held = res._request.now_us + self._lease_ttl_us if res._origin is self else ""
        await self._settle_at(res, cost, tokens, settled_us, held, now_us)

    async def _settle_at(
        self, res: Reservation, cost: int, tokens: int | None, settled: int | str, held: int | str, now_us: int
    ) -> None:
        sent = self._send_settle(res, cost, tokens, settled, held, now_us)
        if sent is not None:
            await sent

    def _send_settle(
        self, res: Reservation, cost: int, tokens: int | None, settled: int | str, held: int | str, now_us: int
    ) -> Awaitable[Any] | None:
        """The settlement's script call, written now on the lean connection (redis-py: when awaited); its
        answer to await. ``None`` when it has nothing to give back nor charge."""
        req = res._request
        keys: list[str] = []
        args: list[str | int] = [now_us, self._lease_ttl_us, req.lease_id, PERIOD_US, settled, held]
        work = False
        back = req.back
        for lim in req.limits:
            delta = "" if tokens is None or lim.tpm_limit is None or tokens == req.tokens else tokens - req.tokens
            slot = "1" if lim.max_parallel_requests is not None and not req.rate_only else ""
            budget = lim.max_budget is not None and not req.rate_only
            refund = back if back and lim.rpm_limit else ""
            work = work or delta != "" or slot != "" or budget or refund != ""
            keys.extend(subject_keys(self.prefix, lim.subject))
            args.append(delta)
            args.append(_int(lim.tpm_limit))
            args.append(slot)
            args.append(req.cost if budget else "")
            args.append(cost if budget else "")
            end = lim.budget_period.end_us(now_us) if budget and lim.budget_period is not None else NEVER
            args.append(end)
            args.append(refund)
            args.append(_int(lim.rpm_limit) if refund != "" else "")
        return self._send(self._settle_script, keys, args, first=True) if work else None

    def send_settle(self, res: Reservation, cost: int, tokens: int | None, now_us: int) -> Awaitable[Any] | None:
        """:meth:`_settle`, its command written before this returns (for the fallback's ``settle_soon``)."""
        return self._send_settle(res, cost, tokens, "", "", now_us)

    async def _renew(self, res: Reservation, now_us: int) -> None:
        req = res._request
        keys: list[str] = []
        args: list[str | int] = [now_us, self._lease_ttl_us, req.lease_id]
        for lim in req.limits:
            keys.extend(subject_keys(self.prefix, lim.subject))
            args.append("1" if lim.max_parallel_requests is not None else "")
            args.append(repr(req.cost) if lim.max_budget is not None else "")
        await self._run(self._renew_script, keys, args)

    async def _settle_tokens(self, subject: str, delta: int, now_us: int) -> None:
        keys = subject_keys(self.prefix, subject)
        await self._run(
            self._settle_script,
            keys,
            [now_us, self._lease_ttl_us, "", PERIOD_US, "", "", delta, "", "", "", "", 0, "", ""],
        )

    async def _seed(
        self, subject: str, mode: SeedMode, spent: int, valid: bool, end_us: int, now_us: int
    ) -> BudgetState | None:
        args: list[str | int] = [now_us, self._lease_ttl_us, mode, spent, "1" if valid else "0", end_us]
        reply = await self._run(self._seed_script, list(budget_keys(self.prefix, subject)), args)
        if not reply:
            return None
        return BudgetState(subject, None, usd(int(float(reply[0]))), usd(int(float(reply[1]))), int(float(reply[2])))

    async def _run(
        self, script: LuaScript, keys: Sequence[str], args: Sequence[str | int], *, first: bool = False
    ) -> Any:
        return await self._send(script, keys, args, first=first)

    def _send(
        self, script: LuaScript, keys: Sequence[str], args: Sequence[str | int], *, first: bool = False
    ) -> Awaitable[Any]:
        """Write the call now (lean connection) and return its answer to await; through redis-py the call
        is made when awaited."""
        pipe = self._pipe
        if pipe is None:
            return self._run_redis_py(script, keys, args)
        return self._reply(pipe, pipe.call(script.evalsha(keys, args), first=first), script, keys, args, first)

    async def _reply(
        self,
        pipe: ScriptPipe,
        sent: asyncio.Future[Any],
        script: LuaScript,
        keys: Sequence[str],
        args: Sequence[str | int],
        first: bool,
    ) -> Any:
        try:
            async with asyncio.timeout(self._deadline_s):
                try:
                    reply = await sent
                except RespError as exc:
                    if not str(exc).startswith("NOSCRIPT"):
                        raise
                    # a restarted or flushed Redis: not run, so run it with its body (which caches it)
                    reply = await pipe.call(script.eval(keys, args), first=first)
            pipe.answered()
            return reply
        except TimeoutError as exc:
            pipe.timed_out()
            raise LimiterUnavailableError(
                f"Redis at {self.url} is unreachable: no answer in time", url=self.url
            ) from exc
        except (ConnectionError, OSError) as exc:
            raise LimiterUnavailableError(
                f"Redis at {self.url} is unreachable: {_describe(exc)}", url=self.url
            ) from exc
        except RespError as exc:
            if str(exc).startswith(_OUTAGE_REPLIES):
                raise LimiterUnavailableError(f"Redis at {self.url} refused: {exc}", url=self.url) from exc
            raise LimiterError(f"Redis at {self.url} answered an error: {exc}") from exc

    async def _run_redis_py(self, script: LuaScript, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        try:
            async with asyncio.timeout(self._deadline_s):
                return await self._registered[script.sha](keys=keys, args=args)
        except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
            raise LimiterUnavailableError(
                f"Redis at {self.url} is unreachable: {_describe(exc)}", url=self.url
            ) from exc
        except ResponseError as exc:
            if isinstance(exc, ReadOnlyError) or str(exc).startswith(_OUTAGE_REPLIES):
                raise LimiterUnavailableError(f"Redis at {self.url} refused: {exc}", url=self.url) from exc
            raise


def _int(value: int | None) -> str | int:
    return "" if value is None else value


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | RedisTimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
