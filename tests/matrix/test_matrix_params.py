"""The policy for parameters a deployment cannot take (issue 14, section 1), from every client to every family.

Each case is a parameter written as its client writes it, to a family that cannot take it:

- to an ``m-`` deployment: a 400 in the client's own error format naming the client's own field, and
  nothing reached the upstream;
- to a ``d-`` deployment (``drop_params`` on it) and with ``drop_params`` in the call: a 200, the drop
  reported (``x-llmswitch-dropped-params``, the SDK's ``_hidden_params``), and an upstream body without
  it, valid by the provider's spec (and without ``drop_params`` itself).

Then what has a meaning elsewhere is mapped, not refused: thinking budgets and efforts.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness import Ask, ServedGateway, ask, dropped, the_request

from llmswitch.testing import FakeUpstream, Reply

PROMPT = "Name a colour."


def with_params(client: str, params: dict[str, Any]) -> Ask:
    """A one-message request carrying ``params`` as ``client`` writes them."""
    if client == "gemini":
        return Ask(gemini={"contents": PROMPT, "config": params})
    if client == "anthropic":
        return Ask(
            anthropic={"max_tokens": 256, "messages": [{"role": "user", "content": PROMPT}], "extra_body": params}
        )
    form = {"messages": [{"role": "user", "content": PROMPT}], "extra_body": params}
    return Ask(openai=form) if client == "openai" else Ask(sdk=form)


# (client, family, the parameter as the client writes it, the client's name for it, the key that must not
# reach the upstream body)
CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("openai", "openai", {"top_k": 40}, "top_k", "top_k"),
    ("openai", "anthropic", {"logit_bias": {"50256": -100}}, "logit_bias", "logit_bias"),
    ("openai", "anthropic", {"store": True}, "store", "store"),
    ("openai", "anthropic", {"prediction": {"type": "content", "content": "Red"}}, "prediction", "prediction"),
    ("openai", "gemini", {"service_tier": "flex"}, "service_tier", "service_tier"),
    ("openai", "gemini", {"safety_identifier": "user-1"}, "safety_identifier", "safety_identifier"),
    ("openai", "ollama", {"store": True}, "store", "store"),
    ("openai", "ollama", {"n": 2}, "n", "n"),
    ("sdk", "openai", {"top_k": 40}, "top_k", "top_k"),
    ("sdk", "anthropic", {"seed": 7}, "seed", "seed"),
    ("sdk", "gemini", {"store": True}, "store", "store"),
    ("sdk", "ollama", {"logit_bias": {"50256": -100}}, "logit_bias", "logit_bias"),
    ("anthropic", "openai", {"top_k": 5}, "top_k", "top_k"),
    ("anthropic", "gemini", {"service_tier": "standard_only"}, "service_tier", "service_tier"),
    ("anthropic", "ollama", {"service_tier": "standard_only"}, "service_tier", "service_tier"),
    ("gemini", "openai", {"top_k": 40}, "generationConfig.topK", "top_k"),
    ("gemini", "anthropic", {"candidate_count": 2}, "generationConfig.candidateCount", "n"),
    ("gemini", "anthropic", {"seed": 7}, "generationConfig.seed", "seed"),
    ("gemini", "ollama", {"candidate_count": 2}, "generationConfig.candidateCount", "n"),
]


def cases() -> list[Any]:
    return [
        pytest.param(client, family, params, field, key, id=f"{client}-{field}-to-{family}")
        for client, family, params, field, key in CASES
    ]


def sent_keys(family: str, body: dict[str, Any]) -> set[str]:
    """The body's keys, with Gemini's generationConfig fields by their OpenAI names where they differ."""
    if family != "gemini":
        return set(body)
    names = {"candidateCount": "n", "topK": "top_k", "seed": "seed"}
    return set(body) | {names.get(k, k) for k in body.get("generationConfig") or {}}


@pytest.mark.parametrize(("client", "family", "params", "field", "key"), cases())
def test_refused_naming_the_callers_field(
    gw: ServedGateway, up: FakeUpstream, client: str, family: str, params: dict[str, Any], field: str, key: str
) -> None:
    seen = ask(client, f"m-{family}", with_params(client, params), gw=gw, up=up)
    assert seen.status == 400, seen
    assert f"'{field}'" in seen.error
    assert f"m-{family}" in seen.error or client == "sdk"  # the deployment is named (the SDK's: its model)
    assert up.requests == []


@pytest.mark.parametrize("where", ["deployment", "call"])
@pytest.mark.parametrize(("client", "family", "params", "field", "key"), cases())
def test_dropped_and_reported(
    gw: ServedGateway,
    up: FakeUpstream,
    client: str,
    family: str,
    params: dict[str, Any],
    field: str,
    key: str,
    where: str,
) -> None:
    up.script(Reply(text="Red."))
    group = f"d-{family}" if where == "deployment" else f"m-{family}"
    seen = ask(client, group, with_params(client, params), gw=gw, up=up, drop=where == "call")
    assert seen.status == 200, seen.error
    assert seen.text == "Red."
    assert dropped(seen) == {field}
    body = the_request(up, family).json
    assert key not in sent_keys(family, body)
    assert "drop_params" not in body


# ---------------------------------------------------------------- mapped where it has a meaning

THINKING: list[tuple[str, dict[str, Any]]] = [
    ("anthropic", {"thinking": {"type": "enabled", "budget_tokens": 4096}}),
    ("gemini", {"thinking_config": {"thinking_budget": 4096}}),
]


def thinking_sent(family: str, body: dict[str, Any]) -> Any:
    if family == "openai":
        return body.get("reasoning_effort"), "thinking" in body
    if family == "anthropic":
        return body.get("thinking"), body["max_tokens"] > body.get("thinking", {}).get("budget_tokens", 0)
    return ((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get("thinkingBudget")


@pytest.mark.parametrize(("client", "params"), THINKING, ids=[c for c, _ in THINKING])
@pytest.mark.parametrize("family", ["openai", "anthropic", "gemini"])
def test_a_thinking_budget_is_mapped_not_refused(
    gw: ServedGateway, up: FakeUpstream, client: str, params: dict[str, Any], family: str
) -> None:
    up.script(Reply(text="Red.", reasoning="Colours…"))
    ask_ = with_params(client, params)
    if client == "anthropic":
        assert ask_.anthropic is not None
        ask_.anthropic["max_tokens"] = 8192
        ask_.anthropic.update(ask_.anthropic.pop("extra_body"))
    seen = ask(client, f"m-{family}", ask_, gw=gw)
    assert seen.status == 200, seen.error
    expected = {
        "openai": ("medium", False),  # 4096 tokens: a medium effort
        "anthropic": ({"type": "enabled", "budget_tokens": 4096}, True),
        "gemini": 4096,
    }[family]
    assert thinking_sent(family, the_request(up, family).json) == expected


@pytest.mark.parametrize("family", ["openai", "anthropic"])
def test_geminis_dynamic_budget_has_a_meaning_everywhere(gw: ServedGateway, up: FakeUpstream, family: str) -> None:
    """``thinkingBudget: -1`` (the model decides) is never sent as a budget of -1."""
    up.script(Reply(text="Red."))
    seen = ask("gemini", f"m-{family}", with_params("gemini", {"thinking_config": {"thinking_budget": -1}}), gw=gw)
    assert seen.status == 200, seen.error
    sent = thinking_sent(family, the_request(up, family).json)
    assert sent == (("medium", False) if family == "openai" else ({"type": "enabled", "budget_tokens": 4096}, True))


@pytest.mark.parametrize("family", ["anthropic", "gemini"])
@pytest.mark.parametrize("client", ["openai", "sdk"])
def test_an_effort_becomes_a_budget(gw: ServedGateway, up: FakeUpstream, client: str, family: str) -> None:
    up.script(Reply(text="Red."))
    form = {"messages": [{"role": "user", "content": PROMPT}], "reasoning_effort": "high", "max_tokens": 16000}
    seen = ask(client, f"m-{family}", Ask(openai=form), gw=gw, up=up)
    assert seen.status == 200, seen.error
    body = the_request(up, family).json
    assert "reasoning_effort" not in body
    if family == "anthropic":
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    else:
        # Gemini 2.5's own high budget (the largest every 2.5 model takes)
        assert body["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 24576
