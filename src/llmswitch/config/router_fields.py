"""Router settings, read by table: each written key names a :class:`RouterSettings` field and a kind.

The LiteLLM form spreads router settings over ``litellm_settings`` and ``router_settings`` (the latter
wins, as in LiteLLM); the native form has one ``router:`` section with shorter names. The kinds, and so
the checks and messages, are the same for both.
"""

from __future__ import annotations

from typing import Any, Literal

from llmswitch.config.model import ROUTING_STRATEGIES, RouterSettings, frozen_mapping
from llmswitch.config.problems import KeyPath
from llmswitch.config.reading import Section, describe, suggest

Kind = Literal[
    "strategy", "count", "seconds", "seconds0", "flag", "fallbacks", "fallback_map", "groups",
    "retry_policy", "allowed_fails_policy", "native_retry_policy", "native_allowed_fails_policy",
    "aliases", "host", "port", "secret", "verify", "path",
]  # fmt: skip

LITELLM_SETTINGS: dict[str, tuple[str, Kind]] = {
    "num_retries": ("num_retries", "count"),
    "request_timeout": ("timeout", "seconds"),
    "allowed_fails": ("allowed_fails", "count"),
    "cooldown_time": ("cooldown_time", "seconds0"),
    "fallbacks": ("fallbacks", "fallbacks"),
    "context_window_fallbacks": ("context_window_fallbacks", "fallbacks"),
    "content_policy_fallbacks": ("content_policy_fallbacks", "fallbacks"),
    "default_fallbacks": ("default_fallbacks", "groups"),
    "drop_params": ("drop_params", "flag"),
    "ssl_verify": ("ssl_verify", "verify"),
    "ssl_certificate": ("ssl_certificate", "path"),
}

ROUTER_SETTINGS: dict[str, tuple[str, Kind]] = {
    "routing_strategy": ("routing_strategy", "strategy"),
    "num_retries": ("num_retries", "count"),
    "timeout": ("timeout", "seconds"),
    "stream_timeout": ("stream_timeout", "seconds"),
    "allowed_fails": ("allowed_fails", "count"),
    "cooldown_time": ("cooldown_time", "seconds0"),
    "disable_cooldowns": ("disable_cooldowns", "flag"),
    "retry_after": ("retry_after", "seconds0"),
    "min_attempt_time": ("min_attempt_time", "seconds0"),
    "max_fallbacks": ("max_fallbacks", "count"),
    "enable_pre_call_checks": ("enable_pre_call_checks", "flag"),
    "fallbacks": ("fallbacks", "fallbacks"),
    "context_window_fallbacks": ("context_window_fallbacks", "fallbacks"),
    "content_policy_fallbacks": ("content_policy_fallbacks", "fallbacks"),
    "default_fallbacks": ("default_fallbacks", "groups"),
    "retry_policy": ("retry_policy", "retry_policy"),
    "allowed_fails_policy": ("allowed_fails_policy", "allowed_fails_policy"),
    "model_group_alias": ("model_group_alias", "aliases"),
    "redis_host": ("redis_host", "host"),
    "redis_port": ("redis_port", "port"),
    "redis_password": ("redis_password", "secret"),
    "redis_url": ("redis_url", "secret"),
    "redis_db": ("redis_db", "count"),
}

NATIVE_ROUTER: dict[str, tuple[str, Kind]] = {
    "strategy": ("routing_strategy", "strategy"),
    "num_retries": ("num_retries", "count"),
    "timeout": ("timeout", "seconds"),
    "stream_timeout": ("stream_timeout", "seconds"),
    "allowed_fails": ("allowed_fails", "count"),
    "cooldown_time": ("cooldown_time", "seconds0"),
    "disable_cooldowns": ("disable_cooldowns", "flag"),
    "retry_after": ("retry_after", "seconds0"),
    "min_attempt_time": ("min_attempt_time", "seconds0"),
    "max_fallbacks": ("max_fallbacks", "count"),
    "pre_call_checks": ("enable_pre_call_checks", "flag"),
    "fallbacks": ("fallbacks", "fallback_map"),
    "context_window_fallbacks": ("context_window_fallbacks", "fallback_map"),
    "content_policy_fallbacks": ("content_policy_fallbacks", "fallback_map"),
    "default_fallbacks": ("default_fallbacks", "groups"),
    "retry_policy": ("retry_policy", "native_retry_policy"),
    "allowed_fails_policy": ("allowed_fails_policy", "native_allowed_fails_policy"),
    "aliases": ("model_group_alias", "aliases"),
    "drop_params": ("drop_params", "flag"),
}

