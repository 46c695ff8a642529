"""Entries in Redis (LiteLLM's ``type: redis``): one server by URL, a cluster, or a master found by sentinels.

``GET`` and ``SET`` go through the lean client of ``resp.py`` (redis-py costs ~90 µs of CPU a command) for a
plain ``redis://`` URL; the rest, and clusters, sentinels and TLS, through redis-py.

Keys are ``[<namespace>:]llmswitch:cache:<entry key>``, so ``flush`` deletes only this cache's entries (by
``SCAN``, never ``FLUSHDB``: the same Redis may hold the gateway's limits). Every call is bounded by the
socket timeouts; the caller (:class:`llmswitch.cache.exact.ExactCache`) adds its own deadline and stops
asking a Redis that failed for a while.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from llmswitch.cache.backends.redis_keys import KeyDirectory
from llmswitch.cache.backends.resp import LeanRedis, lean_url

if TYPE_CHECKING:
    from llmswitch.cache.settings import CacheSettings


def key_prefix(namespace: str | None) -> str:
    return f"{namespace}:llmswitch:cache:" if namespace else "llmswitch:cache:"


class RedisBackend:
    name = "redis"
    local = False

    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings
        self.prefix = key_prefix(settings.namespace)
        self._client: Any = None
        self._loop: Any = None
        # GET and SET, on every request, through the lean client where it serves the URL (see resp.py)
        self._lean: LeanRedis | None = None
        self._lean_loop: Any = None
        self._use_lean = (
            lean_url(settings.redis_url) and not settings.redis_cluster_nodes and not settings.sentinel_nodes
        )
        # which keys Redis holds, known here: a miss skips the round trip (redis_keys.py)
        self.directory: KeyDirectory | None = None
        if self._use_lean and settings.key_directory:
            assert settings.redis_url is not None
            self.directory = KeyDirectory(
                settings.redis_url, self.prefix, capacity=settings.key_directory_size, timeout=settings.timeout * 4
            )

    def _redis(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # a client belongs to the event loop it was made on (the SDK's sync calls run on a loop of their own)
            self._client, self._loop = _connect(self.settings), loop
        return self._client

    def set_nowait(self, key: str, value: bytes, ttl: float) -> None:
        raise NotImplementedError("only a local backend stores at once")

    def get_nowait(self, key: str) -> bytes | None:
        raise NotImplementedError("Redis is read over the network")

    def _fast(self) -> LeanRedis | None:
        if not self._use_lean:
            return None
        loop = asyncio.get_running_loop()
        if self._lean is None or self._lean_loop is not loop:
            assert self.settings.redis_url is not None
            timeout = max(self.settings.timeout, 0.05) * 4
            self._lean, self._lean_loop = LeanRedis(self.settings.redis_url, connect_timeout=timeout), loop
        return self._lean

    def absent(self, key: str) -> bool:
        """True when the key directory knows Redis holds no entry ``key`` (no round trip needed)."""
        directory = self.directory
        if directory is None:
            return False
        directory.start()
        return directory.absent(key)

    async def get(self, key: str) -> bytes | None:
        fast = self._fast()
        value = await (fast.get(self.prefix + key) if fast is not None else self._redis().get(self.prefix + key))
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        px = max(1, int(ttl * 1000))
        fast = self._fast()
        directory = self.directory
        if fast is not None and directory is not None:
            expires_at = time.time() + px / 1000
            await fast.set(self.prefix + key, value, px=px, then=directory.store_commands(key, expires_at))
            directory.note(key, expires_at)
        elif fast is not None:
            await fast.set(self.prefix + key, value, px=px)
        else:
            await self._redis().set(self.prefix + key, value, px=px)

    async def delete(self, keys: list[str]) -> int:
        if not keys:
            return 0
        client = self._redis()
        n = 0
        for key in keys:  # one at a time: keys of a cluster live on different nodes
            n += int(await client.delete(self.prefix + key))
        if self.directory is not None:
            await client.zrem(self.directory.set_key, *keys)
        return n

    async def flush(self) -> int:
        client = self._redis()
        n = 0
        batch: list[Any] = []
        # the key directory's sorted set and stream share the prefix: removed too, but not entries
        bookkeeping = {(self.prefix + name).encode() for name in ("keys", "keys:log")}
        async for key in client.scan_iter(match=_glob_escape(self.prefix) + "*", count=500):
            if key in bookkeeping:
                await client.unlink(key)
                continue
            batch.append(key)
            if len(batch) >= 500:
                n += await _unlink(client, batch)
                batch = []
        if batch:
            n += await _unlink(client, batch)
        if self.directory is not None:
            self.directory.forget_all()
        return n

    async def ping(self) -> None:
        await self._redis().ping()

    async def aclose(self) -> None:
        # connections belong to the loop they were made on: one of another (closed) loop is only dropped
        loop = asyncio.get_running_loop()
        lean, self._lean = self._lean, None
        if lean is not None and self._lean_loop is loop:
            await lean.aclose()
        client, self._client = self._client, None
        if client is not None and self._loop is loop:
            await client.aclose()
        directory, self.directory = self.directory, None
        if directory is not None:
            await asyncio.to_thread(directory.close)


async def _unlink(client: Any, keys: list[Any]) -> int:
    n = 0
    for key in keys:
        n += int(await client.unlink(key))
    return n


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _connect(s: CacheSettings) -> Any:
    timeouts: dict[str, Any] = {
        "socket_timeout": max(s.timeout, 0.05) * 4,
        "socket_connect_timeout": max(s.timeout, 0.05) * 4,
    }
    if s.redis_cluster_nodes:
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode(host, port) for host, port in s.redis_cluster_nodes]
        return RedisCluster(startup_nodes=nodes, password=s.redis_password, **timeouts)
    if s.sentinel_nodes:
        from redis.asyncio.sentinel import Sentinel

        sentinel_kwargs = {"password": s.sentinel_password} if s.sentinel_password else None
        sentinel = Sentinel(
            list(s.sentinel_nodes), sentinel_kwargs=sentinel_kwargs, password=s.redis_password, **timeouts
        )
        return sentinel.master_for(s.sentinel_service or "mymaster")
    import redis.asyncio

    assert s.redis_url is not None
    return redis.asyncio.Redis.from_url(s.redis_url, **timeouts)
