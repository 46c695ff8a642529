"""The quickstart, offline, on a real local model: SmolLM2-135M-Instruct run in-process by llama.cpp.

Greedy decoding (``temperature=0``) makes the answers repeatable, so whole and streamed answers can be
compared token for token. What a 135M-parameter model says is not checked for being right: that it is
a real answer from the model (its chat template, its tokenizer's counts, its end-of-turn) is.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import llmswitch
from llmswitch.errors import (
    APITimeoutError,
    ConfigError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
)
from llmswitch.local.runtime import LoadOptions, loaded_model

MODEL = "llamacpp/smollm2-135m-instruct"
QUICKSTART = [{"role": "user", "content": "What is 4200 + 42?"}]
GREEDY: dict[str, Any] = {"temperature": 0, "max_tokens": 40, "num_retries": 0}

pytestmark = pytest.mark.slow


def text_of(chunks: list[Any]) -> str:
    return "".join(ch.delta.content or "" for c in chunks for ch in c.choices)


def test_the_quickstart_is_answered_whole_and_streamed_alike(demo_model_file: Path) -> None:
    r = llmswitch.completion(model=MODEL, messages=QUICKSTART, **GREEDY)
    answer = r.choices[0].message.content
    assert answer and answer.strip()
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.model == "smollm2-135m-instruct"
    # the chat template wraps the question in ChatML: more tokens than the question alone
    assert r.usage.prompt_tokens > 12
    assert 0 < r.usage.completion_tokens <= GREEDY["max_tokens"]
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    chunks = list(
        llmswitch.completion(
            model=MODEL, messages=QUICKSTART, stream=True, stream_options={"include_usage": True}, **GREEDY
        )
    )
    assert text_of(chunks) == answer
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(1 for c in chunks for ch in c.choices if ch.delta.content) > 1  # token by token, not all at once
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == [r.choices[0].finish_reason]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (r.usage.prompt_tokens, r.usage.completion_tokens)


def test_max_tokens_ends_the_answer_with_length(demo_model_file: Path) -> None:
    r = llmswitch.completion(model=MODEL, messages=QUICKSTART, **{**GREEDY, "max_tokens": 3})
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3


def test_a_stop_sequence_cuts_the_answer_before_it(demo_model_file: Path) -> None:
    full = llmswitch.completion(model=MODEL, messages=QUICKSTART, **GREEDY).choices[0].message.content
    assert full is not None
    words = full.split()
    assert len(words) >= 3, full
    stop = " " + words[2]
    r = llmswitch.completion(model=MODEL, messages=QUICKSTART, stop=[stop], **GREEDY)
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == full[: full.index(stop)]


def test_response_format_json_schema_constrains_the_answer(demo_model_file: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"sum": {"type": "integer"}, "unit": {"type": "string", "enum": ["apples", "pears"]}},
        "required": ["sum", "unit"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "Sum", "schema": schema, "strict": True}}
    r = llmswitch.completion(model=MODEL, messages=QUICKSTART, response_format=fmt, **{**GREEDY, "max_tokens": 60})
    value = json.loads(r.choices[0].message.content or "")
    assert set(value) == {"sum", "unit"}
    assert isinstance(value["sum"], int)
    assert value["unit"] in ("apples", "pears")


def test_a_named_tool_choice_gets_a_call_with_arguments_for_its_schema(demo_model_file: Path) -> None:
    add = {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    }
    r = llmswitch.completion(
        model=MODEL,
        messages=QUICKSTART,
        tools=[add],
        tool_choice={"type": "function", "function": {"name": "add"}},
        **{**GREEDY, "max_tokens": 60},
    )
    (call,) = r.choices[0].message.tool_calls or []
    assert call.function.name == "add"
    args = json.loads(call.function.arguments)
    assert isinstance(args["a"], int) and isinstance(args["b"], int)
    assert r.choices[0].finish_reason == "tool_calls"


def test_a_missing_model_file_is_a_not_found_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model.gguf"
    with pytest.raises(NotFoundError) as caught:
        llmswitch.completion(model=f"llamacpp/{missing}", messages=QUICKSTART, num_retries=0)
    assert str(missing) in str(caught.value)
    assert caught.value.provider == "llamacpp"
    with pytest.raises(NotFoundError, match=str(missing)):
        llmswitch.completion(model="llamacpp/whatever", model_path=str(missing), messages=QUICKSTART)


def test_a_file_that_is_not_a_model_is_an_error_naming_it(demo_model_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"this is not a GGUF file")
    with pytest.raises(InternalServerError, match=f"could not load the model file {bad}"):
        llmswitch.completion(model=f"llamacpp/{bad}", messages=QUICKSTART, num_retries=0)


def test_a_prompt_longer_than_the_context_window_is_a_context_window_error(demo_model_file: Path) -> None:
    long = [{"role": "user", "content": "word " * 300}]
    with pytest.raises(ContextWindowExceededError, match="exceed context window of 256"):
        llmswitch.completion(model=MODEL, messages=long, n_ctx=256, num_retries=0)
    with pytest.raises(ConfigError, match="n_ctx must be at least 256"):
        llmswitch.completion(model=MODEL, messages=long, n_ctx=64, num_retries=0)


def test_concurrent_requests_take_turns_on_one_thread_and_the_loop_stays_free(demo_model_file: Path) -> None:
    asyncio.run(_concurrent(demo_model_file))


async def _concurrent(demo_model_file: Path) -> None:
    prompts = ["What is 4200 + 42?", "Name a colour.", "Say hello."]

    async def ask(text: str) -> Any:
        return await llmswitch.acompletion(
            model=MODEL, messages=[{"role": "user", "content": text}], **{**GREEDY, "max_tokens": 16}
        )

    alone = [await ask(p) for p in prompts]
    model = loaded_model(LoadOptions(str(demo_model_file)))
    busy_seen = 0
    tasks = [asyncio.create_task(ask(p)) for p in prompts]
    while not all(t.done() for t in tasks):
        # this coroutine runs while the model generates: generation is off the event loop
        busy_seen += model._active is not None
        await asyncio.sleep(0.005)
    together = [t.result() for t in tasks]
    assert busy_seen > 0
    # one at a time on one context: each answer is what it was alone, to the token
    assert [r.choices[0].message.content for r in together] == [r.choices[0].message.content for r in alone]
    assert [r.usage.completion_tokens for r in together] == [r.usage.completion_tokens for r in alone]
    assert len(model._worker._threads) == 1  # other tests' models have threads of their own


def test_a_stream_left_early_stops_generating_and_the_next_request_is_served(demo_model_file: Path) -> None:
    asyncio.run(_left_early(demo_model_file))


async def _left_early(demo_model_file: Path) -> None:
    model = loaded_model(LoadOptions(str(demo_model_file)))
    body = {"model": "m", "messages": [{"role": "user", "content": "Write a long story."}], "max_tokens": 400}
    stream = model.stream(body)
    for _ in range(3):
        assert await stream.next() is not None
    stream.close()
    r = await model.complete({"model": "m", "messages": QUICKSTART, "max_tokens": 4, "temperature": 0})
    assert r["usage"]["completion_tokens"] == 4
    assert stream._run.sampled < 400  # generation stopped soon after the reader left


def test_a_timeout_stops_the_request_and_frees_the_model(demo_model_file: Path) -> None:
    asyncio.run(_timed_out())


async def _timed_out() -> None:
    story = [{"role": "user", "content": "Write a long story."}]
    with pytest.raises(APITimeoutError):
        await llmswitch.acompletion(model=MODEL, messages=story, max_tokens=400, timeout=0.3, num_retries=0)
    r = await llmswitch.acompletion(model=MODEL, messages=QUICKSTART, **{**GREEDY, "max_tokens": 4})
    assert r.usage.completion_tokens == 4
