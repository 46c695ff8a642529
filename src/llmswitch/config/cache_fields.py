"""The response cache's settings in either config form: LiteLLM's ``litellm_settings.cache`` with
``cache_params``, or the native form's top-level ``cache:``.

    litellm_settings:                     # LiteLLM form
      cache: true
      cache_params: {type: redis, host: localhost, port: 6379, ttl: 600}

    cache: {type: redis, url: redis://localhost:6379/0, ttl: 600}   # native form (or `cache: true`)

Values go through :func:`llmswitch.cache.settings.settings_from_params`, the SDK's reader too; a problem
is reported at the key it concerns.
"""

from __future__ import annotations

from typing import Any

from llmswitch.config.reading import Context, Section, describe, suggest


def read_litellm_cache(ls: Section) -> Any:
    """``litellm_settings.cache`` / ``cache_params``: the :class:`~llmswitch.cache.CacheSettings`, or None."""
    enabled = ls.flag("cache")
    params = ls.section("cache_params")
    if not enabled:
        if params is not None and params.data and enabled is None:
            ls.ctx.warn((*ls.path, "cache_params"), "ignored without 'cache: true' (as LiteLLM does)", at_key=True)
        if params is not None:
            params.known.update(params.data)
        return None
    return _settings(ls.ctx, params)


def read_native_cache(ctx: Context, root: Section) -> Any:
    """The native form's ``cache: true``, ``cache: redis://...`` or ``cache: {type, url, ttl, ...}``."""
    raw = root.raw("cache")
    if raw is None or raw is False:
        return None
    if raw is True:
        return _settings(ctx, Section(ctx, ("cache",), {}))
    if isinstance(raw, str):
        url = root.text("cache", strict=True, secret=True)
        return _settings(ctx, Section(ctx, ("cache",), {"type": "redis", "url": url})) if url else None
    return _settings(ctx, Section.of(ctx, ("cache",), raw))


def _settings(ctx: Context, params: Section | None) -> Any:
    from llmswitch.cache.settings import KNOWN_KEYS, CacheSettingError, settings_from_params

    if params is None:
        return None
    values: dict[str, Any] = {}
    secret = {"password", "url", "redis_url", "sentinel_password", "qdrant_api_key"}
    for key in params.data:
        if key in secret:
            values[key] = params.text(key, strict=True, secret=True)
        else:
            values[key] = ctx.resolve_env_deep(params.raw(key), (*params.path, key))
        if key not in KNOWN_KEYS:
            ctx.warn((*params.path, key), f"unknown cache setting, ignored{suggest(key, KNOWN_KEYS)}", at_key=True)
    try:
        return settings_from_params({k: v for k, v in values.items() if v is not None}, env=ctx.env)
    except CacheSettingError as exc:
        where = (*params.path, exc.key) if exc.key in params.data else params.path
        ctx.error(where, exc.message)
        return None
    except TypeError as exc:  # a value of a shape no setting takes
        ctx.error(params.path, f"unusable cache settings: {describe(exc)}")
        return None
