"""What a config's cache needs installed, said before the gateway starts (``llmswitch config check`` too)."""

from __future__ import annotations

from typing import Any

from llmswitch.server.preflight import _importable

SEMANTIC_MODULE = "llmswitch.cache.semantic"


def missing_for_cache(cfg: Any) -> list[str]:
    """One line per thing the config's cache needs and this install lacks."""
    settings = getattr(cfg, "cache", None)
    if settings is None:
        return []
    out = []
    if settings.backend == "redis" and not _importable("redis"):
        out.append(f"cache type {settings.type!r} uses Redis, which needs redis-py: pip install 'llmswitch[redis]'")
    if settings.semantic and not _importable(SEMANTIC_MODULE):
        out.append(
            f"cache type {settings.type!r} needs the semantic cache ({SEMANTIC_MODULE}), which this install lacks; "
            "use type local, redis or disk"
        )
    return out
