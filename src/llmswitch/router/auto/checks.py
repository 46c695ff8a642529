"""The cascade's checks: is the weak tier's answer good enough to give, or does the strong tier answer?

Each check reads an :class:`Answer` (from a whole response, or a stream read to its end) and returns
``None`` when the answer passes, else why it fails:

    - ``schema``   the request asked for JSON (``response_format``) and the text is not JSON, or does not
                   validate against the request's JSON schema
    - ``tools``    a tool call names no offered tool, or its arguments do not fit that tool's schema
    - ``refusal``  the model refused (a refusal part, a content filter, or a refusal's usual wording)
    - ``length``   the answer stopped on the token limit
    - ``logprobs`` the provider returned log-probabilities and their mean per token is below
                   ``min_logprob`` (no log-probabilities: the check passes, it cannot judge)
    - ``check``    the user's function ``fn(request, answer) -> bool`` (or an awaitable of it) said False

    >>> a = Answer(text='{"n": 1}', finish_reason="stop")
    >>> req = ir.Request(model="auto", messages=[], response_format=ir.ResponseFormat(type="json_schema",
    ...     schema={"type": "object", "required": ["m"]}))
    >>> check_schema(req, a)
    "the answer does not fit the response schema: 'm' is a required property"
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from llmswitch import ir

__all__ = ["Answer", "answer_of_events", "answer_of_response", "check_schema", "check_tools", "run_checks"]

# the usual openings of a refusal; a model that refuses mid-answer is not caught, which errs on the side
# of giving the weak answer
_REFUSAL = re.compile(
    r"^\s*(I'm sorry,? but I (can't|cannot)|I (can't|cannot|won't|am unable to) (help|assist|comply|provide)|"
    r"I'm (not able|unable) to (help|assist)|Sorry, I (can't|cannot))",
    re.IGNORECASE,
)


@dataclass
class Answer:
    """What the checks read of an answer (the first choice)."""

    text: str = ""
    refusal: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, arguments JSON)
    finish_reason: str | None = None
    logprobs: list[float] = field(default_factory=list)
    response: ir.Response | None = None  # a whole answer's IR (a user check may read it)


def _token_logprobs(logprobs: Any) -> list[float]:
    if not isinstance(logprobs, dict):
        return []
    content = logprobs.get("content")
    if not isinstance(content, list):
        return []
    return [float(t["logprob"]) for t in content if isinstance(t, dict) and isinstance(t.get("logprob"), int | float)]


def answer_of_response(resp: ir.Response) -> Answer:
    if not resp.choices:
        return Answer(response=resp)
    c = resp.choices[0]
    refusal = "".join(p.text for p in c.parts if isinstance(p, ir.TextPart) and p.refusal)
    return Answer(
        text=c.text,
        refusal=refusal,
        tool_calls=[(t.name, t.arguments) for t in c.tool_calls],
        finish_reason=c.finish_reason,
        logprobs=_token_logprobs(c.logprobs),
        response=resp,
    )


def answer_of_events(events: Iterable[ir.StreamEvent]) -> Answer:
    """The first choice's answer, from a stream's events."""
    text: list[str] = []
    refusal: list[str] = []
    calls: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    finish = None
    logprobs: list[float] = []
    for ev in events:
        if ev.choice != 0:
            continue
        if ev.text:
            text.append(ev.text)
        if ev.refusal:
            refusal.append(ev.refusal)
        for d in ev.tool_calls or ():
            calls.setdefault(d.index, []).append(d.arguments)
            if d.name:
                names[d.index] = d.name
        if ev.finish_reason is not None:
            finish = ev.finish_reason
        if ev.logprobs:
            logprobs.extend(_token_logprobs(ev.logprobs))
    tool_calls = [(names.get(i, ""), "".join(parts)) for i, parts in sorted(calls.items())]
    return Answer("".join(text), "".join(refusal), tool_calls, finish, logprobs)


def _schema_error(schema: dict[str, Any], value: Any) -> str | None:
    try:
        import jsonschema
    except ImportError:  # the guardrails extra is not installed: only "is it JSON" is checked
        return None
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    return None if error is None else str(error.message)


def check_schema(req: ir.Request, a: Answer) -> str | None:
    rf = req.response_format
    if rf is None or rf.type == "text" or a.tool_calls:
        return None
    try:
        value = json.loads(a.text)
    except ValueError:
        return "the answer is not the JSON the request asked for"
    if rf.type == "json_object":
        return None if isinstance(value, dict) else "the answer is JSON but not an object"
    if rf.schema:
        error = _schema_error(rf.schema, value)
        if error is not None:
            return f"the answer does not fit the response schema: {error}"
    return None


def check_tools(req: ir.Request, a: Answer) -> str | None:
    tools = {t.name: t for t in req.tools or ()}
    for name, arguments in a.tool_calls:
        tool = tools.get(name)
        if tool is None:
            return f"the answer calls {name!r}, which the request does not offer"
        try:
            args = json.loads(arguments or "{}")
        except ValueError:
            return f"the arguments of the call to {name!r} are not JSON"
        if tool.parameters:
            error = _schema_error(tool.parameters, args)
            if error is not None:
                return f"the arguments of the call to {name!r} do not fit its schema: {error}"
    return None


def check_refusal(req: ir.Request, a: Answer) -> str | None:
    if a.refusal or a.finish_reason == "content_filter":
        return "the model refused"
    if not a.tool_calls and _REFUSAL.match(a.text):
        return "the model refused"
    return None


def check_length(req: ir.Request, a: Answer) -> str | None:
    return "the answer stopped on the token limit" if a.finish_reason == "length" else None


def check_logprobs(a: Answer, min_logprob: float) -> str | None:
    if not a.logprobs:
        return None
    mean = sum(a.logprobs) / len(a.logprobs)
    return f"low confidence: mean log-probability {mean:.2f} < {min_logprob:.2f}" if mean < min_logprob else None


async def run_checks(
    req: ir.Request, a: Answer, checks: Iterable[str], *, min_logprob: float, user_check: Callable[..., Any] | None
) -> list[tuple[str, str]]:
    """The checks that failed, as ``(name, why)``; every named check runs (the log shows them all)."""
    failed: list[tuple[str, str]] = []
    for name in checks:
        why: str | None = None
        if name == "schema":
            why = check_schema(req, a)
        elif name == "tools":
            why = check_tools(req, a)
        elif name == "refusal":
            why = check_refusal(req, a)
        elif name == "length":
            why = check_length(req, a)
        elif name == "logprobs":
            why = check_logprobs(a, min_logprob)
        elif name == "check" and user_check is not None:
            ok = user_check(req, a)
            if inspect.isawaitable(ok):
                ok = await ok
            why = None if ok else "the user's check failed"
        if why is not None:
            failed.append((name, why))
    return failed
