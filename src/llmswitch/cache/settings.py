"""What the cache is configured to do: LiteLLM's ``cache_params``, read once into one frozen value.

    >>> s = settings_from_params({"type": "redis", "host": "localhost", "port": 6379, "ttl": 600})
    >>> s.type, s.backend, s.ttl, s.redis_url
    ('redis', 'redis', 600.0, 'redis://localhost:6379/0')

Both config forms and the SDK's :class:`llmswitch.Cache` build their settings here, so a value means
the same wherever it is written. A wrong value raises :class:`CacheSettingError` naming its key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

CacheType = Literal["local", "redis", "disk", "redis-semantic", "qdrant-semantic"]
Backend = Literal["memory", "redis", "sqlite"]
CACHE_TYPES: tuple[str, ...] = ("local", "redis", "disk", "redis-semantic", "qdrant-semantic")
SEMANTIC_TYPES = frozenset({"redis-semantic", "qdrant-semantic"})
# LiteLLM's other types: storage this gateway does not write to
_UNSUPPORTED_TYPES = {"s3": "S3", "gcs": "Google Cloud Storage", "azure-blob": "Azure Blob Storage"}
# LiteLLM's call types; the gateway caches the chat ones (embeddings and transcriptions are not cached yet)
DEFAULT_CALL_TYPES = ("acompletion", "atext_completion", "aembedding", "atranscription")
CHAT_CALL_TYPES = frozenset({"acompletion", "completion", "atext_completion", "text_completion"})
DEFAULT_TTL_S = 24 * 3600.0
MAX_TTL_S = 365 * 24 * 3600.0

# every key cache_params may hold (LiteLLM's, then ours); anything else is a warning with a did-you-mean
KNOWN_KEYS = frozenset(
    {
        "type", "host", "port", "password", "username", "url", "redis_url", "db", "ssl", "namespace", "ttl",
        "default_in_memory_ttl", "default_in_redis_ttl", "supported_call_types", "mode", "disk_cache_dir",
        "redis_startup_nodes", "startup_nodes", "sentinel_nodes", "service_name", "sentinel_password",
        "similarity_threshold", "redis_semantic_cache_embedding_model", "redis_semantic_cache_index_name",
        "qdrant_semantic_cache_embedding_model", "qdrant_collection_name", "qdrant_api_base", "qdrant_api_key",
        "qdrant_quantization_config", "max_size_in_memory", "max_entries",
        # ours
        "embedding_model", "max_temperature", "shared_namespaces", "hits_count_requests", "hits_count_tokens",
        "hits_count_spend", "max_entry_bytes", "timeout", "local_model", "max_vectors",
        "key_directory", "key_directory_size",
    }
)  # fmt: skip


class CacheSettingError(ValueError):
    """A ``cache_params`` value that cannot be used; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class CacheSettings:
    """The response cache: where entries live, how long, and who may read them.

    ``params`` keeps every ``cache_params`` value as written (environment references resolved), for the
    semantic index, which reads its own keys from it.
    """

    type: CacheType = "local"
    ttl: float = DEFAULT_TTL_S
    namespace: str | None = None
    supported_call_types: tuple[str, ...] = DEFAULT_CALL_TYPES
    mode: Literal["default_on", "default_off"] = "default_on"
    redis_url: str | None = field(default=None, repr=False)
    redis_cluster_nodes: tuple[tuple[str, int], ...] = ()
    sentinel_nodes: tuple[tuple[str, int], ...] = ()
    sentinel_service: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    redis_password: str | None = field(default=None, repr=False)
    disk_cache_dir: str | None = None
    max_entries: int = 10_000
    """Entries kept in memory (``local``), least recently used first out."""
    max_entry_bytes: int = 4 * 1024 * 1024
    """Answers larger than this (stored form) are not cached."""
    max_temperature: float = 0.0
    """Requests with a temperature above this are not cached (an unset temperature is cached)."""
    shared_namespaces: frozenset[str] = frozenset()
    """Per-request namespaces whose entries every tenant shares; any other entry is the tenant's own."""
    hits_count_requests: bool = True
    hits_count_tokens: bool = False
    hits_count_spend: bool = False
    timeout: float = 0.25
    """Seconds a Redis lookup may take before the request goes on uncached."""
    near_ttl: float = 5.0
    """Seconds a Redis entry is also kept in this process's memory (LiteLLM's ``default_in_memory_ttl`` of its
    Redis-and-memory cache): repeated hits skip Redis; another instance's delete reaches it within this."""
    key_directory: bool = True
    """Redis: each process knows which keys Redis holds, so a miss needs no round trip (backends/redis_keys.py)."""
    key_directory_size: int = 200_000
    """The most keys the directory keeps; with more live entries every lookup asks Redis."""
    params: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def backend(self) -> Backend:
        """Where exact entries live: the semantic types keep theirs in Redis when one is named."""
        if self.type == "local":
            return "memory"
        if self.type == "disk":
            return "sqlite"
        if self.type == "redis" or self.redis_url or self.redis_cluster_nodes or self.sentinel_nodes:
            return "redis"
        return "memory"

    @property
    def semantic(self) -> bool:
        return self.type in SEMANTIC_TYPES

    @property
    def caches_chat(self) -> bool:
        return not CHAT_CALL_TYPES.isdisjoint(self.supported_call_types)


