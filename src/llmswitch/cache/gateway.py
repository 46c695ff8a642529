"""The cache as the gateway (and the SDK) uses it: which requests are cached, under which key, lookups
exact then semantic, and stores made off the response path.

    >>> cache = ResponseCache(CacheSettings())                    # doctest: +SKIP
    >>> plan = cache.plan(req, principal, read_controls(None, None))
    >>> answer = await cache.lookup(plan)                         # None: a miss
    >>> cache.store(plan, response, route)                        # in the background

A request is cached when the config caches chat calls, its temperature is at most ``max_temperature``
(unset counts as cacheable), and (``mode: default_off``) it opted in. Its entries belong to its tenant:
its team, else its key (see :func:`llmswitch.cache.keys.partition_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from llmswitch import ir
from llmswitch.cache.controls import Controls, read_controls
from llmswitch.cache.exact import ExactCache
from llmswitch.cache.keys import entry_key, partition_of, semantic_parts
from llmswitch.cache.preflight import SEMANTIC_MODULE
from llmswitch.cache.replay import FINISHED, Answer, finished_openai, gather, new_answer
from llmswitch.cache.settings import CacheSettings

log = logging.getLogger("llmswitch.cache")

Embed = Callable[[list[str]], Awaitable[list[list[float]]]]

SEMANTIC_TIMEOUT_S = 0.5


@dataclass(slots=True)
class Plan:
    """What the cache does for one request."""

    key: str
    group: str
    read: bool
    write: bool
    ttl: float
    max_age: float | None
    partition: str
    namespace: str


class ResponseCache:
    """Exact entries in a backend, with the optional semantic index in front of them."""

    def __init__(self, settings: CacheSettings, *, exact: ExactCache | None = None, embed: Embed | None = None) -> None:
        self.settings = settings
        self.exact = exact if exact is not None else ExactCache(settings)
        self.semantic: Any = None
        self._embed = embed
        self._pending: set[asyncio.Task[None]] = set()
        self.stores_failed = 0

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self.settings.semantic and self.semantic is None:
            from llmswitch.errors import ConfigError

            try:
                self.semantic = load_semantic(self.settings, self._embed)
            except ConfigError as exc:
                # `llmswitch serve` and `config check` refuse this config; an app started otherwise (uvicorn,
                # tests) serves with the exact cache alone rather than not at all, and says so
                log.error("%s; serving with the exact cache only", exc)

    async def stop(self, timeout_s: float = 2.0) -> None:
        if self._pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await asyncio.gather(*self._pending, return_exceptions=True)
        if self.semantic is not None:
            with contextlib.suppress(Exception):
                await self.semantic.aclose()
        with contextlib.suppress(Exception):
            await self.exact.aclose()

    @property
    def pending_stores(self) -> int:
        """Stores started and not finished yet."""
        return len(self._pending)

    async def drain(self) -> None:
        """Wait for the stores started so far (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # ---------------------------------------------------------------- per request

    @staticmethod
    def controls(body_cache: Any, cache_control: str | None) -> Controls:
        return read_controls(body_cache, cache_control)

    def plan(self, req: ir.Request, principal: Any, controls: Controls) -> Plan | None:
        """The request's key and what may be read and written; ``None`` when it is not cached at all."""
        s = self.settings
        if not s.caches_chat:
            return None
        if s.mode == "default_off" and controls.use_cache is not True:
            return None
        if controls.use_cache is False:
            return None
        t = req.temperature
        if t is not None and t > s.max_temperature:
            return None
        read, write = not controls.no_cache, not controls.no_store
        if not read and not write:
            return None
        namespace = controls.namespace or ""
        partition = partition_of(principal, controls.namespace, s.shared_namespaces)
        return Plan(
            key=entry_key(partition, namespace, req.model, req),
            group=req.model,
            read=read,
            write=write,
            ttl=controls.ttl if controls.ttl is not None else s.ttl,
            max_age=controls.max_age,
            partition=partition,
            namespace=namespace,
        )

    async def lookup(self, plan: Plan, req: ir.Request, *, as_ir: bool = True) -> Answer | None:
        """The stored answer for ``plan``: its exact entry, else (semantic types) a safe paraphrase's. With
        ``as_ir`` its IR is ready (``answer.response``); without, an OpenAI body it holds may stay bytes."""
        answer = await self.exact.get(plan.key)
        if answer is None and self.semantic is not None:
            answer = await self._semantic_lookup(plan, req)
        if answer is None:
            return None
        if plan.max_age is not None and time.time() - answer.created > plan.max_age:
            return None
        if (as_ir or not answer.relayed) and answer.resolve() is None:
            return None
        return answer

    async def _semantic_lookup(self, plan: Plan, req: ir.Request) -> Answer | None:
        parts = semantic_parts(plan.partition, plan.namespace, plan.group, req)
        if parts is None:
            return None
        try:
            async with asyncio.timeout(SEMANTIC_TIMEOUT_S):
                found = await self.semantic.lookup(*parts)
        except Exception as exc:  # the index never fails a request
            log.warning("semantic cache lookup failed: %s", exc)
            return None
        if not isinstance(found, str) or found == plan.key:
            return None
        return await self.exact.get(found)

    def store(self, plan: Plan, response: ir.Response | bytes, route: Any, req: ir.Request) -> None:
        """Store a whole answer (IR, or an OpenAI body relayed as bytes): at once in memory, else in the
        background. An answer cut, filtered or failed is not stored."""
        if self.exact.backend.local and self.semantic is None:
            answer = self._answer(plan, lambda: response, route)
            if answer is not None:
                self.exact.put_nowait(plan.key, answer, plan.ttl)
            return
        self._later(self._store(plan, lambda: response, route, req))

    def store_stream(
        self,
        plan: Plan,
        meta: ir.StreamMeta | None,
        tap: list[Any],
        usage: ir.Usage | None,
        route: Any,
        req: ir.Request,
    ) -> None:
        """Store a finished stream (its IR events, or the OpenAI bytes relayed) in the background."""
        self._later(self._store(plan, lambda: _gathered(meta, tap, usage), route, req))

    def stream_finished(self, plan: Plan, req: ir.Request, state: dict[str, Any], disconnected: bool) -> None:
        """A stream's last byte went out: store the answer the request's tap gathered, unless the stream
        ended in an error or its client left (``state`` is the gateway's request state)."""
        tap = state.get("cache_tap")
        if tap and not disconnected and "error" not in state:
            self.store_stream(plan, state.get("cache_meta"), tap, state.get("usage"), state.get("route"), req)

    def _later(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _answer(self, plan: Plan, make: Callable[[], ir.Response | bytes | None], route: Any) -> Answer | None:
        """The entry to store for what ``make`` returns, if it is a whole answer; never raises."""
        try:
            response = make()
            if response is None:
                return None
            # relayed unread: stored as the bytes they are (a finished answer's), decoded only if ever needed
            whole = finished_openai(response) if isinstance(response, bytes) else cacheable(response)
            return new_answer(response, plan.group, route) if whole else None
        except Exception as exc:
            self.stores_failed += 1
            log.warning("could not cache an answer: %s", exc)
            return None

    async def _store(
        self, plan: Plan, make: Callable[[], ir.Response | bytes | None], route: Any, req: ir.Request
    ) -> None:
        answer = self._answer(plan, make, route)
        if answer is not None:
            await self.put(plan, answer, req)

    async def put(self, plan: Plan, answer: Answer, req: ir.Request) -> None:
        stored = await self.exact.put(plan.key, answer, plan.ttl)
        if stored and self.semantic is not None:
            parts = semantic_parts(plan.partition, plan.namespace, plan.group, req)
            if parts is not None:
                try:
                    await self.semantic.add(parts[0], parts[1], plan.key)
                except Exception as exc:
                    log.warning("semantic cache add failed: %s", exc)

    @staticmethod
    def headers(plan: Plan, *, hit: bool) -> dict[str, str]:
        return {
            "x-llmswitch-cache": "hit" if hit else "miss",
            "x-llmswitch-cache-key": plan.key,
            "x-litellm-cache-key": plan.key,
        }


def cacheable(response: ir.Response) -> bool:
    """Only finished answers: a cut, filtered or failed one is not worth replaying."""
    return bool(response.choices) and all(c.finish_reason in FINISHED for c in response.choices)


def load_semantic(settings: CacheSettings, embed: Embed | None) -> Any:
    """The semantic index of ``settings`` (module ``llmswitch.cache.semantic``, imported only now)."""
    import importlib

    from llmswitch.errors import ConfigError

    try:
        module = importlib.import_module(SEMANTIC_MODULE)
    except ImportError as exc:
        raise ConfigError(
            f"cache type {settings.type!r} needs the semantic cache ({SEMANTIC_MODULE}), which this install "
            f"lacks ({exc}); use type local, redis or disk"
        ) from exc
    return module.build_semantic(dict(settings.params), embed=embed, redis_url=settings.redis_url)


def embedding_model_of(settings: CacheSettings) -> str | None:
    """The model group the semantic index embeds with (``embedding_model``, or LiteLLM's names), or None
    for the local model."""
    p = settings.params
    for key in ("embedding_model", "redis_semantic_cache_embedding_model", "qdrant_semantic_cache_embedding_model"):
        value = p.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def router_embed(router: Any, group: str) -> Embed:
    """An ``embed`` coroutine that calls ``group`` (an embedding deployment) through ``router``."""

    async def embed(texts: list[str]) -> list[list[float]]:
        resp, _ = await router.embed(ir.EmbeddingRequest(model=group, input=list(texts)))
        return [e.vector for e in sorted(resp.data, key=lambda e: e.index)]

    return embed


def gateway_cache(settings: CacheSettings, router: Any) -> ResponseCache:
    """The gateway's cache for ``settings``: a semantic type embeds through ``router`` when the settings name
    an embedding model group, else with the local model."""
    group = embedding_model_of(settings) if settings.semantic else None
    return ResponseCache(settings, embed=router_embed(router, group) if group else None)


def _gathered(meta: ir.StreamMeta | None, tap: list[Any], usage: ir.Usage | None) -> ir.Response | None:
    """The whole answer of a finished stream: from its IR events, or from the OpenAI bytes relayed."""
    if tap and isinstance(tap[0], bytes):
        from llmswitch.dialects.openai_chat_stream import StreamDecoder

        decoder = StreamDecoder()
        events = decoder.feed(b"".join(tap)) + decoder.close()
        meta = decoder.meta
    else:
        events = tap
    if usage is not None:
        events = [*events, ir.StreamEvent(usage=usage)]
    return gather(meta or ir.StreamMeta(), events)
