"""Response caching: exact (memory, Redis, SQLite) and semantic, for the gateway and the SDK.

    >>> import llmswitch
    >>> llmswitch.cache = llmswitch.Cache(type="redis", host="localhost", port=6379, ttl=600)  # doctest: +SKIP
    >>> llmswitch.completion("openai/gpt-4o-mini", messages)  # a second identical call is a hit  # doctest: +SKIP

The gateway reads LiteLLM's ``litellm_settings.cache`` / ``cache_params`` (see docs/caching.md). Modules:
``settings`` (the config), ``keys`` (canonical keys, tenant partitions), ``controls`` (per-request
controls), ``replay`` (stored answers, streams gathered and replayed), ``exact`` and ``backends`` (storage),
``gateway`` (what a request does with the cache), ``prompt`` (the provider's prompt caching), ``sdk``.
"""

from __future__ import annotations

from llmswitch.cache.settings import CacheSettingError, CacheSettings, settings_from_params

__all__ = ["CacheSettingError", "CacheSettings", "settings_from_params"]