NATIVE_REDIS: dict[str, tuple[str, Kind]] = {
    "url": ("redis_url", "secret"),
    "host": ("redis_host", "host"),
    "port": ("redis_port", "port"),
    "password": ("redis_password", "secret"),
    "db": ("redis_db", "count"),
}

# LiteLLM's exception classes, by the short names the native form uses.
ERROR_CLASSES = {
    "bad_request": "BadRequestError",
    "authentication": "AuthenticationError",
    "timeout": "TimeoutError",
    "rate_limit": "RateLimitError",
    "content_policy": "ContentPolicyViolationError",
    "internal_server": "InternalServerError",
}
RETRY_POLICY_KEYS = tuple(f"{c}Retries" for c in ERROR_CLASSES.values())
ALLOWED_FAILS_POLICY_KEYS = tuple(f"{c}AllowedFails" for c in ERROR_CLASSES.values())


def read_router_fields(
    sec: Section, table: dict[str, tuple[str, Kind]], refs: list[tuple[KeyPath, str]]
) -> dict[str, tuple[Any, KeyPath]]:
    """Read every key of ``table`` present in ``sec``: RouterSettings field -> (value, where it was written).

    Group names used as fallbacks or alias targets are appended to ``refs`` for a later check.
    """
    out: dict[str, tuple[Any, KeyPath]] = {}
    for key, (name, kind) in table.items():
        if not sec.has(key):
            continue
        for field_name, value in _read(sec, key, kind, refs).items():
            if value is not None:
                out[field_name if field_name != "_" else name] = (value, (*sec.path, key))
    return out


def _read(sec: Section, key: str, kind: Kind, refs: list[tuple[KeyPath, str]]) -> dict[str, Any]:
    path = (*sec.path, key)
    if kind == "strategy":
        value = sec.text(key)
        if value is not None and value not in ROUTING_STRATEGIES:
            sec.ctx.error(path, f"unknown routing strategy {value!r}{suggest(value, ROUTING_STRATEGIES)} "
                          f"(one of: {', '.join(ROUTING_STRATEGIES)})")  # fmt: skip
            value = None
        return {"_": value}
    if kind == "count":
        return {"_": sec.integer(key, minimum=0)}
    if kind in ("seconds", "seconds0"):
        return {"_": sec.number(key, positive=kind == "seconds")}
    if kind == "flag":
        return {"_": sec.flag(key)}
    if kind == "host":
        return {"_": sec.text(key, strict=True)}
    if kind == "port":
        return {"_": sec.integer(key, minimum=1, maximum=65535, strict=True)}
    if kind == "secret":
        return {"_": sec.text(key, strict=True, secret=True)}
    if kind == "path":
        return {"_": sec.text(key)}
    if kind == "verify":  # true / false, or the path of a CA bundle (LiteLLM's ssl_verify)
        verify: Any = sec.value(key)
        if isinstance(verify, str) and verify.strip().lower() in ("true", "false"):
            verify = verify.strip().lower() == "true"
        if not isinstance(verify, bool | str):
            sec.ctx.error(path, f"expected true, false or the path of a CA bundle, got {describe(verify)}")
            verify = None
        return {"_": verify}
    if kind == "groups":
        groups = sec.texts(key)
        refs.extend(((*path, i), g) for i, g in enumerate(groups or ()))
        return {"_": groups}
    if kind in ("fallbacks", "fallback_map"):
        return {"_": _fallbacks(sec, key, refs, litellm_shape=kind == "fallbacks")}
    if kind == "aliases":
        return _aliases(sec, key, refs)
    return {"_": _policy(sec, key, kind)}


