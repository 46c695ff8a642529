"""Shared by both forms: a read deployment becomes a :class:`Deployment` (provider resolved, stable id),
and the checks that need the whole config (duplicate ids, fallback and alias targets).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from llmswitch.config.model import ANY_PROVIDER, Deployment, frozen_mapping
from llmswitch.config.problems import KeyPath
from llmswitch.config.reading import Context, Section, suggest
from llmswitch.errors import ConfigError

COST_KEYS = ("input_cost_per_token", "output_cost_per_token", "input_cost_per_second", "output_cost_per_second")


def provider_of(model: str, provider: str | None = None) -> tuple[str, str]:
    """(canonical provider name, provider's model id), by name only: no provider module is imported.

    Follows ``llmswitch.providers.resolve_model`` (same registry, aliases and bare-name rules) but stops at
    the name, so checking a config never imports provider code.

    >>> provider_of("groq/llama-3.3-70b-versatile"), provider_of("my-dep", "azure"), provider_of("gpt-4o")
    (('groq', 'llama-3.3-70b-versatile'), ('azure', 'my-dep'), ('openai', 'gpt-4o'))
    """
    from llmswitch.providers import BARE_MODEL_PREFIXES, known_providers
    from llmswitch.providers.presets import ALIASES

    known = set(known_providers())
    listed = f"(known: {', '.join(sorted(known))})"
    if provider is not None:
        name = ALIASES.get(provider, provider)
        if name not in known:
            raise ConfigError(f"unknown provider {provider!r}{suggest(provider, known)} {listed}")
        prefix, sep, rest = model.partition("/")
        if sep and rest and ALIASES.get(prefix, prefix) == name:
            model = rest
        return name, model
    if model == "*":
        return ANY_PROVIDER, "*"
    if model == "auto" or model.startswith(
        "auto/"
    ):  # an `auto` group routes between other groups (llmswitch.router.auto)
        return "auto", model
    prefix, sep, rest = model.partition("/")
    if sep and rest and ALIASES.get(prefix, prefix) in known:
        return ALIASES.get(prefix, prefix), rest
    for starts, name in BARE_MODEL_PREFIXES:
        if model.startswith(starts):
            return name, model
    if sep and rest:
        raise ConfigError(f"unknown provider {prefix!r} in model {model!r}{suggest(prefix, known)} {listed}")
    raise ConfigError(f"cannot tell the provider of model {model!r}: write it as 'provider/model'")


def stable_id(d: DeploymentDraft, provider: str, model: str) -> str:
    """A hash of what identifies the upstream; rpm, weight and the like may change without a new identity."""
    key = hashlib.sha256(d.api_key.encode()).hexdigest() if d.api_key else None
    fields = d.fields
    blob = [d.model_name, provider, model, fields.get("api_base"), fields.get("api_version"), key, d.params]
    text = json.dumps(blob, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class DeploymentDraft:
    """A deployment as read from either form, before its provider is resolved."""

    path: KeyPath
    model_name: str
    model: str
    model_path: KeyPath
    provider: str | None = None
    provider_path: KeyPath | None = None
    api_key: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    """api_base, api_version, rpm, tpm, timeout, stream_timeout, max_retries, weight, order, priority."""
    model_info: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    explicit_id: str | None = None
    id_path: KeyPath | None = None


def build_deployment(ctx: Context, d: DeploymentDraft) -> Deployment | None:
    try:
        provider, model = provider_of(d.model, d.provider)
    except ConfigError as exc:
        ctx.error(d.provider_path if d.provider_path is not None else d.model_path, str(exc))
        return None
    stars_in_model, stars_in_name = model.count("*"), d.model_name.count("*")
    if stars_in_model > stars_in_name:
        ctx.error(
            d.model_path,
            f"model {d.model!r} has more '*' than model_name {d.model_name!r}; "
            "each '*' in the model is filled from a '*' in the requested name",
        )
        return None
    pos = ctx.marks.value_at(d.path)
    dep_id = d.explicit_id or stable_id(d, provider, model)
    # model_info always carries the id (LiteLLM's /model/info shows it) and the priority, whichever form set them.
    info = {**d.model_info, "id": dep_id}
    if d.fields.get("priority") is not None:
        info["priority"] = d.fields["priority"]
    return Deployment(
        id=dep_id,
        model_name=d.model_name,
        provider=provider,
        model=model,
        api_key=d.api_key,
        model_info=frozen_mapping(info),
        params=frozen_mapping(d.params),
        source=f"{ctx.file}:{pos[0]}" if pos else ctx.file,
        **d.fields,
    )


def read_model_info(ctx: Context, info: Section) -> dict[str, Any]:
    """Free-form metadata; the well-known keys are type-checked, the rest kept as written."""
    out: dict[str, Any] = {}
    for key in ("max_tokens", "max_input_tokens", "max_output_tokens"):
        out[key] = info.integer(key, minimum=0)
    for key in COST_KEYS:
        out[key] = info.number(key)
    for key in ("id", "mode", "base_model"):
        out[key] = info.text(key)
    out["priority"] = info.integer("priority")
    for key in info.unread():
        out[key] = ctx.resolve_env_deep(info.data[key], (*info.path, key))
    return {k: v for k, v in out.items() if v is not None}


def dedupe_ids(ctx: Context, built: list[tuple[Deployment, DeploymentDraft]]) -> list[Deployment]:
    """Explicit ids must be unique (error); identical deployments written twice get distinct ids (warning)."""
    seen: dict[str, DeploymentDraft] = {}
    out: list[Deployment] = []
    for dep, draft in built:
        if dep.id in seen:
            first = seen[dep.id]
            first_line = (ctx.marks.value_at(first.path) or ("?",))[0]
            if draft.explicit_id is not None:
                where = draft.id_path or draft.path
                ctx.error(where, f"duplicate deployment id {dep.id!r} (first at line {first_line})")
                continue
            ctx.warn(draft.path, f"same deployment as the one at line {first_line}; both kept")
            n = 2
            while f"{dep.id}-{n}" in seen:
                n += 1
            new_id = f"{dep.id}-{n}"
            dep = replace(dep, id=new_id, model_info=frozen_mapping({**dep.model_info, "id": new_id}))
        seen[dep.id] = draft
        out.append(dep)
    return out


def check_group_refs(
    ctx: Context, refs: list[tuple[KeyPath, str]], deployments: list[Deployment], aliases: set[str]
) -> None:
    """Warn when a fallback or alias names no model group, deployment id, alias or wildcard match.

    A warning, not an error: LiteLLM starts with such a config, and the name may be added later at run time.
    """
    names = {d.model_name for d in deployments} | {d.id for d in deployments} | aliases
    wild = [d for d in deployments if d.is_wildcard]
    for path, name in refs:
        if name in names or any(d.model_for(name) is not None for d in wild):
            continue
        ctx.warn(path, f"{name!r} is not a model group in this config{suggest(name, names)}")
