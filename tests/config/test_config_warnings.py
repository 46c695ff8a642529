"""Settings llmswitch does not implement, and unknown keys, are positioned warnings: never silently ignored."""

from __future__ import annotations

from llmswitch.config import parse_config

CONFIG = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_bse: https://typo.example
      temperature: 0.1
    model_infoo: {}
litellm_settings:
  cache: true
  success_callback: ["langfuse"]
  callbacks: ["otel"]
  failure_callback: ["sentry"]
  num_retry: 3
  fallbacks: [{"gpt-4o": ["claude"]}]
router_settings:
  routing_stratgy: least-busy
  retry_policy: {RateLimitErrorRetries: 2, RateLimitErrorRetry: 3}
general_settings:
  master_key: sk-1
  alerting: ["slack"]
  ui_access_mode: admin_only
  shiny_new_thing: true
mcp_servers:
  - server_name: x
whatever: 1
"""


def warnings_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    config, problems, warnings = parse_config(text, "config.yaml", env=env or {})
    assert problems == [] and config is not None
    assert list(config.warnings) == warnings
    return [str(w) for w in warnings]


def test_unsupported_and_unknown_settings_are_each_named_with_their_line() -> None:
    assert warnings_of(CONFIG) == [
        "config.yaml:5: model_list[0].litellm_params.api_bse: unknown key, passed to the provider as is; did you mean 'api_base'?",
        "config.yaml:7: model_list[0].model_infoo: unknown key, ignored; did you mean 'model_info'?",
        "config.yaml:12: litellm_settings.failure_callback[0]: callback 'sentry' is not supported yet, ignored",
        "config.yaml:13: litellm_settings.num_retry: unknown key, ignored; did you mean 'num_retries'?",
        "config.yaml:14: litellm_settings.fallbacks[0].gpt-4o[0]: 'claude' is not a model group in this config",
        "config.yaml:16: router_settings.routing_stratgy: unknown key, ignored; did you mean 'routing_strategy'?",
        "config.yaml:17: router_settings.retry_policy.RateLimitErrorRetry: unknown error class, ignored; "
        "did you mean 'RateLimitErrorRetries'?",
        "config.yaml:21: general_settings.ui_access_mode: not supported yet, ignored",
        "config.yaml:22: general_settings.shiny_new_thing: unknown key, ignored",
        "config.yaml:23: mcp_servers: not supported yet, ignored",
        "config.yaml:25: whatever: unknown key, ignored",
    ]


def test_warnings_do_not_stop_loading_and_known_values_are_kept() -> None:
    config, _, _ = parse_config(CONFIG, "config.yaml", env={})
    assert config is not None
    (dep,) = config.deployments
    # An unknown litellm_params key is a provider parameter in LiteLLM, so it is kept (with the warning above).
    assert dict(dep.params) == {"api_bse": "https://typo.example", "temperature": 0.1}
    assert dep.api_base is None
    assert dict(config.router.retry_policy) == {"RateLimitErrorRetries": 2}
    assert config.server.master_key == "sk-1"


def test_a_missing_variable_in_an_optional_field_is_a_warning_and_leaves_it_unset() -> None:
    text = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o
      api_base: os.environ/NO_SUCH_BASE
      api_key: sk-1
      temperature: os.environ/NO_SUCH_TEMPERATURE
"""
    assert warnings_of(text) == [
        "config.yaml:5: model_list[0].litellm_params.api_base: environment variable NO_SUCH_BASE not set; left unset",
        "config.yaml:7: model_list[0].litellm_params.temperature: environment variable NO_SUCH_TEMPERATURE not set; "
        "left unset",
    ]
    config, _, _ = parse_config(text, "config.yaml", env={})
    assert config is not None and config.deployments[0].api_base is None


def test_same_deployment_twice_is_kept_with_distinct_ids() -> None:
    text = """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
"""
    assert warnings_of(text) == ["config.yaml:4: model_list[1]: same deployment as the one at line 2; both kept"]
    config, _, _ = parse_config(text, "config.yaml", env={})
    assert config is not None
    first, second = config.deployments
    assert second.id == f"{first.id}-2" and second.model_info["id"] == second.id


def test_no_deployments_is_a_warning() -> None:
    assert warnings_of("general_settings:\n  master_key: sk-1\n") == [
        "config.yaml:1: no deployments: every request will be answered 404 (model not found)"
    ]
