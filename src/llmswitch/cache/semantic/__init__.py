"""The semantic cache's index: paraphrases of cached queries, found by embedding, checked by rule.

The exact cache calls this package through two names:

    index = build_semantic(cache_params, embed=embed_or_none, redis_url=url_or_none)
    key = await index.lookup(scope, last_user_text)     # an exact-cache entry key, or None
    await index.add(scope, last_user_text, entry_key)  # after a miss was answered and stored
    await index.aclose()

``cache_params`` are the cache's, as written in the config; the index reads LiteLLM's
``similarity_threshold``, ``ttl`` (else ``default_in_redis_ttl`` / ``default_in_memory_ttl``, else a
day, as the exact cache), ``namespace`` and ``redis_semantic_cache_embedding_model`` /
``embedding_model``, and ours: ``max_vectors`` (else ``max_entries``, else 10,000) and
``local_model`` (a path to another all-MiniLM-L6-v2 ``model.onnx``). With a ``redis_url`` the index is
shared through Redis, else it lives in this process. ``embed`` is a call to a configured embedding
deployment; ``None`` loads the local model (the ``semantic`` extra). See docs/caching.md,
"Semantic cache".
"""

from __future__ import annotations

from typing import Any

from llmswitch.cache.semantic.index import Embed, SemanticIndex
from llmswitch.errors import ConfigError

__all__ = ["DEFAULT_MAX_ENTRIES", "DEFAULT_THRESHOLD", "DEFAULT_TTL_S", "Embed", "SemanticIndex", "build_semantic"]

DEFAULT_THRESHOLD = 0.9
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_TTL_S = 24 * 3600.0  # the exact cache's default: a vector should not outlive its answer


def _number(cache_params: dict[str, Any], names: tuple[str, ...], default: float) -> float:
    for name in names:
        value = cache_params.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"cache_params.{name} must be a number, got {value!r}")
        try:
            return float(value)
        except ValueError as exc:
            raise ConfigError(f"cache_params.{name} must be a number, got {value!r}") from exc
    return default


def build_semantic(cache_params: dict[str, Any], *, embed: Embed | None, redis_url: str | None) -> SemanticIndex:
    """A semantic index as ``cache_params`` describe it: shared through Redis when ``redis_url`` is
    given, else in this process; embedding with ``embed``, else with the local model.

    Raises ``ConfigError`` (a ``ValueError``) for a value it cannot use or a local model that cannot load.
    """
    threshold = _number(cache_params, ("similarity_threshold",), DEFAULT_THRESHOLD)
    ttl = _number(cache_params, ("ttl", "default_in_redis_ttl", "default_in_memory_ttl"), DEFAULT_TTL_S)
    if ttl <= 0:
        raise ConfigError(f"cache_params.ttl must be positive, got {ttl}")
    max_entries = _number(cache_params, ("max_vectors", "max_entries", "max_size_in_memory"), DEFAULT_MAX_ENTRIES)
    if max_entries < 1 or max_entries != int(max_entries):
        raise ConfigError(f"cache_params.max_vectors must be a positive integer, got {max_entries}")

    if embed is None:
        from pathlib import Path

        from llmswitch.cache.semantic.local_model import MODEL_ID, LocalEmbedder

        local_model = cache_params.get("local_model")
        try:
            embed = LocalEmbedder.load(Path(str(local_model)) if local_model else None).embed
        except (ImportError, FileNotFoundError) as exc:
            raise ConfigError(f"the semantic cache's local model cannot load: {exc}") from exc
        model_tag = f"local-{MODEL_ID}" if not local_model else f"local-{Path(str(local_model)).name}"
    else:
        model_tag = str(
            cache_params.get("embedding_model") or cache_params.get("redis_semantic_cache_embedding_model") or "remote"
        )
    namespace = cache_params.get("namespace")
    # vectors of different models must never meet: the model is part of the shared key
    # the namespace prefixes every key, as LiteLLM's (and the exact cache's) do
    redis_key = ":".join([*([str(namespace)] if namespace else []), "llmswitch", "semantic", model_tag, "log"])
    return SemanticIndex(
        embed,
        threshold=threshold,
        ttl=ttl,
        max_entries=int(max_entries),
        redis_url=redis_url,
        redis_key=redis_key,
    )
