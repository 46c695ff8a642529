"""LiteLLM's callback lists and alerting settings read from config.yaml: names kept as written, a single name
taken as a list, unsupported integrations a positioned warning (the config still loads)."""

from __future__ import annotations

from llmswitch.config import TelemetrySettings, parse_config

HEAD = """model_list:
  - model_name: g
    litellm_params: {model: openai/gpt-4o-mini, api_key: sk-x}
"""


def load(text: str, env: dict[str, str] | None = None) -> tuple[TelemetrySettings, list[str]]:
    check = parse_config(HEAD + text, "config.yaml", env=env or {})
    assert check.problems == [] and check.config is not None, check.problems
    return check.config.server.telemetry, [str(w) for w in check.warnings]


def test_callback_lists_and_message_logging() -> None:
    t, warnings = load(
        """litellm_settings:
  success_callback: ["langfuse", "prometheus"]
  failure_callback: ["langfuse", "sentry"]
  callbacks: custom_callbacks.proxy_handler_instance
  turn_off_message_logging: true
"""
    )
    assert t.success_callback == ("langfuse", "prometheus")
    assert t.failure_callback == ("langfuse",)
    assert t.callbacks == ("custom_callbacks.proxy_handler_instance",)
    assert t.turn_off_message_logging is True
    assert warnings == [
        "config.yaml:6: litellm_settings.failure_callback[1]: callback 'sentry' is not supported yet, ignored"
    ]


def test_alerting_settings_with_environment_references() -> None:
    t, warnings = load(
        """general_settings:
  alerting: ["webhook", "email"]
  alert_types: ["budget_alerts"]
  alerting_args: {budget_alert_ttl: 60}
  alert_to_webhook_url:
    budget_alerts: os.environ/BUDGET_HOOK
""",
        env={"BUDGET_HOOK": "http://127.0.0.1:9/budget"},
    )
    assert t.alerting == ("webhook",)
    assert t.alert_types == ("budget_alerts",)
    assert dict(t.alerting_args) == {"budget_alert_ttl": 60}
    assert dict(t.alert_to_webhook_url) == {"budget_alerts": "http://127.0.0.1:9/budget"}
    assert warnings == [
        "config.yaml:5: general_settings.alerting[1]: alerting 'email' is not supported yet, ignored (use 'webhook' or 'slack')"
    ]


def test_nothing_set_is_nothing_on() -> None:
    t, _ = load("general_settings:\n  master_key: sk-m\n")
    assert t == TelemetrySettings() and not t.any
