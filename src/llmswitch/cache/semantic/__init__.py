"""The semantic cache's index: paraphrases of cached queries, found by embedding, checked by rule.

The exact cache calls this package through two names:

    index = build_semantic(cache_params, embed=embed_or_none, redis_url=url_or_none)
    key = await index.lookup(scope, last_user_text)     # an exact-cache entry key, or None
    await index.add(scope, last_user_text, entry_key)  # after a miss was answered and stored
    await index.aclose()

``cache_params`` are LiteLLM's (``similarity_threshold``, ``ttl``, ``namespace``,
``redis_semantic_cache_embedding_model``) and ours (``semantic_max_entries``, ``semantic_backend``:
``memory`` or ``redis``). ``embed`` is a call to a configured embedding deployment; ``None`` loads
the local model (the ``semantic`` extra). See docs/caching.md, "Semantic cache".
"""

from __future__ import annotations

from typing import Any

from llmswitch.cache.semantic.index import Embed, SemanticIndex

__all__ = ["DEFAULT_MAX_ENTRIES", "DEFAULT_THRESHOLD", "Embed", "SemanticIndex", "build_semantic"]

DEFAULT_THRESHOLD = 0.9
DEFAULT_MAX_ENTRIES = 10_000

_BACKENDS = ("memory", "redis")


def _number(cache_params: dict[str, Any], name: str, default: float | None) -> float | None:
    value = cache_params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"cache_params.{name} must be a number, got {value!r}")
    try:
        return float(value)
    except ValueError as exc:
        raise ValueError(f"cache_params.{name} must be a number, got {value!r}") from exc


def build_semantic(cache_params: dict[str, Any], *, embed: Embed | None, redis_url: str | None) -> SemanticIndex:
    """A semantic index as ``cache_params`` describe it.

    The backend is ``cache_params["semantic_backend"]`` when given, else ``redis`` for the
    ``redis-semantic`` (and ``redis``) cache types when a ``redis_url`` is given, else ``memory``.
    """
    threshold = _number(cache_params, "similarity_threshold", DEFAULT_THRESHOLD)
    assert threshold is not None
    ttl = _number(cache_params, "ttl", None)
    if ttl is not None and ttl <= 0:
        raise ValueError(f"cache_params.ttl must be positive, got {ttl}")
    max_entries = _number(cache_params, "semantic_max_entries", DEFAULT_MAX_ENTRIES)
    assert max_entries is not None
    if max_entries < 1 or max_entries != int(max_entries):
        raise ValueError(f"cache_params.semantic_max_entries must be a positive integer, got {max_entries}")

    backend = cache_params.get("semantic_backend")
    if backend is None:
        cache_type = str(cache_params.get("type", ""))
        backend = "redis" if redis_url and cache_type.startswith("redis") else "memory"
    if backend not in _BACKENDS:
        raise ValueError(f"cache_params.semantic_backend must be one of {', '.join(_BACKENDS)}, got {backend!r}")
    if backend == "redis" and not redis_url:
        raise ValueError("cache_params.semantic_backend is redis but no Redis URL is configured")

    if embed is None:
        from llmswitch.cache.semantic.local_model import MODEL_ID, LocalEmbedder

        embed = LocalEmbedder.load().embed
        model_tag = f"local-{MODEL_ID}"
    else:
        model_tag = str(
            cache_params.get("redis_semantic_cache_embedding_model") or cache_params.get("embedding_model") or "remote"
        )
    namespace = cache_params.get("namespace")
    # vectors of different models must never meet: the model is part of the shared key
    redis_key = ":".join(["llmswitch", "semantic", *([str(namespace)] if namespace else []), model_tag, "log"])
    return SemanticIndex(
        embed,
        threshold=threshold,
        ttl=ttl,
        max_entries=int(max_entries),
        redis_url=redis_url if backend == "redis" else None,
        redis_key=redis_key,
    )
