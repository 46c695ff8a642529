"""Form 2: llmswitch's own config, shorter to write than LiteLLM's and normalized to the same model.

::

    models:
      gpt-4o:                          # the group clients ask for
        - provider: openai
          model: gpt-4o
          api_key: ${OPENAI_API_KEY}
        - model: azure/my-deployment   # or provider/model in one string
          api_base: https://x.openai.azure.com
          api_key: ${AZURE_API_KEY}
          weight: 2
      fast: groq/llama-3.1-8b-instant  # one deployment, written as its model string
      "anthropic/*":                   # a wildcard group; model defaults to the group name
        api_key: ${ANTHROPIC_API_KEY}
    router: {strategy: least-busy, num_retries: 2, timeout: 30, fallbacks: {gpt-4o: [fast]}}
    server: {master_key: ${LLMSWITCH_MASTER_KEY}, database: postgresql://..., max_body_mb: 32}
    redis: redis://localhost:6379/0
    cache: {type: redis, url: redis://localhost:6379/0, ttl: 600}   # the response cache (docs/caching.md)

``${NAME}`` and ``${NAME:-default}`` read the environment (``os.environ/NAME`` works too).
"""

from __future__ import annotations

from typing import Any

from llmswitch.config.build import DeploymentDraft, build_deployment, check_group_refs, dedupe_ids, read_model_info
from llmswitch.config.cache_fields import read_native_cache
from llmswitch.config.deployment_params import warn_unknown_param
from llmswitch.config.litellm_keys import DEPLOYMENT_PARAMS
from llmswitch.config.model import Deployment, RouterSettings, ServerSettings
from llmswitch.config.problems import KeyPath
from llmswitch.config.reading import Context, Section, describe
from llmswitch.config.router_fields import NATIVE_REDIS, NATIVE_ROUTER, read_router_fields, router_settings

MB = 1024 * 1024
EMPTY_MASTER_KEY = "an empty master key would let anyone in; remove the line to run without one"
TOP_LEVEL = ("models", "router", "server", "redis", "cache")


def read_native(ctx: Context, root: Section) -> tuple[list[Deployment], RouterSettings, ServerSettings]:
    built: list[tuple[Deployment, DeploymentDraft]] = []
    models = root.section("models")
    if models is not None:
        for group in models.data:
            models.known.add(group)
            for draft in _drafts(ctx, (*models.path, group), group, models.data[group]):
                dep = build_deployment(ctx, draft)
                if dep is not None:
                    built.append((dep, draft))
    deployments = dedupe_ids(ctx, built)
    refs: list[tuple[KeyPath, str]] = []
    values: dict[str, Any] = {}
    router = root.section("router")
    if router is not None:
        values.update((k, v) for k, (v, _) in read_router_fields(router, NATIVE_ROUTER, refs).items())
        router.finish()
    values.update(_redis(ctx, root))
    ctx.cache = read_native_cache(ctx, root)
    settings = router_settings(values)
    server = _server(root)
    check_group_refs(ctx, refs, deployments, set(settings.model_group_alias))
    root.finish()
    return deployments, settings, server


def _drafts(ctx: Context, path: KeyPath, group: str, value: Any) -> list[DeploymentDraft]:
    """A group holds a list of deployments, one deployment mapping, or one model string."""
    if group == "":
        ctx.error(path, "a model group name must not be empty", at_key=True)
        return []
    if isinstance(value, list):
        items = [((*path, i), item) for i, item in enumerate(value)]
        if not items:
            ctx.warn(path, "no deployments in this group")
    else:
        items = [(path, value)]
    drafts = []
    for item_path, item in items:
        if isinstance(item, str) or item is None:
            item = {"model": item} if item else {}
        elif not isinstance(item, dict):
            what = "a model string or a deployment mapping"
            ctx.error(
                item_path,
                f"expected {what if item_path != path else what + ', or a list of them'}, got {describe(item)}",
            )
            continue
        draft = _draft(ctx, item_path, group, item)
        if draft is not None:
            drafts.append(draft)
    return drafts


