"""The router's settings, from LiteLLM-style keywords, a config's ``RouterSettings``, or both.

Keywords win over ``settings``; anything unset gets the router's default (LiteLLM's, where it has one).
LiteLLM Router keywords that have no meaning here are accepted and ignored (a warning names the ones
that are neither supported nor known), so a LiteLLM ``Router(...)`` call keeps working unchanged.

    >>> s = resolve_settings(None, {"routing_strategy": "least-busy", "num_retries": 3})
    >>> (s.strategy, s.num_retries, s.allowed_fails, s.cooldown_time, s.min_attempt_time)
    ('least-busy', 3, None, 5.0, 1.0)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmswitch.router.fallbacks import FallbackSpec

# LiteLLM Router keywords accepted for compatibility that change nothing here (caching, alerting,
# Redis coordination, logging, client pools: other parts of llmswitch own those, or they do not apply)
IGNORED = frozenset(
    {
        "redis_url",
        "redis_host",
        "redis_port",
        "redis_password",
        "redis_db",
        "cache_responses",
        "cache_kwargs",
        "caching_groups",
        "client_ttl",
        "polling_interval",
        "default_litellm_params",
        "set_verbose",
        "debug_level",
        "routing_strategy_args",
        "alerting_config",
        "router_general_settings",
        "assistants_config",
        "default_priority",
        "default_max_parallel_requests",
        "provider_budget_config",
        "model_group_retry_policy",
        "enable_pre_call_checks",
        "enable_tag_filtering",
        "ignore_invalid_deployments",
        "optional_pre_call_checks",
        "hidden_aliases",
    }
)

RETRY_KEYS = (
    "BadRequestErrorRetries",
    "AuthenticationErrorRetries",
    "TimeoutErrorRetries",
    "RateLimitErrorRetries",
    "ContentPolicyViolationErrorRetries",
    "InternalServerErrorRetries",
)
ALLOWED_FAILS_KEYS = tuple(k.replace("Retries", "AllowedFails") for k in RETRY_KEYS)


@dataclass(frozen=True)
class Settings:
    strategy: Any = "simple-shuffle"
    num_retries: int = 2
    timeout: float | None = None
    """The default deadline of a request, across all its attempts (seconds)."""
    stream_timeout: float | None = None
    """Per attempt of a stream, until its first content arrives, when its deployment sets none."""
    allowed_fails: int | None = None
    """Failures allowed before a deployment cools down (it does on the next one). Unset: our breaker's
    default rule with 3 (see ``breaker``); set: LiteLLM's rule, counted within the window."""
    cooldown_time: float = 5.0
    """Seconds an open breaker keeps its deployment out, and the least a 429 rests it (LiteLLM's default 5)."""
    disable_cooldowns: bool = False
    retry_after: float = 0.0
    """The least wait before any retry (LiteLLM's ``retry_after``)."""
    max_fallbacks: int = 5
    fallbacks: FallbackSpec = None
    context_window_fallbacks: FallbackSpec = None
    content_policy_fallbacks: FallbackSpec = None
    default_fallbacks: tuple[str, ...] = ()
    retry_policy: Mapping[str, int] = field(default_factory=dict)
    allowed_fails_policy: Mapping[str, int] = field(default_factory=dict)
    model_group_alias: Mapping[str, str] = field(default_factory=dict)
    hidden_aliases: frozenset[str] = frozenset()
    health_check_interval: float | None = None
    failure_rate: float = 0.5
    min_volume: int = 10
    window: float = 60.0
    max_retry_after: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_wildcard_names: int = 10_000
    """How many model names served through ``*`` deployments keep their own deployment state (the
    least recently used are forgotten)."""
    min_attempt_time: float = 1.0
    """No retry, backoff wait or fallback starts with less of the deadline left than this (or than the
    median latency of the deployment's recent answers, once it has some): the request fails as timed out instead."""
    default_timeout: float = 600.0
    """The deadline when neither the call nor ``timeout`` gives one (the SDK's default)."""
    drop_params: bool = False
    """Drop (and report) parameters a deployment cannot take instead of refusing the request (LiteLLM's
    ``litellm_settings.drop_params``); see ``llmswitch.providers.params``."""


_FIELDS = set(Settings.__dataclass_fields__) - {"strategy"}


def _policy(value: Any, keys: Iterable[str]) -> dict[str, int]:
    """A LiteLLM policy given as a mapping or as an object with one attribute per error class."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): int(v) for k, v in value.items() if v is not None}
    return {k: int(v) for k in keys if (v := getattr(value, k, None)) is not None}


def _aliases(value: Any) -> tuple[dict[str, str], frozenset[str]]:
    """``{alias: group}`` or LiteLLM's ``{alias: {"model": group, "hidden": true}}``."""
    out: dict[str, str] = {}
    hidden: set[str] = set()
    for alias, target in (value or {}).items():
        if isinstance(target, Mapping):
            out[alias] = str(target["model"])
            if target.get("hidden"):
                hidden.add(alias)
        else:
            out[alias] = str(target)
    return out, frozenset(hidden)


def resolve_settings(settings: Any, overrides: Mapping[str, Any]) -> Settings:
    """Merge a config ``RouterSettings`` (or ``None``) with keyword overrides into :class:`Settings`."""
    values: dict[str, Any] = {}
    if settings is not None:
        for name in (*_FIELDS, "routing_strategy"):
            v = getattr(settings, name, None)
            if v is not None and v != () and v != {}:
                values[name] = v
    unknown = []
    for name, v in overrides.items():
        if v is None:
            continue
        if name in _FIELDS or name in ("routing_strategy", "strategy"):
            values[name] = v
        elif name not in IGNORED:
            unknown.append(name)
    if unknown:
        warnings.warn(f"Router: ignoring unsupported settings {', '.join(sorted(unknown))}", stacklevel=3)
    strategy = values.pop("strategy", None) or values.pop("routing_strategy", None) or "simple-shuffle"
    values.pop("routing_strategy", None)
    values["retry_policy"] = _policy(values.get("retry_policy"), RETRY_KEYS)
    values["allowed_fails_policy"] = _policy(values.get("allowed_fails_policy"), ALLOWED_FAILS_KEYS)
    aliases, hidden = _aliases(values.get("model_group_alias"))
    values["model_group_alias"] = aliases
    values["hidden_aliases"] = frozenset(values.get("hidden_aliases") or ()) | hidden
    if "default_fallbacks" in values:
        values["default_fallbacks"] = tuple(values["default_fallbacks"])
    for name in (
        "timeout",
        "stream_timeout",
        "cooldown_time",
        "retry_after",
        "health_check_interval",
        "min_attempt_time",
    ):
        if name in values:
            values[name] = float(values[name])
    return Settings(strategy=strategy, **values)
