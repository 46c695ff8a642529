"""Where exact entries live, by name, imported only when used: ``memory``, ``redis``, ``sqlite``.

Every backend has the same small async interface (:class:`Backend`); keys are the 64-hex entry keys
and values opaque bytes. ``flush`` removes this cache's entries only (a Redis shared with the limits
keeps everything else).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from llmswitch.cache.settings import CacheSettings

BACKENDS = {
    "memory": "llmswitch.cache.backends.memory:MemoryBackend",
    "redis": "llmswitch.cache.backends.redis:RedisBackend",
    "sqlite": "llmswitch.cache.backends.sqlite:SQLiteBackend",
}


class Backend(Protocol):
    name: str
    local: bool
    """Answers in this process without I/O (``get_nowait`` works)."""

    def get_nowait(self, key: str) -> bytes | None: ...
    def set_nowait(self, key: str, value: bytes, ttl: float) -> None: ...
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float) -> None: ...
    async def delete(self, keys: list[str]) -> int: ...
    async def flush(self) -> int: ...
    async def ping(self) -> None: ...
    async def aclose(self) -> None: ...


def open_backend(settings: CacheSettings) -> Backend:
    """The backend ``settings`` name (its module imported now, not before)."""
    module, _, cls = BACKENDS[settings.backend].partition(":")
    backend: Backend = getattr(importlib.import_module(module), cls)(settings)
    return backend
