"""Two fake upstreams as the weak and strong tiers, and a gateway whose auto groups route between them.

    weak    openai/weak-model    at the weak fake      (key sk-weak-tier)
    strong  openai/strong-model  at the strong fake    (key sk-strong-tier)
    auto         the defaults (hybrid scorer, 95% quality target)
    auto-weak    strong_share 0: every request to the weak tier unless overridden
    auto-strong  strong_share 1: every request to the strong tier
    cascade      strong_share 0 with every cascade check (the user check is ``check_says_no``)

The gateway harness of tests/server (on the path: conftest.py) serves it (real sockets, official SDKs as clients).
"""

from __future__ import annotations

from typing import Any

from gateway_harness import MASTER_KEY

from llmswitch.router.auto.checks import Answer
from llmswitch.testing import FakeUpstream

WEAK_KEY = "sk-weak-tier-3f1a"
STRONG_KEY = "sk-strong-tier-9b2c"
# weak-model costs 1 µ$ a token, strong-model 10 (model_info prices: exact costs to check)
WEAK_PRICE = 1e-6
STRONG_PRICE = 1e-5


def check_says_no(request: Any, answer: Answer) -> bool:
    """The user check of the ``cascade`` group: an answer containing "NO-GOOD" fails it."""
    return "NO-GOOD" not in answer.text


def config(weak: FakeUpstream, strong: FakeUpstream, store: str, extra_groups: str = "") -> str:
    return f"""model_list:
  - model_name: weak
    litellm_params:
      model: openai/weak-model
      api_base: "{weak.openai_base}"
      api_key: {WEAK_KEY}
      input_cost_per_token: {WEAK_PRICE}
      output_cost_per_token: {WEAK_PRICE}
  - model_name: strong
    litellm_params:
      model: openai/strong-model
      api_base: "{strong.openai_base}"
      api_key: {STRONG_KEY}
      input_cost_per_token: {STRONG_PRICE}
      output_cost_per_token: {STRONG_PRICE}
  - model_name: auto
    litellm_params:
      model: auto
  - model_name: auto-weak
    litellm_params:
      model: auto
      router: {{weak: weak, strong: strong, strong_share: 0}}
  - model_name: auto-strong
    litellm_params:
      model: auto
      router: {{strong_share: 1}}
  - model_name: cascade
    litellm_params:
      model: auto
      router:
        strong_share: 0
        cascade:
          checks: [schema, tools, refusal, length, logprobs, check]
          min_logprob: -1.0
          check: auto_harness:check_says_no
{extra_groups}general_settings:
  master_key: {MASTER_KEY}
  store_path: "{store}"
"""
