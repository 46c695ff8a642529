"""LiteLLM's ``guardrails:`` list in config.yaml: read unchanged, checked at load time with the line of
each problem, and built into the gateway."""

from __future__ import annotations

import sys

import pytest

from llmswitch.config import parse_config
from llmswitch.server.serve import build_gateway

BASE = """model_list:
  - model_name: g
    litellm_params: {model: openai/gpt-4o-mini, api_key: sk-x}
"""


def test_litellm_guardrails_are_read() -> None:
    text = (
        BASE
        + """guardrails:
  - guardrail_name: pii
    litellm_params:
      guardrail: presidio
      mode: [pre_call, post_call]
      default_on: true
      pii_entities_config: {EMAIL_ADDRESS: MASK, CREDIT_CARD: BLOCK}
    guardrail_info: {description: masks personal data}
  - guardrail_name: ext
    litellm_params:
      guardrail: generic_guardrail_api
      mode: during_call
      api_base: http://127.0.0.1:9/guard
      api_key: os.environ/GUARD_KEY
"""
    )
    check = parse_config(text, "config.yaml", env={"GUARD_KEY": "gk-secret"})
    assert check.problems == [] and check.warnings == []
    assert check.config is not None
    specs = {s.name: s for s in check.config.guardrails}
    assert specs["pii"].modes == ("pre_call", "post_call") and specs["pii"].default_on
    assert specs["ext"].params["api_key"] == "gk-secret"
    gw = build_gateway(check.config)
    assert gw.guardrails is not None and [g.name for g in gw.guardrails.defaults] == ["pii"]


def test_problems_name_their_line() -> None:
    text = (
        BASE
        + """guardrails:
  - guardrail_name: a
    litellm_params: {guardrail: presidio, mode: sometimes}
  - guardrail_name: a
    litellm_params: {guardrail: presidio}
  - litellm_params: {guardrail: presidio}
"""
    )
    check = parse_config(text, "config.yaml", env={})
    assert [str(p) for p in check.problems] == [
        "config.yaml:5: guardrails[0]: guardrail 'a': mode: expected one or more of pre_call, during_call, post_call, "
        "logging_only, got sometimes",
        "config.yaml:7: guardrails[1].guardrail_name: 'a' is named twice",
        "config.yaml:9: guardrails[2]: missing 'guardrail_name'",
    ]


def test_no_guardrails_no_cost() -> None:
    check = parse_config(BASE, "config.yaml", env={})
    assert check.config is not None and check.config.guardrails == ()
    assert build_gateway(check.config).guardrails is None


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nh3", None)  # as if the guardrails extra were not installed
    text = (
        BASE
        + """guardrails:
  - guardrail_name: html
    litellm_params: {guardrail: html_sanitizer, mode: post_call}
"""
    )
    check = parse_config(text, "config.yaml", env={})
    assert [str(p) for p in check.problems] == [
        "config.yaml:5: guardrails[0]: guardrail 'html': needs nh3: pip install 'llmswitch[guardrails]'"
    ]
