"""Form 1: LiteLLM's proxy ``config.yaml``, read unchanged.

``model_list`` entries become deployments; ``litellm_settings`` and ``router_settings`` become
:class:`RouterSettings` (``router_settings`` wins where both set a value, as in LiteLLM);
``general_settings`` becomes :class:`ServerSettings`; ``environment_variables`` are written into the
environment before any ``os.environ/NAME`` is read; ``credential_list`` entries fill the deployments
that name them with ``litellm_credential_name``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmswitch.config import litellm_keys
from llmswitch.config.auto_fields import is_auto_model as is_auto_model
from llmswitch.config.auto_fields import read_auto_router
from llmswitch.config.build import (
    COST_KEYS,
    DeploymentDraft,
    build_deployment,
    check_group_refs,
    dedupe_ids,
    read_model_info,
)
from llmswitch.config.cache_fields import read_litellm_cache
from llmswitch.config.deployment_params import warn_unknown_param
from llmswitch.config.model import Deployment, RouterSettings, ServerSettings, TelemetrySettings
from llmswitch.config.problems import KeyPath, format_key_path
from llmswitch.config.reading import Context, Invalid, Section, describe, to_text
from llmswitch.config.router_fields import LITELLM_SETTINGS, ROUTER_SETTINGS, read_router_fields, router_settings
from llmswitch.config.telemetry_fields import read_alerting, read_callbacks

MB = 1024 * 1024
EMPTY_MASTER_KEY = "an empty master key would let anyone in; remove the line to run without one"

# litellm_params read into Deployment fields; everything else is passed to the provider as `params`.
_PARAM_FIELDS = (
    "model", "api_base", "api_key", "api_version", "rpm", "tpm", "timeout", "stream_timeout", "max_retries",
    "weight", "order", "custom_llm_provider", "organization", "litellm_credential_name",
)  # fmt: skip


def read_litellm(ctx: Context, root: Section) -> tuple[list[Deployment], RouterSettings, ServerSettings]:
    _apply_environment_variables(ctx, root)
    credentials = _credentials(ctx, root)
    built: list[tuple[Deployment, DeploymentDraft]] = []
    model_list = root.raw("model_list")
    if model_list is not None and not isinstance(model_list, list):
        ctx.error(("model_list",), f"expected a list of deployments, got {describe(model_list)}")
    elif model_list is not None:
        for i, entry in enumerate(model_list):
            for draft in _drafts(ctx, ("model_list", i), entry, credentials):
                dep = build_deployment(ctx, draft)
                if dep is not None:
                    built.append((dep, draft))
    deployments = dedupe_ids(ctx, built)
    refs: list[tuple[KeyPath, str]] = []
    router, callbacks = _router(ctx, root, refs)
    server = _server(root, callbacks)
    check_group_refs(ctx, refs, deployments, set(router.model_group_alias))
    root.finish(unsupported=litellm_keys.TOP_LEVEL)
    return deployments, router, server


def _apply_environment_variables(ctx: Context, root: Section) -> None:
    env = root.section("environment_variables")
    if env is None:
        return
    for name, value in env.data.items():
        env.known.add(name)
        path = (*env.path, name)
        if value is None:
            ctx.warn(path, "no value; the variable is not set")
            continue
        try:
            ctx.env[name] = to_text(value, ctx.marks.raw.get(path))
        except Invalid as exc:
            ctx.error(path, str(exc))


def _credentials(ctx: Context, root: Section) -> dict[str, dict[str, Any]]:
    """``credential_list: [{credential_name, credential_values: {api_key, api_base, ...}}]`` by name."""
    raw = root.raw("credential_list")
    if raw is None:
        return {}
    if not isinstance(raw, list):
        ctx.error(("credential_list",), f"expected a list, got {describe(raw)}")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(raw):
        sec = Section.of(ctx, ("credential_list", i), entry)
        if sec is None:
            continue
        name = sec.text("credential_name", required=True)
        values = sec.section("credential_values")
        sec.raw("credential_info")  # descriptive only
        sec.finish()
        if name is None or values is None:
            continue
        resolved: dict[str, Any] = {}
        for key in values.data:
            if key == "api_key":
                resolved[key] = values.text(key, strict=True, secret=True)
            else:
                resolved[key] = ctx.resolve_env_deep(values.raw(key), (*values.path, key))
        out[name] = {k: v for k, v in resolved.items() if v is not None}
    return out


def _drafts(ctx: Context, path: KeyPath, entry: Any, credentials: dict[str, dict[str, Any]]) -> list[DeploymentDraft]:
    sec = Section.of(ctx, path, entry)
    if sec is None:
        return []
    model_name = sec.text("model_name", required=True)
    if not sec.has("litellm_params"):
        ctx.error(path, "missing 'litellm_params'")
        sec.finish()
        return []
    params = sec.section("litellm_params")
    info = sec.section("model_info")
    top_rpm, top_tpm = sec.integer("rpm", minimum=0), sec.integer("tpm", minimum=0)  # the Router SDK's spelling
    sec.finish()
    if params is None or info is None:
        return []
    cred_name = params.text("litellm_credential_name")
    if cred_name is not None:
        if cred_name not in credentials:
            ctx.error(
                (*params.path, "litellm_credential_name"), f"no credential named {cred_name!r} in credential_list"
            )
        else:
            params = Section(ctx, params.path, {**credentials[cred_name], **params.data})
            params.known.add("litellm_credential_name")
    model = params.text("model", required=True)
    if model_name is None or model is None:
        return []
    model_info = read_model_info(ctx, info)
    draft = DeploymentDraft(
        path=path,
        model_name=model_name,
        model=model,
        model_path=(*params.path, "model"),
        provider=params.text("custom_llm_provider"),
        provider_path=(*params.path, "custom_llm_provider") if params.has("custom_llm_provider") else None,
        api_key=params.text("api_key", strict=True, secret=True),
        fields=_fields(params, model_info.get("priority"), top_rpm, top_tpm),
        model_info=model_info,
        explicit_id=model_info.pop("id", None),
        id_path=(*info.path, "id"),
    )
    for key in COST_KEYS:  # pricing describes the deployment; LiteLLM accepts it here too
        cost = params.number(key)
        if cost is not None:
            draft.model_info.setdefault(key, cost)
    organizations = params.value("organization")
    if is_auto_model(model) and (auto_router := read_auto_router(params)) is not None:
        draft.params["router"] = auto_router  # an `auto` group's settings (llmswitch.router.auto)
    for key in params.unread():
        if key not in _PARAM_FIELDS:
            draft.params[key] = ctx.resolve_env_deep(params.data[key], (*params.path, key))
            warn_unknown_param(ctx, (*params.path, key), key, _PARAM_FIELDS)
    return _per_organization(ctx, draft, organizations, (*params.path, "organization"))


def _fields(params: Section, priority: int | None, rpm: int | None, tpm: int | None) -> dict[str, Any]:
    fields = {
        "api_base": params.text("api_base"),
        "api_version": params.text("api_version"),
        "rpm": params.integer("rpm", minimum=0),
        "tpm": params.integer("tpm", minimum=0),
        "timeout": params.number("timeout", positive=True),
        "stream_timeout": params.number("stream_timeout", positive=True),
        "max_retries": params.integer("max_retries", minimum=0),
        "weight": params.number("weight", positive=True),
        "order": params.integer("order", minimum=0),
        "priority": priority,
    }
    if fields["rpm"] is None:
        fields["rpm"] = rpm
    if fields["tpm"] is None:
        fields["tpm"] = tpm
    return {k: v for k, v in fields.items() if v is not None}


def _per_organization(ctx: Context, draft: DeploymentDraft, orgs: Any, path: KeyPath) -> list[DeploymentDraft]:
    """``organization: [org-1, org-2]`` is one deployment per organization (LiteLLM's multi-org expansion)."""
    if orgs is None:
        return [draft]
    if isinstance(orgs, str):
        draft.params["organization"] = orgs
        return [draft]
    if not isinstance(orgs, list) or not all(isinstance(o, str) and o for o in orgs) or not orgs:
        ctx.error(path, f"expected an organization id or a list of them, got {describe(orgs)}")
        return []
    return [
        replace(
            draft,
            params={**draft.params, "organization": org},
            model_info=dict(draft.model_info),
            # One id per expanded deployment: health and cooldowns are tracked by id.
            explicit_id=f"{draft.explicit_id}-{org}" if draft.explicit_id else None,
        )
        for org in orgs
    ]


def _router(ctx: Context, root: Section, refs: list[tuple[KeyPath, str]]) -> tuple[RouterSettings, dict[str, Any]]:
    """The router's settings, and the callback settings of ``litellm_settings`` (for the server's)."""
    from_litellm: dict[str, tuple[Any, KeyPath]] = {}
    from_router: dict[str, tuple[Any, KeyPath]] = {}
    callbacks: dict[str, Any] = {}
    ls, rs = root.section("litellm_settings"), root.section("router_settings")
    if ls is not None:
        from_litellm = read_router_fields(ls, LITELLM_SETTINGS, refs)
        ctx.cache = read_litellm_cache(ls)
        callbacks = read_callbacks(ls)
        ls.finish(unsupported=litellm_keys.LITELLM_SETTINGS)
    if rs is not None:
        from_router = read_router_fields(rs, ROUTER_SETTINGS, refs)
        rs.finish(unsupported=litellm_keys.ROUTER_SETTINGS)
    for name in from_litellm.keys() & from_router.keys():
        if from_litellm[name][0] != from_router[name][0]:
            where = format_key_path(from_router[name][1])
            ctx.warn(from_litellm[name][1], f"overridden by {where}, as LiteLLM does")
    merged = {**from_litellm, **from_router}
    return router_settings({name: value for name, (value, _) in merged.items()}), callbacks


def _server(root: Section, callbacks: dict[str, Any]) -> ServerSettings:
    gs = root.section("general_settings")
    if gs is None:
        return ServerSettings(telemetry=TelemetrySettings(**callbacks)) if callbacks else ServerSettings()
    values: dict[str, Any] = {
        # Strict: a missing key or URL would start the gateway without auth, or on another database.
        "master_key": gs.text("master_key", strict=True, secret=True, if_empty=EMPTY_MASTER_KEY),
        "database_url": gs.text("database_url", strict=True, secret=True),
        "database_pool_limit": gs.integer("database_connection_pool_limit", minimum=1),
        "database_connection_timeout": gs.number("database_connection_timeout", positive=True),
        # llmswitch's own: the embedded SQLite store (LiteLLM has none, and ignores keys it does not know).
        "store_path": gs.text("store_path"),
        "background_health_checks": gs.flag("background_health_checks"),
        "health_check_interval": gs.number("health_check_interval", positive=True),
        "require_shared_limits": gs.flag("require_shared_limits"),
        # LiteLLM's: GET /metrics needs a key the gateway accepts (open by default, as in LiteLLM)
        "require_auth_for_metrics_endpoint": gs.flag("require_auth_for_metrics_endpoint"),
    }
    max_mb = gs.number("max_request_size_mb", positive=True)
    if max_mb is not None:
        values["max_request_body_size"] = int(max_mb * MB)
    telemetry = {**callbacks, **read_alerting(gs)}
    if telemetry:
        values["telemetry"] = TelemetrySettings(**telemetry)
    gs.finish(unsupported=litellm_keys.GENERAL_SETTINGS)
    return ServerSettings(**{k: v for k, v in values.items() if v is not None})
