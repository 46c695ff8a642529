"""completion_cost on every shape a finished response comes in: ours, the openai SDK's, Anthropic's, plain dicts."""

from __future__ import annotations

import doctest
import importlib
from typing import Any

import pytest
from anthropic.types import Message
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

import llmswitch
from llmswitch import convert, cost, ir
from llmswitch.errors import ConfigError

# gpt-4o, 1,000 input (400 cached) + 500 output: 600 x 2.50 + 400 x 1.25 + 500 x 10 per 1M = $0.007
OPENAI_BODY: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop", "logprobs": None}
    ],
    "usage": {
        "prompt_tokens": 1_000,
        "completion_tokens": 500,
        "total_tokens": 1_500,
        "prompt_tokens_details": {"cached_tokens": 400, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
}

# claude-sonnet-4: 1,000 uncached x 3 + 2,000 5m x 3.75 + 1,000 1h x 6 + 10,000 hits x 0.30 + 800 x 15
# per 1M = 0.003 + 0.0075 + 0.006 + 0.003 + 0.012 = $0.0315
SONNET_USAGE = ir.Usage(
    input_tokens=14_000,
    output_tokens=800,
    cache_read_tokens=10_000,
    cache_write_tokens=3_000,
    cache_write_5m_tokens=2_000,
    cache_write_1h_tokens=1_000,
)


def test_a_dict() -> None:
    assert cost.completion_cost(OPENAI_BODY) == 0.007


def test_an_openai_sdk_chat_completion() -> None:
    assert cost.completion_cost(ChatCompletion.model_validate(OPENAI_BODY)) == 0.007


def test_our_model_response_keeps_the_cache_write_split() -> None:
    resp = ir.Response(
        id="msg_1",
        model="claude-sonnet-4-20250514",
        choices=[ir.Choice(parts=[ir.TextPart("hi")], finish_reason="stop")],
        usage=SONNET_USAGE,
    )
    assert cost.completion_cost(convert.model_response(resp)) == 0.0315


def test_an_anthropic_sdk_message() -> None:
    message = Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 1_000,
                "output_tokens": 800,
                "cache_creation_input_tokens": 3_000,
                "cache_read_input_tokens": 10_000,
                "cache_creation": {"ephemeral_5m_input_tokens": 2_000, "ephemeral_1h_input_tokens": 1_000},
            },
        }
    )
    assert cost.completion_cost(message) == 0.0315


def test_an_openai_responses_api_usage() -> None:
    body = {
        "model": "gpt-4o",
        "usage": {
            "input_tokens": 1_000,
            "input_tokens_details": {"cached_tokens": 400},
            "output_tokens": 500,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 1_500,
        },
    }
    assert cost.completion_cost(body) == 0.007


def test_embedding_responses() -> None:
    # text-embedding-3-small: 10,000 x $0.02 per 1M = $0.0002
    body = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "usage": {"prompt_tokens": 10_000, "total_tokens": 10_000},
    }
    assert cost.completion_cost(CreateEmbeddingResponse.model_validate(body)) == 0.0002
    ours = convert.embedding_response(
        ir.EmbeddingResponse(
            model="text-embedding-3-small", data=[ir.Embedding(0, [0.1])], usage=ir.Usage(input_tokens=10_000)
        )
    )
    assert cost.completion_cost(ours) == 0.0002


def test_model_and_provider_arguments() -> None:
    # priced as gpt-4o-mini: 600 x 0.15 + 400 x 0.075 + 500 x 0.60 per 1M = $0.00042
    assert cost.completion_cost(OPENAI_BODY, model="gpt-4o-mini") == 0.00042
    with pytest.raises(ConfigError, match="from azure"):
        cost.completion_cost(OPENAI_BODY, custom_llm_provider="azure")
    overrides = {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}
    assert cost.completion_cost(OPENAI_BODY, custom_llm_provider="azure", overrides=overrides) == 0.0015


def test_batch() -> None:
    assert cost.completion_cost(OPENAI_BODY, batch=True) == 0.0035


def test_an_unknown_model_is_an_error_not_a_guess() -> None:
    with pytest.raises(ConfigError, match="no price known for model 'my-finetune'"):
        cost.completion_cost(OPENAI_BODY | {"model": "my-finetune"})


@pytest.mark.parametrize(
    "response", [None, {}, {"model": "gpt-4o"}, OPENAI_BODY | {"usage": None}, OPENAI_BODY | {"model": ""}]
)
def test_a_response_without_model_or_usage_is_an_error(response: Any) -> None:
    with pytest.raises(ConfigError):
        cost.completion_cost(response)


def test_exported_at_the_top_level() -> None:
    assert llmswitch.completion_cost is cost.completion_cost
    assert "completion_cost" in llmswitch.__all__


def test_cost_for_response_without_usage_is_none() -> None:
    assert cost.cost_for_response("gpt-4o", "openai", None) is None


@pytest.mark.parametrize(
    "name",
    [
        "llmswitch.cost",
        "llmswitch.cost.compute",
        "llmswitch.cost.overrides",
        "llmswitch.cost.price",
        "llmswitch.cost.response",
        "llmswitch.cost.table",
        "llmswitch.cost.usage",
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
