"""Thinking budgets <-> reasoning efforts, and the dynamic budget in each dialect."""

from __future__ import annotations

import pytest

from llmswitch import ir
from llmswitch.dialects import anthropic_messages, gemini
from llmswitch.dialects.thinking import DYNAMIC, DYNAMIC_BUDGET, effort_for_budget
from llmswitch.errors import BadRequestError

HI = [ir.Message(role="user", content=[ir.TextPart("hi")])]


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_an_effort_survives_a_trip_through_an_anthropic_budget(effort: ir.ReasoningEffort) -> None:
    body = anthropic_messages.encode_request(
        ir.Request(model="m", messages=HI, reasoning_effort=effort), model="claude-sonnet-4-5"
    )
    assert effort_for_budget(body["thinking"]["budget_tokens"]) == effort


def test_a_dynamic_budget_reaches_gemini_as_written_and_anthropic_as_the_default() -> None:
    req = ir.Request(model="m", messages=HI, thinking_budget=DYNAMIC)
    assert gemini.encode_request(req, model="gemini-2.5-flash")["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": -1,
        "includeThoughts": True,
    }
    body = anthropic_messages.encode_request(req, model="claude-sonnet-4-5")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": DYNAMIC_BUDGET}


@pytest.mark.parametrize(("budget", "ok"), [(-1, True), (0, True), (512, True), (-2, False), (-1024, False)])
def test_a_gemini_client_may_ask_for_a_dynamic_budget_but_no_other_negative_one(budget: int, ok: bool) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    body["generationConfig"] = {"thinkingConfig": {"thinkingBudget": budget}}  # type: ignore[dict-item]
    if ok:
        assert gemini.decode_request(body, model="m").thinking_budget == budget
    else:
        with pytest.raises(BadRequestError, match="thinkingBudget"):
            gemini.decode_request(body, model="m")
