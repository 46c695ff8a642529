"""The shared semantic index in Redis: an append-only log every gateway process follows.

Neither server here has a vector extension, so Redis only stores; each process searches its own
copy. Every ``add`` appends ``(scope, query, entry key, vector, expiry)`` to one Redis stream,
trimmed to ``max_entries`` (oldest first, exactly as each process's table evicts) and to the TTL.
Each process loads the stream on start, then follows it with a blocking ``XREAD``, so an entry one
process adds is searchable in all of them within a round trip.

Redis away: ``append`` gives up after its socket timeout and the entry stays local; the follower
retries with backoff from where it stopped; lookups never touch Redis, so they never wait on it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["RedisLog"]

logger = logging.getLogger("llmswitch.cache.semantic")

_BLOCK_MS = 1000
# entries applied per event-loop turn: a batch costs ~100 µs an entry (codes, bookkeeping), so a large
# log loading at start never holds the loop for more than a few tens of milliseconds at a time
_BATCH = 200


def _encode(
    scope: str, query: str, entry_key: str, vector: npt.NDArray[np.float32], expires_at: float
) -> dict[str, Any]:
    return {
        "s": scope,
        "q": query,
        "k": entry_key,
        "v": vector.astype("<f4").tobytes(),
        "e": "inf" if math.isinf(expires_at) else f"{expires_at:.3f}",
    }


Apply = Callable[[str, str, str, npt.NDArray[np.float32], float], None]


class RedisLog:
    """Appends to and follows one Redis stream; ``apply`` receives each entry in stream order."""

    def __init__(
        self, url: str, key: str, *, max_entries: int, ttl: float | None, apply: Apply, timeout: float = 0.5
    ) -> None:
        from redis.asyncio import Redis

        self.key = key
        self.max_entries = max_entries
        self.ttl = ttl
        self._apply = apply
        self._writer: Any = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        # the follower blocks up to _BLOCK_MS inside XREAD: its socket must wait longer than that
        self._reader: Any = Redis.from_url(
            url, socket_timeout=timeout + _BLOCK_MS / 1000, socket_connect_timeout=timeout
        )
        self._last_id = "0-0"
        self._task: asyncio.Task[None] | None = None
        self._caught_up = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow(), name="semantic-cache-follower")

    async def wait_loaded(self, timeout: float) -> bool:
        """Wait (bounded) until the stream as it was at start has been read."""
        try:
            async with asyncio.timeout(timeout):
                await self._caught_up.wait()
        except TimeoutError:
            return False
        return True

    async def append(
        self, scope: str, query: str, entry_key: str, vector: npt.NDArray[np.float32], expires_at: float
    ) -> bool:
        fields = _encode(scope, query, entry_key, vector, expires_at)
        try:
            async with self._writer.pipeline(transaction=False) as pipe:
                pipe.xadd(self.key, fields, maxlen=self.max_entries, approximate=False)
                if self.ttl is not None:
                    ttl_ms = max(1, int(self.ttl * 1000))
                    pipe.xtrim(self.key, minid=f"{int(time.time() * 1000) - ttl_ms}-0", approximate=False)
                    pipe.pexpire(self.key, ttl_ms)
                await pipe.execute()
        except Exception as exc:  # any Redis failure: the entry stays in this process only
            logger.warning("semantic cache: Redis append failed (%s: %s); entry kept locally", type(exc).__name__, exc)
            return False
        return True

    def _apply_batch(self, batch: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for entry_id, fields in batch:
            self._last_id = entry_id.decode()
            try:
                vector = np.frombuffer(fields[b"v"], dtype="<f4").astype(np.float32)
                expires = fields[b"e"].decode()
                self._apply(
                    fields[b"s"].decode(),
                    fields[b"q"].decode(),
                    fields[b"k"].decode(),
                    vector,
                    math.inf if expires == "inf" else float(expires),
                )
            except (KeyError, ValueError, UnicodeDecodeError):
                logger.warning("semantic cache: skipped a malformed log entry %s", self._last_id)

    async def _load(self) -> None:
        start = "-" if self._last_id == "0-0" else "(" + self._last_id
        while True:
            batch = await self._reader.xrange(self.key, min=start, max="+", count=_BATCH)
            if not batch:
                break
            self._apply_batch(batch)
            start = "(" + self._last_id
            if len(batch) < _BATCH:
                break
            await asyncio.sleep(0)

    async def _follow(self) -> None:
        backoff = 0.25
        loaded = False
        while True:
            try:
                if not loaded:
                    await self._load()
                    loaded = True
                    self._caught_up.set()
                reply = await self._reader.xread({self.key: self._last_id}, count=_BATCH, block=_BLOCK_MS)
                for _stream, batch in reply or ():
                    self._apply_batch(batch)
                backoff = 0.25
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away or failing: retry from where we stopped
                logger.warning("semantic cache: following Redis failed (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._writer.aclose()
        await self._reader.aclose()
