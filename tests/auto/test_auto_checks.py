"""The cascade's checks on answers, one table per check."""

from __future__ import annotations

import asyncio

import pytest

from llmswitch import ir
from llmswitch.router.auto.checks import (
    Answer,
    answer_of_events,
    answer_of_response,
    check_length,
    check_logprobs,
    check_refusal,
    check_schema,
    check_tools,
    run_checks,
)

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
REQ = ir.Request(model="auto", messages=[])


def _json_req(kind: str = "json_schema") -> ir.Request:
    return ir.Request(model="auto", messages=[], response_format=ir.ResponseFormat(type=kind, schema=SCHEMA))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text,kind,fails",
    [
        ('{"n": 1}', "json_schema", False),
        ('{"n": "one"}', "json_schema", True),
        ("{}", "json_schema", True),
        ("not json", "json_schema", True),
        ("[1]", "json_object", True),
        ('{"any": 1}', "json_object", False),
    ],
)
def test_schema(text: str, kind: str, fails: bool) -> None:
    assert (check_schema(_json_req(kind), Answer(text=text)) is not None) == fails


def test_schema_does_not_judge_a_text_request() -> None:
    assert check_schema(REQ, Answer(text="plain")) is None


@pytest.mark.parametrize(
    "calls,fails",
    [
        ([("count", '{"n": 2}')], False),
        ([("count", '{"n": "2"}')], True),
        ([("count", "{")], True),
        ([("other", "{}")], True),
        ([], False),
    ],
)
def test_tools(calls: list[tuple[str, str]], fails: bool) -> None:
    req = ir.Request(model="auto", messages=[], tools=[ir.Tool(name="count", parameters=SCHEMA)])
    assert (check_tools(req, Answer(tool_calls=calls)) is not None) == fails


@pytest.mark.parametrize(
    "answer,fails",
    [
        (Answer(text="I'm sorry, but I can't help with that."), True),
        (Answer(text="I cannot assist with this request."), True),
        (Answer(refusal="no"), True),
        (Answer(text="", finish_reason="content_filter"), True),
        (Answer(text="Sorry for the wait: the answer is 4."), False),
        (Answer(text="The answer is 4. I can't stress this enough."), False),
    ],
)
def test_refusal(answer: Answer, fails: bool) -> None:
    assert (check_refusal(REQ, answer) is not None) == fails


def test_length_and_logprobs() -> None:
    assert check_length(REQ, Answer(finish_reason="length")) is not None
    assert check_length(REQ, Answer(finish_reason="stop")) is None
    assert check_logprobs(Answer(logprobs=[-0.1, -3.0]), -1.0) is not None  # mean -1.55
    assert check_logprobs(Answer(logprobs=[-0.1, -0.3]), -1.0) is None
    assert check_logprobs(Answer(), -1.0) is None  # none given: cannot judge


def test_answers_from_a_response_and_from_events_agree() -> None:
    lp = {"content": [{"token": "4", "logprob": -0.5}]}
    resp = ir.Response(
        id="r",
        model="m",
        choices=[
            ir.Choice(
                parts=[ir.TextPart(text="4"), ir.ToolCallPart(id="c", name="count", arguments='{"n": 4}')],
                finish_reason="tool_calls",
                logprobs=lp,
            )
        ],
    )
    events = [
        ir.StreamEvent(text="4", logprobs=lp),
        ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=0, id="c", name="count", arguments='{"n": ')]),
        ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=0, arguments="4}")]),
        ir.StreamEvent(finish_reason="tool_calls"),
    ]
    whole, streamed = answer_of_response(resp), answer_of_events(events)
    for a in (whole, streamed):
        assert (a.text, a.tool_calls, a.finish_reason, a.logprobs) == (
            "4",
            [("count", '{"n": 4}')],
            "tool_calls",
            [-0.5],
        )


def test_run_checks_reports_every_failure_and_awaits_a_user_check() -> None:
    async def says_no(req: ir.Request, a: Answer) -> bool:
        return False

    failed = asyncio.run(
        run_checks(
            REQ,
            Answer(text="x", finish_reason="length"),
            ["length", "refusal", "check"],
            min_logprob=-1.0,
            user_check=says_no,
        )
    )
    assert [name for name, _ in failed] == ["length", "check"]
