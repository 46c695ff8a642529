"""drop_params and additional_drop_params as both config forms write them, reaching the router's deployments."""

from __future__ import annotations

from llmswitch import Router
from llmswitch.config import parse_config

LITELLM = """
model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_key: k
      drop_params: true
      additional_drop_params: ["temperature", "user"]
  - model_name: strict
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_key: k
litellm_settings:
  drop_params: true
"""

NATIVE = """
models:
  claude:
    model: anthropic/claude-sonnet-4-5
    api_key: k
    params: {drop_params: true}
router:
  drop_params: true
"""


def test_litellm_form() -> None:
    check = parse_config(LITELLM)
    assert check.problems == [] and check.config is not None
    assert not [w for w in check.warnings if "drop_params" in str(w)]
    assert check.config.router.drop_params is True
    router = Router.from_config(check.config)
    assert router.settings.drop_params is True
    (claude,) = router.deployments("claude")
    assert claude.drop_params is True and claude.additional_drop_params == ("temperature", "user")
    assert not {"drop_params", "additional_drop_params"} & set(claude.params)  # never sent
    assert {"temperature", "user"} <= claude.passthrough_blockers
    (strict,) = router.deployments("strict")
    assert strict.drop_params is False and strict.additional_drop_params == ()


def test_native_form() -> None:
    check = parse_config(NATIVE)
    assert check.problems == [] and check.config is not None
    assert check.config.router.drop_params is True
    (claude,) = Router.from_config(check.config).deployments("claude")
    assert claude.drop_params is True and "drop_params" not in claude.params


def test_not_set_is_off() -> None:
    check = parse_config("model_list:\n  - model_name: a\n    litellm_params: {model: openai/gpt-4o, api_key: k}\n")
    assert check.config is not None and check.config.router.drop_params is False
    assert Router.from_config(check.config).settings.drop_params is False
