"""The readable rules: what each one sees in a prompt, and how their weights vote."""

from __future__ import annotations

import pytest

from llmswitch import ir
from llmswitch.router.auto import rules


def _req(text: str, **kw: object) -> ir.Request:
    return ir.Request(model="auto", messages=[ir.Message(role="user", content=[ir.TextPart(text=text)])], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text,rule",
    [
        ("Solve the equation x^2 = 9", "maths"),
        ("How many apples are left?", "maths"),
        ("Explain why the sky is blue, step by step", "reasoning"),
        ("```python\nprint(1)\n```", "code"),
        ("def add(a, b):\n    return a + b", "code"),
        ("Which is right?\nA. one\nB. two\nC. three\nD. four", "choices"),
        ("The plaintiff sued the defendant for negligence", "law"),
        ("Is it morally wrong to lie?", "ethics"),
    ],
)
def test_each_rule_fires_on_its_kind_of_prompt(text: str, rule: str) -> None:
    assert rules.read_signals(_req(text))[rule] == 1.0
    assert rules.read_signals(_req("Tell me a joke about cats"))[rule] == 0.0


def test_tools_images_long_context_and_turns() -> None:
    tool = ir.Tool(name="get_weather", parameters={"type": "object"})
    assert rules.read_signals(_req("hi", tools=[tool]))["tools"] == 1.0
    image = ir.Message(role="user", content=[ir.TextPart(text="what is this?"), ir.ImagePart(url="https://x/y.png")])
    assert rules.read_signals(ir.Request(model="auto", messages=[image]))["images"] == 1.0
    assert rules.read_signals(_req("word " * 8000))["long_context"] == 1.0
    assert rules.read_signals(_req("word " * 100))["long_context"] == 0.0
    two = [
        ir.Message(role="user", content=[ir.TextPart(text="a")]),
        ir.Message(role="user", content=[ir.TextPart(text="b")]),
    ]
    assert rules.read_signals(ir.Request(model="auto", messages=two))["multi_turn"] == 1.0


def test_length_and_digits_grow_with_the_prompt() -> None:
    short, long = rules.read_signals(_req("a b c")), rules.read_signals(_req("a b c " * 50 + " 1 2 3 4"))
    assert long["length"] > short["length"] and long["digits"] > short["digits"] == 0.0


def test_the_vote_is_the_weighted_sum_and_fired_lists_the_pushes() -> None:
    signals = {"maths": 1.0, "code": 0.0, "length": -1.0}
    weights = {"maths": 0.5, "code": 2.0, "length": 0.25}
    assert rules.rules_logit(signals, weights, bias=-1.0) == pytest.approx(-1.0 + 0.5 - 0.25)
    assert rules.fired(signals, weights) == ["maths"]


def test_keywords_are_rules_of_the_groups_own() -> None:
    assert rules.keyword_signals(_req("Review this Contract please"), {"contract": 1.0}) == {"keyword:contract": 1.0}
    assert rules.keyword_signals(_req("hello"), {"contract": 1.0}) == {}
