"""LiteLLM's callback and alerting settings, read into :class:`TelemetrySettings`.

``litellm_settings``: ``success_callback``, ``failure_callback``, ``callbacks`` (a list, or one name) and
``turn_off_message_logging``; ``general_settings``: ``alerting``, ``alert_types``, ``alerting_args`` and
``alert_to_webhook_url``. Which names are supported is checked when the gateway is built (an unknown
callback stops it, a config check says so too).
"""

from __future__ import annotations

from typing import Any

from llmswitch.config.reading import Section, describe

# the built-in callback names llmswitch serves; a dotted name is a custom CustomLogger object
TRACE_CALLBACKS = frozenset({"otel", "opentelemetry", "langfuse", "langfuse_otel"})
WEBHOOK_CALLBACKS = frozenset({"generic_api", "generic", "webhook"})
METRICS_CALLBACKS = frozenset({"prometheus"})
SUPPORTED_CALLBACKS = TRACE_CALLBACKS | WEBHOOK_CALLBACKS | METRICS_CALLBACKS
SUPPORTED_ALERTING = frozenset({"webhook", "slack"})


def read_callbacks(ls: Section | None) -> dict[str, Any]:
    """The callback fields of ``litellm_settings`` (unset ones left out)."""
    if ls is None:
        return {}
    out: dict[str, Any] = {}
    for key in ("success_callback", "failure_callback", "callbacks"):
        names = ls.texts(key)
        if not names:
            continue
        kept = []
        for i, name in enumerate(names):
            if "." in name or name.lower() in SUPPORTED_CALLBACKS:
                kept.append(name)
            else:
                # LiteLLM has dozens of integrations: a config naming one still loads, and says so
                where = (*ls.path, key) if isinstance(ls.raw(key), str) else (*ls.path, key, i)
                ls.ctx.warn(where, f"callback {name!r} is not supported yet, ignored")
        if kept:
            out[key] = tuple(kept)
    off = ls.flag("turn_off_message_logging")
    if off is not None:
        out["turn_off_message_logging"] = off
    return out


def read_alerting(gs: Section | None) -> dict[str, Any]:
    """The alerting fields of ``general_settings`` (unset ones left out)."""
    if gs is None:
        return {}
    out: dict[str, Any] = {}
    alerting = gs.texts("alerting")
    if alerting:
        kept = []
        for i, name in enumerate(alerting):
            if name.lower() in SUPPORTED_ALERTING:
                kept.append(name)
            else:
                where = (*gs.path, "alerting") if isinstance(gs.raw("alerting"), str) else (*gs.path, "alerting", i)
                gs.ctx.warn(where, f"alerting {name!r} is not supported yet, ignored (use 'webhook' or 'slack')")
        if kept:
            out["alerting"] = tuple(kept)
    types = gs.texts("alert_types")
    if types:
        out["alert_types"] = types
    for key in ("alerting_args", "alert_to_webhook_url"):
        raw = gs.raw(key)
        if raw is None:
            continue
        if not isinstance(raw, dict):
            gs.ctx.error((*gs.path, key), f"expected a mapping, got {describe(raw)}")
            continue
        resolved = gs.ctx.resolve_env_deep(raw, (*gs.path, key))
        if key == "alert_to_webhook_url":
            resolved = {str(k): str(v) for k, v in resolved.items() if v}
        out[key] = resolved
    return out
