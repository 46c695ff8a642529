"""LiteLLM's general_settings.background_health_checks / health_check_interval are read, not warned about,
and make the gateway probe its deployments in the background."""

from __future__ import annotations

from llmswitch.config import parse_config
from llmswitch.server.serve import build_gateway

CONFIG = """
model_list:
  - model_name: g
    litellm_params: {model: openai/gpt-4o-mini, api_key: sk-x, api_base: "http://127.0.0.1:9/v1"}
general_settings:
  background_health_checks: true
  health_check_interval: 30
"""


def test_the_settings_are_read() -> None:
    check = parse_config(CONFIG)
    assert check.problems == [] and check.config is not None
    assert not [w for w in check.warnings if "health_check" in str(w)]
    assert check.config.server.background_health_checks is True
    assert check.config.server.health_check_interval == 30


def test_the_gateway_starts_and_stops_probes_with_itself() -> None:
    check = parse_config(CONFIG)
    assert check.config is not None
    with_probes = build_gateway(check.config)
    assert len(with_probes._on_startup) == 1 and len(with_probes._on_shutdown) == 1
    without = build_gateway(parse_config(CONFIG.replace("true", "false")).config)
    assert without._on_startup == [] and without._on_shutdown == []
