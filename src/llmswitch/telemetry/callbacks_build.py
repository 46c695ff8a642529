"""Building a process's :class:`~llmswitch.telemetry.callbacks.Telemetry` from a config's callback and
alerting settings: which exporters, webhooks, custom loggers and alert channels it asks for, each left out
with a warning when its destination is not set (a LiteLLM config naming it still serves).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmswitch.errors import ConfigError
from llmswitch.telemetry.callbacks import (
    KNOWN,
    METRICS_NAMES,
    TRACE_NAMES,
    WEBHOOK_NAMES,
    Telemetry,
    callback_names,
)

if TYPE_CHECKING:
    from llmswitch.telemetry.alerts import Alerts
    from llmswitch.telemetry.callbacks_custom import CustomCallbacks

log = logging.getLogger("llmswitch.telemetry")


def build_telemetry(
    settings: Any, *, base_dir: str | None = None, env: Mapping[str, str] | None = None
) -> Telemetry | None:
    """The telemetry a config's settings (:class:`llmswitch.config.TelemetrySettings`) ask for; None when
    they ask for nothing. An unknown callback name or a missing ``otel`` extra is a :class:`ConfigError`;
    a callback or alert whose destination is not set (``LANGFUSE_*``, ``GENERIC_LOGGER_ENDPOINT``,
    ``WEBHOOK_URL``) is left out with a warning, as a LiteLLM config naming it still serves."""
    env = os.environ if env is None else env
    success = list(settings.success_callback)
    failure = list(settings.failure_callback)
    every = list(settings.callbacks)
    names = callback_names(success, failure, every)
    unknown = sorted(names - KNOWN)
    if unknown:  # the config check warned about them (by line); a config built in code is told here
        log.warning("callbacks %s are not supported yet, ignored", unknown)
        names -= set(unknown)
    from llmswitch.telemetry.traces import capture_content_from

    content = capture_content_from(settings.turn_off_message_logging, env)
    tracing = None
    langfuse_keys = env.get("LANGFUSE_PUBLIC_KEY") and env.get("LANGFUSE_SECRET_KEY")
    if names & {"langfuse", "langfuse_otel"} and not langfuse_keys:
        log.warning("callback 'langfuse' left out: set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY to export to it")
        names -= {"langfuse", "langfuse_otel"}
    if names & TRACE_NAMES:
        from llmswitch.telemetry.traces_export import build_tracing

        try:
            tracing = build_tracing(
                otel=bool(names & {"otel", "opentelemetry"}),
                langfuse=bool(names & {"langfuse", "langfuse_otel"}),
                capture_content=content,
                env=env,
            )
        except ImportError as exc:
            raise ConfigError(
                "the 'otel' and 'langfuse' callbacks need OpenTelemetry: pip install 'llmswitch[otel]'"
            ) from exc
    webhook = None
    if names & WEBHOOK_NAMES:
        url = env.get("GENERIC_LOGGER_ENDPOINT") or env.get("LLMSWITCH_CALLBACK_WEBHOOK_URL")
        if not url:
            log.warning("callback 'generic_api' left out: set GENERIC_LOGGER_ENDPOINT (the URL to POST logs to)")
        else:
            from llmswitch.telemetry.webhook import WebhookSender, parse_headers

            webhook = WebhookSender(
                url, name="webhook-logs", headers=parse_headers(env.get("GENERIC_LOGGER_HEADERS")), batched=True
            )
    in_success = callback_names(success, every) & WEBHOOK_NAMES
    in_failure = callback_names(failure, every) & WEBHOOK_NAMES
    custom = _custom(success, failure, every, base_dir)
    alerts = _alerts(settings, env)
    metrics = bool(names & METRICS_NAMES)
    if tracing is None and webhook is None and custom is None and alerts is None and not metrics:
        return None
    return Telemetry(
        tracing=tracing,
        custom=custom,
        webhook=webhook,
        webhook_on=(bool(in_success), bool(in_failure)),
        alerts=alerts,
        content=content,
        metrics=metrics,
    )


def _custom(success: list[Any], failure: list[Any], every: list[Any], base_dir: str | None) -> CustomCallbacks | None:
    paths = [n for n in (*success, *failure, *every) if isinstance(n, str) and "." in n]
    if not paths:
        return None
    from llmswitch.telemetry.callbacks_custom import CustomCallbacks, load_custom

    loaded = {p: load_custom(p, base_dir) for p in dict.fromkeys(paths)}
    on_success = [loaded[p] for p in dict.fromkeys(n for n in (*success, *every) if n in loaded)]
    on_failure = [loaded[p] for p in dict.fromkeys(n for n in (*failure, *every) if n in loaded)]
    return CustomCallbacks(on_success, on_failure)


def _alerts(settings: Any, env: Mapping[str, str]) -> Alerts | None:
    channels = [str(c).lower() for c in settings.alerting]
    if not channels:
        return None
    from llmswitch.telemetry.alerts import ALERT_TYPES, Alerts
    from llmswitch.telemetry.webhook import WebhookSender

    types = list(settings.alert_types) if settings.alert_types else sorted(ALERT_TYPES)
    unknown = [t for t in types if t not in ALERT_TYPES]
    if unknown:
        log.warning("alert_types %s are not sent by llmswitch yet (it sends %s)", unknown, sorted(ALERT_TYPES))
    made: dict[str, WebhookSender] = {}

    def sender(url: str) -> WebhookSender:
        if url not in made:
            made[url] = WebhookSender(url, name="alerts", batched=False, interval=0.2)
        return made[url]

    per_type: dict[str, list[tuple[str, WebhookSender]]] = {}
    overrides = dict(settings.alert_to_webhook_url or {})
    for channel in channels:
        if channel not in ("webhook", "slack"):
            continue  # the config check said so
        variable = "WEBHOOK_URL" if channel == "webhook" else "SLACK_WEBHOOK_URL"
        default = env.get(variable)
        for alert_type in types:
            url = overrides.get(alert_type) or default
            if url:
                per_type.setdefault(alert_type, []).append((channel, sender(str(url))))
        if not default and not overrides:
            log.warning("alerting %r left out: set %s (or general_settings.alert_to_webhook_url)", channel, variable)
    if not per_type:
        return None
    return Alerts(per_type, alert_types=types, args=settings.alerting_args)
