"""The shared semantic index in Redis: an append-only log every gateway process follows.

Neither server here has a vector extension, so Redis only stores; each process searches its own
copy. Every ``add`` appends ``(scope, query, entry key, vector, expiry)`` to one Redis stream,
trimmed to ``max_entries`` (oldest first, exactly as each process's table evicts) and to the TTL.
Each process loads the stream on start, then follows it with a blocking ``XREAD``, so an entry one
process adds is searchable in all of them within a round trip.

The follower is a thread of its own with the synchronous Redis client, not a task: it outlives any
one event loop (the SDK's async calls may each run in a new one), a blocked read never holds up a
loop's shutdown, and applying a large log at start never pauses request handling. Appends go
through a worker thread too.

Redis away: ``append`` gives up after its socket timeout and the entry stays local; the follower
retries with backoff from where it stopped; lookups never touch Redis, so they never wait on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["RedisLog"]

logger = logging.getLogger("llmswitch.cache.semantic")

# the follower's XREAD waits this long for new entries, so it notices a stop within it
_BLOCK_MS = 500
_BATCH = 500


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
    """Appends to and follows one Redis stream; ``apply`` receives each entry in stream order
    (from the follower's thread: it must be thread-safe, as ``VectorTable.add`` is)."""

    def __init__(
        self, url: str, key: str, *, max_entries: int, ttl: float | None, apply: Apply, timeout: float = 0.5
    ) -> None:
        import redis

        self.key = key
        self.max_entries = max_entries
        self.ttl = ttl
        self._apply = apply
        self._writer: Any = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        # the follower blocks up to _BLOCK_MS inside XREAD: its socket must wait longer than that
        self._reader: Any = redis.Redis.from_url(
            url, socket_timeout=timeout + _BLOCK_MS / 1000, socket_connect_timeout=timeout
        )
        self._last_id = "0-0"
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loaded = threading.Event()

    def start(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._follow, name="llmswitch-semantic-follower", daemon=True)
            self._thread.start()

    async def wait_loaded(self, timeout: float) -> bool:
        """Wait (bounded) until the stream as it was at start has been read."""
        return await asyncio.to_thread(self._loaded.wait, timeout)

    async def append(
        self, scope: str, query: str, entry_key: str, vector: npt.NDArray[np.float32], expires_at: float
    ) -> bool:
        fields = _encode(scope, query, entry_key, vector, expires_at)
        try:
            await asyncio.to_thread(self._append, fields)
        except Exception as exc:  # any Redis failure: the entry stays in this process only
            logger.warning("semantic cache: Redis append failed (%s: %s); entry kept locally", type(exc).__name__, exc)
            return False
        return True

    def _append(self, fields: dict[str, Any]) -> None:
        pipe = self._writer.pipeline(transaction=False)
        pipe.xadd(self.key, fields, maxlen=self.max_entries, approximate=False)
        if self.ttl is not None:
            ttl_ms = max(1, int(self.ttl * 1000))
            pipe.xtrim(self.key, minid=f"{int(time.time() * 1000) - ttl_ms}-0", approximate=False)
            pipe.pexpire(self.key, ttl_ms)
        pipe.execute()

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

    def _load(self) -> None:
        start = "-" if self._last_id == "0-0" else "(" + self._last_id
        while not self._stop.is_set():
            batch = self._reader.xrange(self.key, min=start, max="+", count=_BATCH)
            if not batch:
                break
            self._apply_batch(batch)
            start = "(" + self._last_id
            if len(batch) < _BATCH:
                break

    def _follow(self) -> None:
        backoff = 0.25
        while not self._stop.is_set():
            try:
                if not self._loaded.is_set():
                    self._load()
                    self._loaded.set()
                reply = self._reader.xread({self.key: self._last_id}, count=_BATCH, block=_BLOCK_MS)
                for _stream, batch in reply or ():
                    self._apply_batch(batch)
                backoff = 0.25
            except Exception as exc:  # Redis away or failing: retry from where we stopped
                if self._stop.is_set():
                    break
                logger.warning("semantic cache: following Redis failed (%s: %s); retrying", type(exc).__name__, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        with contextlib.suppress(Exception):
            self._reader.close()

    async def aclose(self) -> None:
        """Stop following (the thread ends within one blocked read) and close the connections."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, (_BLOCK_MS / 1000) + 1.0)
        with contextlib.suppress(Exception):
            self._writer.close()
