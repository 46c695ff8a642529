"""The cost of the usage fields beyond plain tokens: web searches per request, audio at its own rates, OpenAI's
rejected prediction tokens as output, and Gemini's tool-use prompt as input."""

from __future__ import annotations

from decimal import Decimal

import pytest

from llmswitch import ir
from llmswitch.cost import cost_decimal, cost_of, load_table, lookup, usage_from_wire
from llmswitch.cost.overrides import apply_overrides
from llmswitch.cost.price import Price, per_million


def test_anthropic_web_searches_are_billed_per_request() -> None:
    price = lookup("claude-sonnet-4-5-20250929", "anthropic")
    assert price is not None and price.web_search_request == Decimal("0.01")  # $10 per 1,000 searches
    usage = usage_from_wire(
        {"input_tokens": 10_000, "output_tokens": 1_000, "server_tool_use": {"web_search_requests": 3}}
    )
    assert usage.web_search_requests == 3
    tokens = 10_000 * per_million(3) + 1_000 * per_million(15)
    assert cost_decimal(usage, price) == tokens + 3 * Decimal("0.01")
    assert cost_of(usage, price) == float(tokens + Decimal("0.03"))


def test_every_anthropic_row_prices_web_search_and_no_other_provider_does() -> None:
    for price in load_table().models.values():
        has = price.web_search_request is not None
        assert has == (price.provider == "anthropic"), price.model


def test_web_fetches_cost_only_their_tokens() -> None:
    price = lookup("claude-sonnet-4-5", "anthropic")
    assert price is not None
    fetched = ir.Usage(input_tokens=5_000, output_tokens=100, web_fetch_requests=4)
    assert cost_decimal(fetched, price) == cost_decimal(ir.Usage(input_tokens=5_000, output_tokens=100), price)


def test_gemini_audio_input_pays_the_audio_rate() -> None:
    price = lookup("gemini-2.5-flash")
    assert price is not None
    usage = usage_from_wire(
        {
            "promptTokenCount": 3_000,
            "candidatesTokenCount": 200,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": 2_000},
                {"modality": "AUDIO", "tokenCount": 1_000},
            ],
        }
    )
    assert usage.input_audio_tokens == 1_000
    want = 2_000 * per_million("0.30") + 1_000 * per_million("1.00") + 200 * per_million("2.50")
    assert cost_decimal(usage, price) == want
    assert cost_of(usage, price) == float(want)


def test_audio_without_an_audio_rate_costs_the_text_rate() -> None:
    price = lookup("gemini-2.5-pro")
    assert price is not None and price.input_audio is None
    audio = ir.Usage(input_tokens=1_000, input_audio_tokens=600, output_tokens=10)
    assert cost_decimal(audio, price) == cost_decimal(ir.Usage(input_tokens=1_000, output_tokens=10), price)


def test_openai_audio_tokens_at_the_deployments_audio_prices() -> None:
    # a model the table does not know, priced by its deployment as LiteLLM's config does
    price = apply_overrides(
        None,
        "my-audio-model",
        {
            "input_cost_per_token": "2.5e-06",
            "output_cost_per_token": "1e-05",
            "input_cost_per_audio_token": "4e-05",
            "output_cost_per_audio_token": "8e-05",
        },
    )
    assert price is not None
    usage = usage_from_wire(
        {
            "prompt_tokens": 100,
            "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 40},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 250},
        }
    )
    want = 60 * Decimal("2.5e-06") + 40 * Decimal("4e-05") + 50 * Decimal("1e-05") + 250 * Decimal("8e-05")
    assert cost_decimal(usage, price) == want


def test_rejected_prediction_tokens_are_billed_as_completion_tokens() -> None:
    price = lookup("gpt-4o")
    assert price is not None
    usage = usage_from_wire(
        {
            "prompt_tokens": 500,
            "completion_tokens": 120,
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "accepted_prediction_tokens": 70,
                "rejected_prediction_tokens": 30,
            },
        }
    )
    assert (usage.rejected_prediction_tokens, usage.output_tokens) == (30, 120)
    # OpenAI: rejected tokens are inside completion_tokens, so all 120 are billed at the output rate
    assert cost_decimal(usage, price) == 500 * per_million("2.50") + 120 * per_million(10)


def test_gemini_tool_use_prompt_tokens_are_billed_as_input() -> None:
    price = lookup("gemini-2.5-flash")
    assert price is not None
    usage = usage_from_wire({"promptTokenCount": 1_000, "toolUsePromptTokenCount": 4_000, "candidatesTokenCount": 100})
    # before they were decoded, the 4,000 tokens of search results Gemini read went unbilled
    assert usage.input_tokens == 5_000
    assert cost_decimal(usage, price) == 5_000 * per_million("0.30") + 100 * per_million("2.50")


@pytest.mark.parametrize("batch", [False, True])
def test_audio_rates_take_the_batch_discount(batch: bool) -> None:
    price = Price(
        model="m",
        input=per_million(1),
        output=per_million(2),
        input_audio=per_million(7),
        batch_discount=Decimal("0.5"),
    )
    factor = Decimal("0.5") if batch else Decimal(1)
    assert cost_decimal(ir.Usage(input_tokens=10, input_audio_tokens=10), price, batch=batch) == 70 * factor / 10**6


@pytest.mark.parametrize(
    ("model", "audio_in", "audio_out"),
    [
        ("gpt-4o-audio-preview-2024-12-17", "40", "80"),
        ("gpt-4o-audio-preview-2024-10-01", "100", "200"),  # the first snapshot was priced apart
        ("gpt-4o-mini-audio-preview", "10", "20"),
    ],
)
def test_openai_audio_models_price_their_audio_tokens(model: str, audio_in: str, audio_out: str) -> None:
    price = lookup(model, "openai")
    assert price is not None
    usage = usage_from_wire(
        {
            "prompt_tokens": 1_000,
            "completion_tokens": 500,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 800},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 400},
        }
    )
    text_in, text_out = price.input, price.output
    want = 200 * text_in + 800 * per_million(audio_in) + 100 * text_out + 400 * per_million(audio_out)
    assert cost_decimal(usage, price) == want
