"""Costs of responses checked against worked examples computed by hand from the providers' published prices.

Each example writes its arithmetic out; rates are USD per 1M tokens as the pricing pages list them.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from llmswitch import ir
from llmswitch.cost import (
    Price,
    cost_decimal,
    cost_for_response,
    cost_of,
    cost_of_embedding,
    estimate_cost,
    per_million,
    price_for,
    usage_from_wire,
)
from llmswitch.errors import ConfigError


def priced(model: str) -> Price:
    price = price_for(model)
    assert price is not None, model
    return price


def test_gpt_4o_with_cached_prompt() -> None:
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output
    # 1,000 input of which 400 cached + 500 output:
    #   600 x 2.50 = 0.0015 ; 400 x 1.25 = 0.0005 ; 500 x 10 = 0.005  -> $0.0070
    usage = ir.Usage(input_tokens=1_000, cache_read_tokens=400, output_tokens=500)
    assert cost_decimal(usage, priced("gpt-4o-2024-08-06")) == Decimal("0.007")
    assert cost_of(usage, priced("gpt-4o")) == 0.007


def test_claude_sonnet_4_with_5m_and_1h_cache_writes_and_reads() -> None:
    # claude-sonnet-4: $3 input, $3.75 5m write, $6 1h write, $0.30 cache hit, $15 output
    # Anthropic reports input_tokens 1,000 (uncached), cache writes 3,000 (2,000 5m + 1,000 1h),
    # cache reads 10,000, output 800:
    #   1,000 x 3 = 0.003 ; 2,000 x 3.75 = 0.0075 ; 1,000 x 6 = 0.006 ; 10,000 x 0.30 = 0.003
    #   800 x 15 = 0.012                                                     -> $0.0315
    wire = {
        "input_tokens": 1_000,
        "cache_creation_input_tokens": 3_000,
        "cache_read_input_tokens": 10_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 2_000, "ephemeral_1h_input_tokens": 1_000},
        "output_tokens": 800,
    }
    usage = usage_from_wire(wire)
    assert usage.input_tokens == 14_000  # normal form: cache reads and writes inside the input
    assert cost_decimal(usage, priced("claude-sonnet-4-20250514")) == Decimal("0.0315")


def test_cache_writes_without_a_lifetime_are_5_minute_writes() -> None:
    # claude-haiku-4-5: $1 input, $1.25 5m write, $0.10 cache hit, $5 output
    # 5,000 input of which 4,000 written (no 5m/1h split reported) + 100 output:
    #   1,000 x 1 = 0.001 ; 4,000 x 1.25 = 0.005 ; 100 x 5 = 0.0005            -> $0.0065
    usage = ir.Usage(input_tokens=5_000, cache_write_tokens=4_000, output_tokens=100)
    assert cost_decimal(usage, priced("claude-haiku-4-5-20251001")) == Decimal("0.0065")


def test_gemini_2_5_flash_with_thinking_tokens() -> None:
    # gemini-2.5-flash: $0.30 input, $0.03 cached, $2.50 output (thinking included)
    # usageMetadata: prompt 2,000 of which 1,000 cached, candidates 300, thoughts 1,200:
    #   1,000 x 0.30 = 0.0003 ; 1,000 x 0.03 = 0.00003 ; (300 + 1,200) x 2.50 = 0.00375 -> $0.00408
    usage = usage_from_wire(
        {
            "promptTokenCount": 2_000,
            "cachedContentTokenCount": 1_000,
            "candidatesTokenCount": 300,
            "thoughtsTokenCount": 1_200,
        }
    )
    assert (usage.output_tokens, usage.reasoning_tokens) == (1_500, 1_200)
    assert cost_decimal(usage, priced("gemini-2.5-flash")) == Decimal("0.00408")


def test_reasoning_priced_apart() -> None:
    # gemini-2.5-flash-preview-04-17: $0.15 input, $0.60 output, $3.50 thinking output
    # 1,000 input + 2,000 output of which 1,500 thinking:
    #   1,000 x 0.15 = 0.00015 ; 500 x 0.60 = 0.0003 ; 1,500 x 3.50 = 0.00525     -> $0.0057
    usage = ir.Usage(input_tokens=1_000, output_tokens=2_000, reasoning_tokens=1_500)
    assert cost_decimal(usage, priced("gemini-2.5-flash-preview-04-17")) == Decimal("0.0057")


def test_reasoning_inside_output_at_the_output_rate() -> None:
    # o3: $2 input, $8 output; 1,000 input + 5,000 output of which 4,000 reasoning:
    #   1,000 x 2 = 0.002 ; 5,000 x 8 = 0.04                                    -> $0.042
    usage = ir.Usage(input_tokens=1_000, output_tokens=5_000, reasoning_tokens=4_000)
    assert cost_decimal(usage, priced("o3-2025-04-16")) == Decimal("0.042")


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # gemini-2.5-pro up to 200k prompt: $1.25 input, $10 output
        #   200,000 x 1.25 = 0.25 ; 10,000 x 10 = 0.10                               -> $0.35
        (ir.Usage(input_tokens=200_000, output_tokens=10_000), "0.35"),
        # above 200k the whole request pays $2.50 input, $0.25 cached, $15 output:
        #   250,000 input of which 50,000 cached:
        #   200,000 x 2.50 = 0.50 ; 50,000 x 0.25 = 0.0125 ; 10,000 x 15 = 0.15      -> $0.6625
        (ir.Usage(input_tokens=250_000, cache_read_tokens=50_000, output_tokens=10_000), "0.6625"),
    ],
)
def test_gemini_2_5_pro_long_prompt_tier(usage: ir.Usage, expected: str) -> None:
    assert cost_decimal(usage, priced("gemini-2.5-pro")) == Decimal(expected)


def test_claude_sonnet_4_5_long_context_tier_counts_cache_in_the_threshold() -> None:
    # 150,000 uncached + 60,000 cache reads = 210,000 input > 200k: $6 input, $0.60 hits, $22.50 output
    #   150,000 x 6 = 0.90 ; 60,000 x 0.60 = 0.036 ; 1,000 x 22.50 = 0.0225          -> $0.9585
    usage = ir.Usage(input_tokens=210_000, cache_read_tokens=60_000, output_tokens=1_000)
    assert cost_decimal(usage, priced("claude-sonnet-4-5")) == Decimal("0.9585")


def test_batch_discount_halves_every_rate() -> None:
    # gpt-4.1: $2 input, $0.50 cached, $8 output; 10,000 input (2,000 cached) + 1,000 output:
    #   8,000 x 2 = 0.016 ; 2,000 x 0.50 = 0.001 ; 1,000 x 8 = 0.008                -> $0.025
    #   batch API at 50%                                                            -> $0.0125
    usage = ir.Usage(input_tokens=10_000, cache_read_tokens=2_000, output_tokens=1_000)
    price = priced("gpt-4.1")
    assert cost_decimal(usage, price) == Decimal("0.025")
    assert cost_decimal(usage, price, batch=True) == Decimal("0.0125")


def test_batch_without_a_published_batch_price_is_billed_in_full() -> None:
    usage = ir.Usage(input_tokens=1_000, output_tokens=2_000, reasoning_tokens=1_500)
    price = priced("gemini-2.5-flash-preview-04-17")
    assert cost_of(usage, price, batch=True) == cost_of(usage, price)


def test_a_model_without_cache_prices_bills_cache_reads_as_input() -> None:
    # gemini-2.0-flash-lite has no context caching: 1,000 input (500 "cached") x $0.075 = $0.000075
    usage = ir.Usage(input_tokens=1_000, cache_read_tokens=500)
    assert cost_decimal(usage, priced("gemini-2.0-flash-lite")) == Decimal("0.000075")


@pytest.mark.parametrize(
    ("model", "tokens", "expected"),
    [
        ("text-embedding-3-small", 10_000, 0.0002),  # 10,000 x $0.02
        ("text-embedding-3-large", 1_000_000, 0.13),  # 1M x $0.13
        ("gemini-embedding-001", 1_000, 0.00015),  # 1,000 x $0.15
    ],
)
def test_embeddings(model: str, tokens: int, expected: float) -> None:
    price = priced(model)
    assert price.mode == "embedding"
    assert cost_of_embedding(tokens, price) == expected
    assert cost_of_embedding(ir.Usage(input_tokens=tokens), price) == expected
    assert cost_for_response(model, None, ir.Usage(input_tokens=tokens)) == expected


def test_embedding_batch() -> None:
    # text-embedding-3-small through the batch API: 1M x $0.01
    assert cost_of_embedding(1_000_000, priced("text-embedding-3-small"), batch=True) == 0.01


def test_sums_are_exact() -> None:
    # 0.1 + 0.2 style drift cannot happen: ten gpt-4o-mini calls of 1 input + 1 output token
    # cost exactly 10 x (0.15 + 0.60) / 1M
    price = priced("gpt-4o-mini")
    one = cost_decimal(ir.Usage(input_tokens=1, output_tokens=1), price)
    assert sum([one] * 10, Decimal(0)) == Decimal("0.0000075")


def test_inconsistent_usage_never_bills_negative_input() -> None:
    # more cache reads reported than input: only the reads are billed, nothing at the input rate
    usage = ir.Usage(input_tokens=100, cache_read_tokens=150)
    assert cost_decimal(usage, priced("gpt-4o")) == 150 * per_million("1.25")


class TestEstimate:
    def test_defaults_to_the_models_max_output(self) -> None:
        # claude-sonnet-4: 10,000 x $3 = 0.03 ; 64,000 max output x $15 = 0.96             -> $0.99
        assert estimate_cost(priced("claude-sonnet-4"), 10_000) == 0.99

    def test_the_requests_max_output_wins(self) -> None:
        # 10,000 x $3 = 0.03 ; 1,000 x $15 = 0.015                                          -> $0.045
        assert estimate_cost(priced("claude-sonnet-4"), 10_000, 1_000) == 0.045

    def test_cache_writes_bound_the_prompt_at_the_dearest_write_rate(self) -> None:
        # 10,000 x $6 (1h write) = 0.06 ; 1,000 x $15 = 0.015                               -> $0.075
        assert estimate_cost(priced("claude-sonnet-4"), 10_000, 1_000, cache_writes=True) == 0.075

    def test_is_an_upper_bound_of_the_real_cost(self) -> None:
        price = priced("gpt-4o")
        real = cost_of(ir.Usage(input_tokens=1_000, cache_read_tokens=500, output_tokens=16_384), price)
        assert estimate_cost(price, 1_000) >= real
        # 1,000 x 2.50 = 0.0025 ; 16,384 x 10 = 0.16384                                     -> $0.16634
        assert estimate_cost(price, 1_000) == 0.16634

    def test_long_prompts_use_the_long_context_tier(self) -> None:
        # gemini-2.5-pro, 300,000 prompt: 300,000 x 2.50 = 0.75 ; 1,000 x 15 = 0.015          -> $0.765
        assert estimate_cost(priced("gemini-2.5-pro"), 300_000, 1_000) == 0.765

    def test_reasoning_priced_apart_bounds_output_at_the_dearer_rate(self) -> None:
        # 1,000 x 0.15 = 0.00015 ; 1,000 x 3.50 = 0.0035                                    -> $0.00365
        assert estimate_cost(priced("gemini-2.5-flash-preview-04-17"), 1_000, 1_000) == 0.00365

    def test_without_any_max_output_it_refuses_to_guess(self) -> None:
        price = Price(model="custom", input=per_million(1), output=per_million(2))
        with pytest.raises(ConfigError, match="max_output_tokens"):
            estimate_cost(price, 1_000)
