"""The exact cache: entries by key in a backend, never failing nor holding up a request.

Entries of a remote backend (Redis, SQLite) are also kept in this process's memory for ``near_ttl`` seconds
(LiteLLM's in-memory layer in front of Redis), so an answer asked again and again costs no round trip.

A backend that errs or is slow (Redis away, garbage in a key) makes a lookup a miss within
``settings.timeout`` seconds, and the cache then stops asking it for a while (1 s, doubling to 30 s) so
requests go on uncached at full speed; the outage is logged once, and its end too.

    >>> cache = ExactCache(CacheSettings())
    >>> asyncio.run(cache.put("k" * 64, new_answer(resp, "g", None), 60))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from llmswitch.cache.backends import Backend, open_backend
from llmswitch.cache.backends.memory import MemoryBackend
from llmswitch.cache.replay import Answer, decode_answer, encode_answer

if TYPE_CHECKING:
    from llmswitch.cache.settings import CacheSettings

log = logging.getLogger("llmswitch.cache")
_BACKOFF_MIN_S = 1.0
_BACKOFF_MAX_S = 30.0


class ExactCache:
    """Answers by entry key (see :mod:`llmswitch.cache.keys`)."""

    def __init__(self, settings: CacheSettings, backend: Backend | None = None) -> None:
        self.settings = settings
        self.backend = backend if backend is not None else open_backend(settings)
        # a remote backend's entries are also kept here briefly, so repeated hits cost no round trip
        self.near: MemoryBackend | None = None
        if not self.backend.local and settings.near_ttl > 0:
            self.near = MemoryBackend(settings)
        self._down_until = 0.0
        self._backoff = _BACKOFF_MIN_S
        self._down = False
        # a remote backend that knows some keys are not there (Redis's key directory) spares their round trip
        self._absent = getattr(self.backend, "absent", None)

    @property
    def available(self) -> bool:
        return not self._down or time.monotonic() >= self._down_until

    def put_nowait(self, key: str, answer: Answer, ttl: float) -> bool:
        """:meth:`put` for a local backend (the caller checks ``backend.local`` first)."""
        data = encode_answer(answer)
        if len(data) > self.settings.max_entry_bytes:
            return False
        self.backend.set_nowait(key, data, ttl)
        return True

    async def get(self, key: str) -> Answer | None:
        """The entry under ``key``, or ``None``: not there, unreadable, or the backend failing or slow."""
        backend = self.backend
        if backend.local:
            return decode_answer(backend.get_nowait(key))
        near = self.near
        if near is not None:
            found = decode_answer(near.get_nowait(key))
            if found is not None:
                return found
        if self._down and time.monotonic() < self._down_until:
            return None
        absent = self._absent
        if absent is not None and absent(key):
            return None
        try:
            async with asyncio.timeout(self.settings.timeout):
                data = await backend.get(key)
        except Exception as exc:  # any failure of the backend is a miss, and a pause in asking it
            self._failed(exc)
            return None
        self._recovered()
        answer = decode_answer(data)
        if answer is not None and near is not None and data is not None:
            near.set_nowait(key, data, self.settings.near_ttl)
        return answer

    async def put(self, key: str, answer: Answer, ttl: float) -> bool:
        """Store ``answer``; False when it is too large or the backend fails (logged, never raised)."""
        data = encode_answer(answer)
        if len(data) > self.settings.max_entry_bytes:
            return False
        if self.backend.local:
            self.backend.set_nowait(key, data, ttl)
            return True
        if self.near is not None:
            self.near.set_nowait(key, data, min(ttl, self.settings.near_ttl))
        if self._down and time.monotonic() < self._down_until:
            return False
        try:
            async with asyncio.timeout(max(self.settings.timeout, 1.0)):
                await self.backend.set(key, data, ttl)
        except Exception as exc:
            self._failed(exc)
            return False
        self._recovered()
        return True

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if not self._down:
            log.warning(
                "the %s cache is not answering (%s); requests go on uncached until it does",
                self.backend.name,
                type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
            )
            self._backoff = _BACKOFF_MIN_S
        else:
            self._backoff = min(self._backoff * 2, _BACKOFF_MAX_S)
        self._down = True
        self._down_until = now + self._backoff

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            self._backoff = _BACKOFF_MIN_S
            log.warning("the %s cache answers again", self.backend.name)

    # ---------------------------------------------------------------- admin (errors raised to the caller)

    async def delete(self, keys: list[str]) -> int:
        if self.near is not None:
            await self.near.delete(keys)
        return await self.backend.delete(keys)

    async def flush(self) -> int:
        if self.near is not None:
            await self.near.flush()
        return await self.backend.flush()

    async def ping(self) -> None:
        async with asyncio.timeout(max(self.settings.timeout, 1.0)):
            await self.backend.ping()

    async def aclose(self) -> None:
        await self.backend.aclose()
