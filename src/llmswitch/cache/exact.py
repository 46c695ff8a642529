"""The exact cache: entries by key in a backend, never failing nor holding up a request.

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
        self._down_until = 0.0
        self._backoff = _BACKOFF_MIN_S
        self._down = False

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
        if self._down and time.monotonic() < self._down_until:
            return None
        try:
            async with asyncio.timeout(self.settings.timeout):
                data = await backend.get(key)
        except Exception as exc:  # any failure of the backend is a miss, and a pause in asking it
            self._failed(exc)
            return None
        self._recovered()
        return decode_answer(data)

    async def put(self, key: str, answer: Answer, ttl: float) -> bool:
        """Store ``answer``; False when it is too large or the backend fails (logged, never raised)."""
        data = encode_answer(answer)
        if len(data) > self.settings.max_entry_bytes:
            return False
        if self.backend.local:
            self.backend.set_nowait(key, data, ttl)
            return True
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
        return await self.backend.delete(keys)

    async def flush(self) -> int:
        return await self.backend.flush()

    async def ping(self) -> None:
        async with asyncio.timeout(max(self.settings.timeout, 1.0)):
            await self.backend.ping()

    async def aclose(self) -> None:
        await self.backend.aclose()
