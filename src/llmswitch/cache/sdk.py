"""The SDK's cache: ``llmswitch.cache = llmswitch.Cache(...)``, as ``litellm.cache = litellm.Cache(...)``.

    >>> import llmswitch
    >>> llmswitch.cache = llmswitch.Cache()                      # in memory; or type="redis", host=..., port=...
    >>> llmswitch.completion("openai/gpt-4o-mini", msgs)         # doctest: +SKIP
    >>> llmswitch.completion("openai/gpt-4o-mini", msgs)._hidden_params["cache_hit"]  # doctest: +SKIP
    True

Per call, LiteLLM's ``cache={"no-cache": True, "no-store": True, "ttl": 60, "s-maxage": 30, "namespace": ...}``
and ``caching=False`` (no cache for this call). Entries are keyed by the model string, its ``api_base``
and the canonical request, exactly as the gateway keys them (see :mod:`llmswitch.cache.keys`).
"""

from __future__ import annotations

from typing import Any

from llmswitch.cache.gateway import Embed, Plan, ResponseCache, embedding_model_of, load_semantic
from llmswitch.cache.settings import settings_from_params


class Cache:
    """A response cache for ``llmswitch.completion`` / ``acompletion`` (LiteLLM's ``Cache`` keywords).

    ``type`` is ``local`` (default), ``redis`` (``host``, ``port``, ``password``, or ``url``;
    ``redis_startup_nodes`` for a cluster, ``sentinel_nodes`` + ``service_name`` for sentinels) or
    ``disk`` (``disk_cache_dir``); ``ttl`` seconds, ``namespace``, ``supported_call_types``, ``mode``
    (``default_off``: only calls passing ``cache={"use-cache": True}``) as in LiteLLM.
    """

    def __init__(
        self,
        type: str = "local",
        host: str | None = None,
        port: int | str | None = None,
        password: str | None = None,
        namespace: str | None = None,
        ttl: float | None = None,
        supported_call_types: list[str] | None = None,
        mode: Any = None,
        **params: Any,
    ) -> None:
        given = {
            "type": type,
            "host": host,
            "port": port,
            "password": password,
            "namespace": namespace,
            "ttl": ttl,
            "supported_call_types": supported_call_types,
            "mode": getattr(mode, "value", mode),  # LiteLLM's CacheMode enum, or its value
            **params,
        }
        self.settings = settings_from_params({k: v for k, v in given.items() if v is not None})
        self.response_cache = ResponseCache(self.settings)
        if self.settings.semantic:
            # the index embeds with the named model through llmswitch.aembedding, else with the local model
            model = embedding_model_of(self.settings)
            self.response_cache.semantic = load_semantic(self.settings, _sdk_embed(model) if model else None)

    async def disconnect(self) -> None:
        """Close the backend's connections (LiteLLM's ``Cache.disconnect``); the cache reconnects if used again."""
        await self.response_cache.exact.aclose()

    def close(self) -> None:
        """:meth:`disconnect` for sync code (the SDK's sync calls keep their connections on a loop of their own)."""
        from llmswitch._sync import run

        run(self.disconnect())

    def plan(self, req: Any, group: str, controls: Any) -> Plan | None:
        from llmswitch.cache.controls import read_controls

        if controls is False:
            return None
        body_cache = controls if isinstance(controls, dict) else None
        import msgspec

        keyed = msgspec.structs.replace(req, model=group)
        return self.response_cache.plan(keyed, None, read_controls(body_cache, None))


def _sdk_embed(model: str) -> Embed:
    async def embed(texts: list[str]) -> list[list[float]]:
        from llmswitch.sdk_embeddings import aembedding

        resp = await aembedding(model, list(texts))
        return [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]

    return embed
