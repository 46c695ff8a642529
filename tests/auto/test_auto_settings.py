"""An auto group's settings: defaults, each setting's checks, and config errors at the line written."""

from __future__ import annotations

import pytest

from llmswitch.config import parse_config
from llmswitch.errors import ConfigError
from llmswitch.router.auto import auto_row, parse_settings
from llmswitch.router.auto.rules import DEFAULT_WEIGHTS
from llmswitch.router.auto.settings import CHECKS


def test_defaults() -> None:
    s = parse_settings(None)
    assert (s.weak, s.strong, s.quality_target, s.strong_share, s.threshold) == ("weak", "strong", 0.95, None, None)
    assert (s.scorer, s.cascade, s.classify) == ("hybrid", None, True)
    assert s.rules == DEFAULT_WEIGHTS


def test_rules_and_keywords_override_by_name() -> None:
    s = parse_settings({"rules": {"code": 2.0}, "keywords": {"contract": 0.5}, "rules_bias": -2})
    assert s.rules["code"] == 2.0 and s.rules["maths"] == DEFAULT_WEIGHTS["maths"]
    assert s.keywords == {"contract": 0.5} and s.rules_bias == -2.0


def test_cascade_forms() -> None:
    assert parse_settings({"cascade": True}).cascade is not None
    every = parse_settings({"cascade": {"check": "mod:fn"}}).cascade
    assert every is not None and every.checks == CHECKS and every.check == "mod:fn"
    some = parse_settings({"cascade": {"checks": ["length", "schema"], "min_logprob": -0.5}}).cascade
    assert some is not None and some.checks == ("schema", "length") and some.min_logprob == -0.5


@pytest.mark.parametrize(
    "value,message",
    [
        ({"strong_share": 1.5}, "router.strong_share must be between 0 and 1"),
        ({"quality_target": 0}, "router.quality_target must be between 0 and 1"),
        ({"strong_share": 0.2, "threshold": 0.5}, "give one of quality_target, strong_share and threshold"),
        ({"scorer": "magic"}, "router.scorer must be hybrid, rules or embedding"),
        ({"rules": {"codee": 1}}, "router.rules.codee: unknown rule"),
        ({"weak": "x", "strong": "x"}, "router.strong names the same group as router.weak"),
        ({"tiers": []}, "router.tiers: unknown setting"),
        ({"cascade": {"checks": ["vibes"]}}, "router.cascade.checks must be a list of"),
        ({"cascade": {"checks": ["check"]}}, "router.cascade.check gives no function"),
        ({"cascade": {"min_logprob": 0.5}}, "router.cascade.min_logprob must be a number <= 0"),
    ],
)
def test_bad_settings_are_named(value: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(value)


CONFIG = """model_list:
  - model_name: weak
    litellm_params: {model: openai/gpt-4o-mini, api_key: k}
  - model_name: strong
    litellm_params: {model: openai/gpt-4o, api_key: k}
  - model_name: auto
    litellm_params:
      model: auto
      router:
        weak: weak
        strong_share: %s
"""


def test_a_config_error_names_the_file_line_and_key() -> None:
    check = parse_config(CONFIG % "1.5", "config.yaml")
    assert [str(p) for p in check.problems] == [
        "config.yaml:11: model_list[2].litellm_params.router.strong_share: must be between 0 and 1, got 1.5"
    ]


def test_a_good_config_makes_an_auto_group() -> None:
    check = parse_config(CONFIG % "0.25", "config.yaml")
    assert check.problems == [] and check.config is not None
    (dep,) = [d for d in check.config.deployments if d.model_name == "auto"]
    assert dep.provider == "auto"
    assert auto_row(dep) == ("auto", {"weak": "weak", "strong_share": 0.25})
