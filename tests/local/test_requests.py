"""An OpenAI chat body as llama-cpp-python keywords (pure: no model)."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.local.origin import call_url, load_options
from llmswitch.local.requests import GenerationError, completion_kwargs
from llmswitch.local.runtime import LoadOptions

USER = [{"role": "user", "content": "Hi"}]


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": USER, **fields}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {}),
        ({"max_tokens": 5}, {"max_tokens": 5}),
        ({"max_completion_tokens": 7, "max_tokens": 5}, {"max_tokens": 7}),
        ({"stop": "END"}, {"stop": ["END"]}),
        ({"stop": ["a", "b"]}, {"stop": ["a", "b"]}),
        (
            {"temperature": 0, "top_p": 0.5, "top_k": 3, "seed": 9},
            {"temperature": 0, "top_p": 0.5, "top_k": 3, "seed": 9},
        ),
        ({"presence_penalty": 0.1, "frequency_penalty": 0.2}, {"presence_penalty": 0.1, "frequency_penalty": 0.2}),
        ({"min_p": 0.1, "repeat_penalty": 1.1}, {"min_p": 0.1, "repeat_penalty": 1.1}),
        ({"logit_bias": {"42": -100}}, {"logit_bias": {42: -100.0}}),
        ({"response_format": {"type": "text"}}, {}),
        ({"response_format": {"type": "json_object"}}, {"response_format": {"type": "json_object"}}),
        ({"stream": True, "stream_options": {"include_usage": True}, "user": "u", "n": 1}, {}),
    ],
)
def test_body_fields_become_llama_cpp_keywords(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    assert completion_kwargs(body(**fields)) == {"messages": USER, "model": "m", **expected}


def test_text_parts_are_joined_for_the_chat_template() -> None:
    parts = [{"type": "text", "text": "What is "}, {"type": "text", "text": "4200 + 42?"}]
    kwargs = completion_kwargs({"messages": [{"role": "user", "content": parts}]})
    assert kwargs["messages"] == [{"role": "user", "content": "What is 4200 + 42?"}]


def test_json_schema_becomes_a_grammar() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "A", "schema": schema}}
    seen: list[str] = []
    kwargs = completion_kwargs(body(response_format=fmt), lambda text: seen.append(text) or "GRAMMAR")
    assert kwargs["grammar"] == "GRAMMAR"
    assert seen == ['{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}']
    assert "response_format" not in kwargs


def test_a_named_or_single_required_tool_is_forced_and_auto_goes_to_the_template() -> None:
    tool = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
    named = {"type": "function", "function": {"name": "add"}}
    assert completion_kwargs(body(tools=[tool], tool_choice=named))["tool_choice"] == named
    assert completion_kwargs(body(tools=[tool], tool_choice="required"))["tool_choice"] == named
    auto = completion_kwargs(body(tools=[tool], tool_choice="auto"))
    assert auto["tools"] == [tool]
    assert "tool_choice" not in auto
    assert "tools" not in completion_kwargs(body(tools=[tool], tool_choice="none"))


@pytest.mark.parametrize(
    ("fields", "status", "param", "words"),
    [
        ({"n": 2}, 400, "n", "n must be 1"),
        ({"messages": []}, 400, "messages", "must not be empty"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            400,
            "messages[0].content",
            "text only",
        ),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, 400, "response_format", "schema"),
        ({"response_format": {"type": "grammar"}}, 400, "response_format", "not supported"),
        (
            {"tools": [{"type": "function", "function": {"name": "a"}}] * 2, "tool_choice": "required"},
            400,
            "tool_choice",
            "single tool",
        ),
        ({"web_search_options": {}}, 400, "web_search_options", "unsupported parameter"),
    ],
)
def test_requests_a_local_model_cannot_answer_are_refused_naming_the_field(
    fields: dict[str, Any], status: int, param: str, words: str
) -> None:
    with pytest.raises(GenerationError) as caught:
        completion_kwargs(body(**fields))
    assert caught.value.status == status
    assert caught.value.param == param
    assert words in str(caught.value)
    assert caught.value.openai_error()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ValueError("Requested tokens (5000) exceed context window of 4096"), 400, "context_length_exceeded"),
        (ValueError("bad grammar"), 400, None),
        (RuntimeError("llama_decode returned -3"), 500, None),
    ],
)
def test_llama_cpp_errors_get_the_status_an_openai_server_would_give(
    exc: Exception, status: int, code: str | None
) -> None:
    err = GenerationError.from_llama(exc)
    assert (err.status, err.code) == (status, code)
    assert str(exc) in str(err)


@pytest.mark.parametrize(
    "options",
    [
        LoadOptions("/models/a model?.gguf"),
        LoadOptions("/m.gguf", n_ctx=2048, n_threads=2, n_gpu_layers=1, chat_format="chatml"),
    ],
)
def test_the_call_url_carries_how_to_load_the_model(options: LoadOptions) -> None:
    assert load_options(call_url(options)) == options