def settings_from_params(params: Mapping[str, Any], env: Mapping[str, str] | None = None) -> CacheSettings:
    """:class:`CacheSettings` from LiteLLM's ``cache_params`` (values already read from the environment).

    Redis without a host or URL falls back to ``REDIS_URL`` / ``REDIS_HOST`` (as LiteLLM reads them).
    """
    import os

    env = os.environ if env is None else env
    p = dict(params)
    kind = p.get("type") or "local"
    if not isinstance(kind, str):
        raise CacheSettingError("type", f"expected one of {', '.join(CACHE_TYPES)}, got {kind!r}")
    if kind in _UNSUPPORTED_TYPES:
        raise CacheSettingError("type", f"{kind!r} ({_UNSUPPORTED_TYPES[kind]}) is not supported; use redis or disk")
    if kind not in CACHE_TYPES:
        raise CacheSettingError("type", f"expected one of {', '.join(CACHE_TYPES)}, got {kind!r}")
    out: dict[str, Any] = {"type": kind, "params": p}
    ttl = p.get("ttl", p.get("default_in_redis_ttl" if kind != "local" else "default_in_memory_ttl"))
    if ttl is not None:
        out["ttl"] = _seconds("ttl", ttl)
    if kind != "local" and p.get("default_in_memory_ttl") is not None:
        near = _number("default_in_memory_ttl", p["default_in_memory_ttl"])
        out["near_ttl"] = min(near, MAX_TTL_S)
    if p.get("namespace") is not None:
        out["namespace"] = _text("namespace", p["namespace"])
    types = p.get("supported_call_types")
    if types is not None:
        if isinstance(types, str):
            types = [types]
        if not isinstance(types, list | tuple) or not all(isinstance(t, str) for t in types):
            raise CacheSettingError("supported_call_types", "expected a list of call types")
        out["supported_call_types"] = tuple(types)
    mode = p.get("mode")
    if mode is not None:
        if mode not in ("default_on", "default_off"):
            raise CacheSettingError("mode", f"expected default_on or default_off, got {mode!r}")
        out["mode"] = mode
    for key in ("max_entries", "max_size_in_memory", "max_entry_bytes"):
        if p.get(key) is not None:
            n = _integer(key, p[key])
            out["max_entries" if key == "max_size_in_memory" else key] = n
    if p.get("max_temperature") is not None:
        out["max_temperature"] = _number("max_temperature", p["max_temperature"])
    if p.get("timeout") is not None:
        out["timeout"] = _seconds("timeout", p["timeout"])
    shared = p.get("shared_namespaces")
    if shared is not None:
        if isinstance(shared, str):
            shared = [shared]
        if not isinstance(shared, list | tuple) or not all(isinstance(s, str) and s for s in shared):
            raise CacheSettingError("shared_namespaces", "expected a list of namespace names")
        out["shared_namespaces"] = frozenset(shared)
    if p.get("key_directory") is not None:
        out["key_directory"] = _flag("key_directory", p["key_directory"])
    if p.get("key_directory_size") is not None:
        out["key_directory_size"] = max(1, _integer("key_directory_size", p["key_directory_size"]))
    for key in ("hits_count_requests", "hits_count_tokens", "hits_count_spend"):
        if p.get(key) is not None:
            out[key] = _flag(key, p[key])
    if p.get("disk_cache_dir") is not None:
        out["disk_cache_dir"] = _text("disk_cache_dir", p["disk_cache_dir"])
    out.update(_redis(p, kind, env))
    return CacheSettings(**out)


