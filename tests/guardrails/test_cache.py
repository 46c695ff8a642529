"""A guarded request neither reads nor writes the response cache: an answer cached for a key without
guardrails is not served to a key whose guardrails refuse the same prompt, and a guarded answer
(masked, or with values restored for its caller) is never stored."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch.testing import FakeUpstream

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))  # the gateway harness of tests/server
from gateway_harness import GROUPS, ServedGateway, gateway_config

CARD = "4111 1111 1111 1111"
GUARDRAILS = """guardrails:
  - guardrail_name: no-cards
    litellm_params: {guardrail: presidio, mode: pre_call, pii_entities_config: {CREDIT_CARD: BLOCK}}
litellm_settings:
  cache: true
"""


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[tuple[ServedGateway, FakeUpstream]]:
    with FakeUpstream() as up, ServedGateway(gateway_config(up, str(tmp_path / "s.db")) + GUARDRAILS) as served:
        yield served, up


def ask(gw: ServedGateway, key: str, text: str) -> int:
    body = {"model": GROUPS["openai"], "messages": [{"role": "user", "content": text}]}
    return gw.call("POST", "/v1/chat/completions", body, key=key).status


def test_a_guarded_request_is_not_answered_from_the_cache(gw: tuple[ServedGateway, FakeUpstream]) -> None:
    served, up = gw
    plain, careful = served.new_key(), served.new_key(guardrails=["no-cards"])
    prompt = f"is {CARD} a test card?"
    assert ask(served, plain, prompt) == 200
    assert ask(served, plain, prompt) == 200
    assert len(up.requests) == 1  # the cache is on: the second was a hit
    assert ask(served, careful, prompt) == 400  # not the cached answer
    assert ask(served, careful, "hello there") == 200
    assert ask(served, careful, "hello there") == 200
    assert len(up.requests) == 3  # guarded requests are never stored either
