"""LiteLLM's cache admin API, master key only: ``GET /cache/ping``, ``POST /cache/delete``, ``POST /cache/flushall``.

    curl -X POST localhost:4000/cache/delete -H "Authorization: Bearer $MASTER" -d '{"keys": ["<key>"]}'

A key is what an answer's ``x-llmswitch-cache-key`` (or ``x-litellm-cache-key``) header gave. Flushing
removes this cache's entries only, never the rest of a shared Redis.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from llmswitch.dialects._json import dumps, invalid
from llmswitch.errors import ServiceUnavailableError
from llmswitch.server import http
from llmswitch.server.admin import _require_master

if TYPE_CHECKING:
    from llmswitch.cache.gateway import ResponseCache
    from llmswitch.server.app import Gateway

_KEY = re.compile(r"[0-9a-f]{64}")
MAX_KEYS = 1000


def _cache_of(gw: Gateway) -> ResponseCache:
    if gw.cache is None:
        raise invalid("cache", "caching is not on: set litellm_settings.cache: true (see docs/caching.md)")
    return gw.cache


def _unavailable(exc: BaseException) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        f"the cache did not answer: {type(exc).__name__}",
        status_code=503,
        provider="llmswitch",
        error_type="service_unavailable",
    )


async def cache_ping(gw: Gateway, request: http.Request, send: http.Send) -> None:
    _require_master(gw, request)
    cache = _cache_of(gw)
    s = cache.settings
    try:
        await cache.exact.ping()
    except Exception as exc:
        raise _unavailable(exc) from exc
    out: dict[str, Any] = {
        "status": "healthy",
        "cache_type": s.type,
        "backend": cache.exact.backend.name,
        "ping_response": True,
        "litellm_cache_params": {"type": s.type, "namespace": s.namespace, "ttl": s.ttl, "mode": s.mode},
    }
    await http.send_bytes(send, 200, dumps(out))


async def cache_delete(gw: Gateway, request: http.Request, send: http.Send) -> None:
    from llmswitch.server.chat import parse_json

    _require_master(gw, request)
    cache = _cache_of(gw)
    body = parse_json(request.body)
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list) or not keys or len(keys) > MAX_KEYS:
        raise invalid("keys", f"expected a list of 1 to {MAX_KEYS} cache keys")
    for i, key in enumerate(keys):
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise invalid(f"keys[{i}]", "expected a cache key (64 hex digits, as the x-llmswitch-cache-key header)")
    try:
        deleted = await cache.exact.delete(keys)
    except Exception as exc:
        raise _unavailable(exc) from exc
    await http.send_bytes(send, 200, dumps({"status": "success", "deleted": deleted}))


async def cache_flushall(gw: Gateway, request: http.Request, send: http.Send) -> None:
    _require_master(gw, request)
    cache = _cache_of(gw)
    try:
        flushed = await cache.exact.flush()
    except Exception as exc:
        raise _unavailable(exc) from exc
    await http.send_bytes(send, 200, dumps({"status": "success", "deleted": flushed}))


ROUTES: dict[tuple[str, str], http.Handler] = {
    ("GET", "/cache/ping"): cache_ping,
    ("POST", "/cache/delete"): cache_delete,
    ("POST", "/cache/flushall"): cache_flushall,
}