def _redis(p: dict[str, Any], kind: str, env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    nodes = p.get("redis_startup_nodes", p.get("startup_nodes"))
    if nodes is not None:
        out["redis_cluster_nodes"] = _nodes("redis_startup_nodes", nodes)
    if p.get("sentinel_nodes") is not None:
        out["sentinel_nodes"] = _nodes("sentinel_nodes", p["sentinel_nodes"])
        out["sentinel_service"] = _text("service_name", p.get("service_name") or "mymaster")
        if p.get("sentinel_password") is not None:
            out["sentinel_password"] = _text("sentinel_password", p["sentinel_password"])
    password = p.get("password")
    if password is not None:
        out["redis_password"] = _text("password", password)
    url = p.get("url", p.get("redis_url"))
    host = p.get("host")
    if url is not None:
        out["redis_url"] = _text("url", url)
    elif host is not None:
        port = _integer("port", p.get("port", 6379))
        db = _integer("db", p.get("db", 0))
        user = p.get("username")
        auth = ""
        if password is not None:
            auth = f"{quote(str(user or ''), safe='')}:{quote(str(password), safe='')}@"
        scheme = "rediss" if p.get("ssl") in (True, "true", "True") else "redis"
        name = str(host)
        out["redis_url"] = f"{scheme}://{auth}{f'[{name}]' if ':' in name else name}:{port}/{db}"
    elif kind == "redis" and not out.get("redis_cluster_nodes") and not out.get("sentinel_nodes"):
        from llmswitch.limits.urls import redis_url_from

        found = redis_url_from(env=env)
        if found is None:
            raise CacheSettingError("host", "type redis needs host (and port), url, or REDIS_URL / REDIS_HOST set")
        out["redis_url"] = found
    return out


def _nodes(key: str, value: Any) -> tuple[tuple[str, int], ...]:
    """``[{"host": h, "port": p}, ...]`` (LiteLLM's cluster form) or ``[[h, p], ...]`` (its sentinel form)."""
    if not isinstance(value, list | tuple) or not value:
        raise CacheSettingError(key, "expected a list of nodes ({host, port} or [host, port])")
    out = []
    for node in value:
        if isinstance(node, Mapping):
            host, port = node.get("host"), node.get("port", 6379)
        elif isinstance(node, list | tuple) and len(node) == 2:
            host, port = node
        else:
            raise CacheSettingError(key, f"expected a node as {{host, port}} or [host, port], got {node!r}")
        if not isinstance(host, str) or not host:
            raise CacheSettingError(key, f"a node needs a host, got {node!r}")
        out.append((host, _integer(key, port)))
    return tuple(out)


def _text(key: str, value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise CacheSettingError(key, f"expected a non-empty string, got {value!r}")


def _number(key: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    raise CacheSettingError(key, f"expected a non-negative number, got {value!r}")


def _seconds(key: str, value: Any) -> float:
    n = _number(key, value)
    if n <= 0 or n > MAX_TTL_S:
        raise CacheSettingError(key, f"expected seconds between 0 and {MAX_TTL_S:.0f}, got {value!r}")
    return n


def _integer(key: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise CacheSettingError(key, f"expected a non-negative integer, got {value!r}")


def _flag(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise CacheSettingError(key, f"expected true or false, got {value!r}")