def _fallbacks(
    sec: Section, key: str, refs: list[tuple[KeyPath, str]], *, litellm_shape: bool
) -> dict[str, tuple[str, ...]] | None:
    """LiteLLM: ``[{group: [fallback, ...]}, ...]``; native: ``{group: [fallback, ...]}``. Both -> a dict."""
    value, path = sec.value(key), (*sec.path, key)
    if litellm_shape:
        if not isinstance(value, list):
            sec.ctx.error(path, f"expected a list of {{group: [fallback groups]}} mappings, got {describe(value)}")
            return None
        entries = [((*path, i), item) for i, item in enumerate(value)]
    else:
        if not isinstance(value, dict):
            hint = " (the native form writes {group: [fallback groups]})" if isinstance(value, list) else ""
            sec.ctx.error(path, f"expected a mapping of group -> fallback groups, got {describe(value)}{hint}")
            return None
        entries = [(path, value)]
    out: dict[str, tuple[str, ...]] = {}
    for entry_path, entry in entries:
        if not isinstance(entry, dict) or not entry:
            sec.ctx.error(entry_path, f"expected a mapping {{group: [fallback groups]}}, got {describe(entry)}")
            continue
        for group, targets in entry.items():
            target_path = (*entry_path, group)
            if isinstance(targets, str) and not litellm_shape:
                targets = [targets]
            if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
                sec.ctx.error(target_path, f"expected a list of model groups, got {describe(targets)}")
                continue
            if group in out:
                sec.ctx.warn(target_path, f"fallbacks for {group!r} given twice; the first is used", at_key=True)
                continue
            refs.append((target_path, group))
            refs.extend(((*target_path, i), t) for i, t in enumerate(targets))
            out[group] = tuple(targets)
    return out


def _aliases(sec: Section, key: str, refs: list[tuple[KeyPath, str]]) -> dict[str, Any]:
    """``{alias: group}`` or LiteLLM's ``{alias: {model: group, hidden: true}}``."""
    aliases = sec.section(key)
    if aliases is None:
        return {}
    mapping: dict[str, str] = {}
    hidden: set[str] = set()
    for alias, target in aliases.data.items():
        path = (*aliases.path, alias)
        if isinstance(target, dict):
            item = Section(sec.ctx, path, target)
            model, is_hidden = item.text("model", required=True), item.flag("hidden")
            item.finish()
            if model is None:
                continue
            target, target_path = model, (*path, "model")
            if is_hidden:
                hidden.add(alias)
        else:
            target, target_path = aliases.text(alias), path
            if target is None:
                continue
        aliases.known.add(alias)
        refs.append((target_path, target))
        mapping[alias] = target
    return {"model_group_alias": mapping, "hidden_aliases": frozenset(hidden)}


def _policy(sec: Section, key: str, kind: Kind) -> dict[str, int] | None:
    """Retry / allowed-fails counts by error class; normalized to LiteLLM's key names."""
    policy = sec.section(key)
    if policy is None:
        return None
    native = kind.startswith("native_")
    suffix = "Retries" if kind.endswith("retry_policy") else "AllowedFails"
    names = {short: f"{cls}{suffix}" for short, cls in ERROR_CLASSES.items()}
    valid = set(names) if native else set(names.values())
    out: dict[str, int] = {}
    for name in policy.data:
        if name not in valid:
            continue
        count = policy.integer(name, minimum=0)
        if count is not None:
            out[names[name] if native else name] = count
    policy.finish(unsupported=(), what="error class", candidates=valid)
    return out


def router_settings(values: dict[str, Any]) -> RouterSettings:
    """Build :class:`RouterSettings` from read values (field -> value), freezing the mappings."""
    frozen: dict[str, Any] = {k: frozen_mapping(v) if isinstance(v, dict) else v for k, v in values.items()}
    return RouterSettings(**frozen)
