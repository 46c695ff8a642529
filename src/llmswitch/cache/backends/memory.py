"""Entries in this process: a bounded LRU map with expiry (LiteLLM's ``type: local``)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmswitch.cache.settings import CacheSettings


class MemoryBackend:
    name = "memory"
    local = True

    def __init__(self, settings: CacheSettings) -> None:
        self.max_entries = max(1, settings.max_entries)
        self.max_bytes = 64 * settings.max_entry_bytes
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._now = time.monotonic

    def get_nowait(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= self._now():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return found[1]

    async def get(self, key: str) -> bytes | None:
        return self.get_nowait(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self.set_nowait(key, value, ttl)

    def set_nowait(self, key: str, value: bytes, ttl: float) -> None:
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (self._now() + ttl, value)
        self._bytes += len(value)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._bytes -= len(found[1])

    async def delete(self, keys: list[str]) -> int:
        n = 0
        for key in keys:
            if key in self._entries:
                self._drop(key)
                n += 1
        return n

    async def flush(self) -> int:
        n = len(self._entries)
        self._entries.clear()
        self._bytes = 0
        return n

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._entries)
