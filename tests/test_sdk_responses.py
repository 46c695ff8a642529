"""``llmswitch.responses``: OpenAI's Responses API from the SDK. An OpenAI model is called at its own
``/responses`` with the caller's body as written; any other provider answers through its chat API, the
answer written back as a Response (a stream as the Responses API's typed events)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import llmswitch
from llmswitch.testing import FakeUpstream, Reply

TOOLS = [
    {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}
]


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def bases(up: FakeUpstream) -> dict[str, str]:
    return {"openai": up.openai_base, "anthropic": up.anthropic_base, "gemini": up.gemini_base}


def ask(up: FakeUpstream, model: str, **kw: Any) -> Any:
    return llmswitch.responses(model=model, api_base=bases(up)[model.split("/")[0]], api_key="k", num_retries=0, **kw)


def test_openai_models_get_their_own_responses_endpoint_with_the_body_as_written(up: FakeUpstream) -> None:
    up.script(Reply(text="Paris", usage=(9, 1)))
    r = ask(up, "openai/gpt-4.1-mini", input="Capital of France?", instructions="One word.", store=False)
    assert r.output_text == "Paris" and r.output[0].content[0].text == "Paris"
    assert r.usage.input_tokens == 9
    [rec] = up.requests
    assert rec.path == "/v1/responses"
    assert rec.json == {
        "model": "gpt-4.1-mini",
        "input": "Capital of France?",
        "instructions": "One word.",
        "store": False,
    }


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-20250514", "gemini/gemini-2.5-flash"])
def test_other_providers_answer_as_a_response(up: FakeUpstream, model: str) -> None:
    up.script(Reply(tool_calls=[("lookup", {"q": "tides"})]))
    r = ask(up, model, input=[{"role": "user", "content": "Look up tides"}], tools=TOOLS)
    [call] = [o for o in r.output if o.type == "function_call"]
    assert call.name == "lookup" and json.loads(call.arguments) == {"q": "tides"}
    assert r.status == "completed"
    assert "/responses" not in up.requests[0].path  # the provider's own chat API


@pytest.mark.parametrize("model", ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-20250514"])
def test_a_stream_yields_typed_events_ending_in_the_completed_response(up: FakeUpstream, model: str) -> None:
    up.script(Reply(text="a b c", usage=(3, 3)))
    events = list(ask(up, model, input="letters", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "a b c"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.output_text == "a b c"


def test_an_error_status_is_the_matching_error(up: FakeUpstream) -> None:
    up.script(
        Reply(
            status=401, message="Incorrect API key provided", error_type="invalid_request_error", code="invalid_api_key"
        )
    )
    with pytest.raises(llmswitch.AuthenticationError):
        ask(up, "openai/gpt-4.1-mini", input="hi")