def _draft(ctx: Context, path: KeyPath, group: str, item: Any) -> DeploymentDraft | None:
    sec = Section.of(ctx, path, item)
    if sec is None:
        return None
    written = sec.has("model")
    # A group named like a model (`gpt-4o` with a provider, or `openai/*`) needs no model line.
    model = sec.text("model", required=True) if written else group
    provider = sec.text("provider")
    info = sec.section("info")
    model_info = read_model_info(ctx, info) if info is not None else {}
    params: dict[str, Any] = {}
    extra = sec.section("params")
    if extra is not None:
        params = {k: ctx.resolve_env_deep(v, (*extra.path, k)) for k, v in extra.data.items()}
        for key in extra.data:
            warn_unknown_param(ctx, (*extra.path, key), key)
    fields = {
        "api_base": sec.text("api_base"),
        "api_version": sec.text("api_version"),
        "rpm": sec.integer("rpm", minimum=0),
        "tpm": sec.integer("tpm", minimum=0),
        "timeout": sec.number("timeout", positive=True),
        "stream_timeout": sec.number("stream_timeout", positive=True),
        "max_retries": sec.integer("max_retries", minimum=0),
        "weight": sec.number("weight", positive=True),
        "order": sec.integer("order", minimum=0),
        "priority": sec.integer("priority"),
    }
    if fields["priority"] is None:
        fields["priority"] = model_info.get("priority")
    explicit_id = sec.text("id") or model_info.pop("id", None)
    api_key = sec.text("api_key", strict=True, secret=True)
    for key in sec.unread():
        if key in DEPLOYMENT_PARAMS:  # LiteLLM's flat spelling; this form keeps provider parameters apart
            ctx.warn(
                (*path, key),
                f"a provider parameter: write it under 'params:' (params: {{{key}: ...}}); ignored",
                at_key=True,
            )
            sec.known.add(key)
    sec.finish(candidates=DEPLOYMENT_PARAMS)
    if model is None:
        return None
    return DeploymentDraft(
        path=path,
        model_name=group,
        model=model,
        model_path=(*path, "model") if written else path,
        provider=provider,
        provider_path=(*path, "provider") if provider is not None else None,
        api_key=api_key,
        fields={k: v for k, v in fields.items() if v is not None},
        model_info=model_info,
        params=params,
        explicit_id=explicit_id,
        id_path=(*path, "id"),
    )


def _redis(ctx: Context, root: Section) -> dict[str, Any]:
    """``redis: redis://host:6379/0`` or ``redis: {url | host, port, password, db}``."""
    raw = root.raw("redis")
    if raw is None:
        return {}
    if isinstance(raw, str):
        url = root.text("redis", strict=True, secret=True)
        return {"redis_url": url} if url else {}
    sec = Section.of(ctx, ("redis",), raw)
    if sec is None:
        return {}
    values = {k: v for k, (v, _) in read_router_fields(sec, NATIVE_REDIS, []).items()}
    sec.finish()
    return values


def _server(root: Section) -> ServerSettings:
    sec = root.section("server")
    if sec is None:
        return ServerSettings()
    values: dict[str, Any] = {
        "host": sec.text("host"),
        "port": sec.integer("port", minimum=0, maximum=65535),
        "workers": sec.integer("workers", minimum=1),
        # Strict: a missing key or URL would start the gateway without auth, or on another database.
        "master_key": sec.text("master_key", strict=True, secret=True, if_empty=EMPTY_MASTER_KEY),
        "database_url": sec.text("database", strict=True, secret=True),
        "database_pool_limit": sec.integer("database_pool_limit", minimum=1),
        "database_connection_timeout": sec.number("database_connection_timeout", positive=True),
        "store_path": sec.text("store"),
        "request_timeout": sec.number("request_timeout", positive=True),
    }
    max_mb = sec.number("max_body_mb", positive=True)
    if max_mb is not None:
        values["max_request_body_size"] = int(max_mb * MB)
    sec.finish()
    if values["master_key"] == "":
        root.ctx.error(
            ("server", "master_key"), "an empty master key would let anyone in; remove the line to run without one"
        )
    return ServerSettings(**{k: v for k, v in values.items() if v is not None})
