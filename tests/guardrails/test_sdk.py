"""Guardrails in the SDK: ``llmswitch.completion(..., guardrails=[...])`` with configured guardrails,
guardrail objects or LiteLLM entries; the fake upstream records what it was sent."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import llmswitch
from llmswitch.errors import BadRequestError
from llmswitch.guardrails import GuardrailBlocked, configure
from llmswitch.guardrails.sanitize import Sanitizer
from llmswitch.testing import FakeUpstream, Reply

PROMPT = [{"role": "user", "content": "I am ann@example.com, card 4111 1111 1111 1111"}]


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    configure(
        [
            {
                "guardrail_name": "mask",
                "litellm_params": {"guardrail": "presidio", "mode": "pre_call", "output_parse_pii": True},
            },
            {
                "guardrail_name": "no-cards",
                "litellm_params": {
                    "guardrail": "presidio",
                    "mode": "pre_call",
                    "pii_entities_config": {"CREDIT_CARD": "BLOCK"},
                },
            },
        ]
    )
    try:
        with FakeUpstream() as fake:
            yield fake
    finally:
        configure(None)


def sent(up: FakeUpstream) -> str:
    body: str = json.loads(up.requests[-1].body)["messages"][0]["content"]
    return body


@pytest.mark.parametrize("stream", [False, True])
def test_named_guardrails_mask_and_restore(up: FakeUpstream, stream: bool) -> None:
    r = llmswitch.completion(
        "openai/gpt-4o-mini", PROMPT, api_base=up.openai_base, api_key="t", guardrails=["mask"], stream=stream
    )
    text = "".join(c.choices[0].delta.content or "" for c in r if c.choices) if stream else r.choices[0].message.content
    assert sent(up) == "I am <EMAIL_ADDRESS_1>, card <CREDIT_CARD_1>"
    assert text == PROMPT[0]["content"]  # output_parse_pii: the caller's own values back


def test_a_refusal_raises_before_any_call(up: FakeUpstream) -> None:
    with pytest.raises(GuardrailBlocked, match=r"no-cards.*CREDIT_CARD") as caught:
        llmswitch.completion(
            "openai/gpt-4o-mini", PROMPT, api_base=up.openai_base, api_key="t", guardrails=["no-cards"]
        )
    assert isinstance(caught.value, BadRequestError) and caught.value.status_code == 400
    assert "4111" not in str(caught.value)
    assert up.requests == []


def test_guardrail_objects_and_unknown_names(up: FakeUpstream) -> None:
    up.script(Reply(text="<b onclick='x()'>hi</b>"))
    html = Sanitizer("html", modes=frozenset({"post_call"}))
    r = llmswitch.completion("openai/gpt-4o-mini", PROMPT, api_base=up.openai_base, api_key="t", guardrails=[html])
    assert r.choices[0].message.content == "<b>hi</b>"
    with pytest.raises(BadRequestError, match="'nope'"):
        llmswitch.completion("openai/gpt-4o-mini", PROMPT, api_base=up.openai_base, api_key="t", guardrails=["nope"])


def test_without_guardrails_nothing_changes(up: FakeUpstream) -> None:
    llmswitch.completion("openai/gpt-4o-mini", PROMPT, api_base=up.openai_base, api_key="t")
    assert sent(up) == PROMPT[0]["content"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_during_call_guardrail_refuses_in_the_sdk(up: FakeUpstream, stream: bool) -> None:
    falcon = {
        "guardrail_name": "falcon",
        "litellm_params": {"guardrail": "banned_keywords", "mode": "during_call", "banned_keywords_list": ["falcon"]},
    }
    up.script(Reply(latency=0.2))
    with pytest.raises(GuardrailBlocked, match="falcon"):
        r = llmswitch.completion(
            "openai/gpt-4o-mini",
            [{"role": "user", "content": "about falcon"}],
            api_base=up.openai_base,
            api_key="t",
            guardrails=[falcon],
            stream=stream,
        )
        if stream:
            list(r)
