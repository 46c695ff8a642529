"""Round trips of the batch dialects as properties (hypothesis), and Anthropic results that carry more
than text (tool calls, thinking) translated to OpenAI's chat.completion."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmswitch.dialects import batch_anthropic, batch_gemini, batch_openai

ids = st.text(min_size=1, max_size=80)


@given(st.lists(ids, min_size=1, max_size=30))
def test_native_ids_are_anthropic_valid_unique_and_keep_valid_ids(custom_ids: list[str]) -> None:
    out = batch_anthropic.native_ids(custom_ids)
    assert len(out) == len(custom_ids) and len(set(out)) == len(out)
    assert all(batch_anthropic._CUSTOM_ID.match(n) for n in out)
    first_valid: dict[str, int] = {}
    for i, cid in enumerate(custom_ids):
        if batch_anthropic._CUSTOM_ID.match(cid):
            first_valid.setdefault(cid, i)
    assert all(out[i] == cid for cid, i in first_valid.items())


tokens = st.integers(min_value=0, max_value=10**6)


@given(ids, st.sampled_from([200, 400, 401, 429, 500]), tokens, tokens, st.text(max_size=40))
def test_output_lines_round_trip(custom_id: str, status: int, prompt: int, completion: int, text: str) -> None:
    if status == 200:
        body: dict[str, Any] = {"id": "c", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                                "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}  # fmt: skip
    else:
        body = {"error": {"message": text, "type": "invalid_request_error", "param": None, "code": None}}
    line = {
        "id": "l",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": "r", "body": body},
        "error": None,
    }
    wire = json.loads(json.dumps(line))
    answer = batch_openai.decode_output_line(wire, url="/v1/chat/completions")
    assert batch_openai.encode_output_line(answer, line_id="l", request_id="r") == line
    if status == 200:
        assert answer.usage is not None and (answer.usage.input_tokens, answer.usage.output_tokens) == (
            prompt,
            completion,
        )
    else:
        assert answer.usage is None


@given(st.lists(ids, min_size=1, max_size=10, unique=True), st.sampled_from(["expired", "cancelled", "failed"]))
def test_lines_never_run_round_trip_as_openai_writes_them(custom_ids: list[str], why: str) -> None:
    for cid in custom_ids:
        answer = batch_openai.not_run(cid, why)
        line = batch_openai.encode_output_line(answer, line_id="x", request_id="r")
        assert line["response"] is None and line["error"]["code"] == answer.body["error"]["code"]
        back = batch_openai.decode_output_line(line, url="/v1/chat/completions")
        assert (back.custom_id, back.status_code, back.body["error"]["code"]) == (
            cid,
            answer.status_code,
            line["error"]["code"],
        )


@given(st.lists(ids, min_size=1, max_size=5, unique=True), st.text(max_size=50))
def test_gemini_request_metadata_round_trips(custom_ids: list[str], text: str) -> None:
    body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": text or "x"}]}
    requests = [
        batch_gemini.encode_request(c, batch_gemini.decode_line(body), model="gemini-2.5-flash") for c in custom_ids
    ]
    responses = [{"response": {"candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}]},
                  "metadata": r["metadata"]} for r in requests]  # fmt: skip
    op = {
        "name": "batches/b",
        "done": True,
        "response": {"inlinedResponses": {"inlinedResponses": json.loads(json.dumps(responses))}},
    }
    got = [batch_gemini.custom_id_of(item) for item in batch_gemini.inlined_responses(op)]
    assert got == custom_ids


def test_anthropic_tool_use_and_thinking_results() -> None:
    message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "Need the weather.", "signature": "sig=="},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 12, "cache_read_input_tokens": 10, "service_tier": "batch"},
    }  # fmt: skip
    answer = batch_anthropic.decode_result_line(
        {"custom_id": "t", "result": {"type": "succeeded", "message": message}}, created=1
    )
    choice = answer.body["choices"][0]
    assert answer.status_code == 200 and choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "toolu_1" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert choice["message"]["content"] == "Checking."
    assert choice["message"]["reasoning_content"] == "Need the weather."
    # normal form: cache reads are input; the core prices them at batch rates
    assert answer.usage is not None and answer.usage.input_tokens == 40 and answer.usage.cache_read_tokens == 10
