"""The semantic index: which exact-cache entry, if any, answers a paraphrase of a cached query.

The exact cache owns the answers; this index only maps ``(scope, query)`` to an entry key. A
lookup embeds the query, takes the most similar cached queries of the same scope above
``similarity_threshold``, and returns the first whose text passes ``guard.same_meaning`` — so a
swapped name, number or negation is a miss even at cosine 0.99.

    index = build_semantic({"similarity_threshold": 0.9, "ttl": 600}, embed=None, redis_url=None)
    await index.add(scope, "What is the capital of France?", "k1")
    await index.lookup(scope, "what's the capital of france")   # -> "k1"
    await index.lookup(scope, "What is the capital of Spain?")  # -> None

Nothing here raises into a request: an embedding or Redis failure is a logged miss.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import numpy as np
import numpy.typing as npt

from llmswitch.cache.semantic.guard import same_meaning, word_bag
from llmswitch.cache.semantic.redis_log import RedisLog
from llmswitch.cache.semantic.table import VectorTable
from llmswitch.errors import ConfigError

__all__ = ["MAX_QUERY_CHARS", "Embed", "SemanticIndex"]

logger = logging.getLogger("llmswitch.cache.semantic")

Embed = Callable[[list[str]], Awaitable[list[list[float]]]]

# candidates the guard examines per lookup, the most similar first
_CANDIDATES = 8
# recently embedded queries, so the add after a miss does not embed the same text again
_RECENT_VECTORS = 1024
# longer questions are left to the exact cache: the model reads only their first 256 tokens, and
# tokenizing a body of megabytes on the event loop would stall every other request
MAX_QUERY_CHARS = 8192


class SemanticIndex:
    """Maps paraphrases to exact-cache entry keys within a scope (see the module docstring)."""

    def __init__(
        self,
        embed: Embed,
        *,
        threshold: float,
        ttl: float | None,
        max_entries: int,
        embed_timeout: float = 5.0,
        redis_url: str | None = None,
        redis_key: str = "llmswitch:semantic:log",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ConfigError(f"cache_params.similarity_threshold must be within [-1, 1], got {threshold}")
        self.threshold = threshold
        self.ttl = ttl
        self._embed = embed
        self._embed_timeout = embed_timeout
        self._clock = clock
        self.table = VectorTable(max_entries, bag_of=word_bag)
        self._recent: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._log: RedisLog | None = None
        if redis_url is not None:
            self._log = RedisLog(redis_url, redis_key, max_entries=max_entries, ttl=ttl, apply=self.table.add)

    def _started(self) -> None:
        if self._log is not None:
            self._log.start()

    async def wait_ready(self, timeout: float = 5.0) -> bool:
        """For a shared index: wait (bounded) until the entries already in Redis are loaded."""
        if self._log is None:
            return True
        self._started()
        return await self._log.wait_loaded(timeout)

    async def _vector(self, query: str) -> npt.NDArray[np.float32] | None:
        vector = self._recent.get(query)
        if vector is not None:
            self._recent.move_to_end(query)
            return vector
        try:
            async with asyncio.timeout(self._embed_timeout):
                (row,) = await self._embed([query])
        except Exception as exc:  # an embedding failure is a miss, never a failed request
            logger.warning("semantic cache: embedding failed (%s: %s); treated as a miss", type(exc).__name__, exc)
            return None
        vector = np.asarray(row, dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if not math.isfinite(norm) or norm == 0.0:
            return None
        vector = vector / norm
        self._recent[query] = vector
        if len(self._recent) > _RECENT_VECTORS:
            self._recent.popitem(last=False)
        return vector

    async def lookup(self, scope: str, query: str) -> str | None:
        """The entry key of a cached query in ``scope`` that says what ``query`` says, else None."""
        self._started()
        if len(query) > MAX_QUERY_CHARS:
            return None
        now = self._clock()
        self.table.expire(now)
        if not self.table.has_bag(scope, word_bag(query)):
            # no cached question here has these words, so none can pass the guard: a miss, with no
            # embedding (a few microseconds instead of milliseconds, or a remote call)
            return None
        vector = await self._vector(query)
        if vector is None:
            return None
        # about a millisecond at 100k rows (table.py), so it runs on the event loop
        for candidate in self.table.search(scope, vector, self.threshold, _CANDIDATES, self._clock()):
            if same_meaning(candidate.query, query):
                return candidate.entry_key
        return None

    async def add(self, scope: str, query: str, entry_key: str) -> None:
        """Remember that ``entry_key`` answers ``query`` in ``scope`` (shared when Redis is set)."""
        self._started()
        if len(query) > MAX_QUERY_CHARS:
            return
        vector = await self._vector(query)
        if vector is None:
            return
        expires_at = math.inf if self.ttl is None else self._clock() + self.ttl
        self.table.add(scope, query, entry_key, vector, expires_at)
        if self._log is not None:
            await self._log.append(scope, query, entry_key, vector, expires_at)

    async def aclose(self) -> None:
        if self._log is not None:
            await self._log.aclose()
        self.table.clear()
