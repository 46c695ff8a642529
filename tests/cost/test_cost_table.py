"""The shipped price table: its rows are sound, model names resolve to them, and it loads lazily."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest

from llmswitch.cost import load_table, lookup, per_million, price_for

TABLE = load_table()
CHAT = sorted(name for name, p in TABLE.models.items() if p.mode == "chat")


def test_meta_names_sources_and_date() -> None:
    meta = TABLE.meta
    assert meta["retrieved"]
    assert set(meta["sources"]) == {"openai", "anthropic", "gemini"}
    assert meta["notes"]


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o1",
        "o3",
        "o3-mini",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "claude-opus-4-1",
        "claude-opus-4",
        "claude-sonnet-4-5",
        "claude-sonnet-4",
        "claude-3-7-sonnet",
        "claude-3-5-sonnet",
        "claude-haiku-4-5",
        "claude-3-5-haiku",
        "claude-3-opus",
        "claude-3-haiku",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-2.0-flash",
        "gemini-2.0-flash-lite",
        "gemini-embedding-001",
    ],
)
def test_covers_the_current_models_with_their_limits(model: str) -> None:
    price = TABLE.models[model]
    assert price.input > 0
    assert price.max_input_tokens
    assert price.mode == "embedding" or (price.output > 0 and price.max_output_tokens)


@pytest.mark.parametrize("model", sorted(TABLE.models))
def test_rows_are_sound(model: str) -> None:
    p = TABLE.models[model]
    assert p.provider in ("openai", "anthropic", "gemini")
    for rate in (p.cache_read, p.cache_write_5m, p.cache_write_1h, p.reasoning, p.output):
        assert rate is None or rate >= 0
    if p.cache_read is not None:
        assert p.cache_read < p.input  # a cache hit is a discount
    if p.batch_discount is not None:
        assert 0 < p.batch_discount <= 1
    for tier in p.tiers:
        assert tier.input is not None and tier.input >= p.input
        assert tier.output is not None and tier.output >= p.output


# Haiku 3 is listed with rounded cache prices ($0.30 / $0.50 / $0.03 on $0.25 input)
ANTHROPIC = sorted(m for m, p in TABLE.models.items() if p.provider == "anthropic" and m != "claude-3-haiku")


@pytest.mark.parametrize("model", ANTHROPIC)
def test_anthropic_cache_prices_follow_the_published_multipliers(model: str) -> None:
    # 5-minute writes 1.25x, 1-hour writes 2x, hits 0.1x the input rate, in every tier
    p = TABLE.models[model]
    for base in (p, *p.tiers):
        assert base.input is not None
        assert base.cache_write_5m == base.input * Decimal("1.25")
        assert base.cache_write_1h == base.input * 2
        assert base.cache_read == base.input / 10


@pytest.mark.parametrize(
    ("name", "provider", "expected"),
    [
        ("gpt-4o", None, "gpt-4o"),
        ("gpt-4o-2024-08-06", None, "gpt-4o"),
        ("gpt-4o-2024-11-20", "openai", "gpt-4o"),
        ("gpt-4o-2024-05-13", None, "gpt-4o-2024-05-13"),  # priced apart: the exact row wins
        ("openai/gpt-4o-mini-2024-07-18", None, "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", None, "gpt-4.1"),
        ("o3-mini-2025-01-31", None, "o3-mini"),
        ("gpt-5-2025-08-07", None, "gpt-5"),
        ("gpt-5-chat-latest", None, "gpt-5-chat-latest"),
        ("GPT-4o", None, "gpt-4o"),
        ("claude-sonnet-4-20250514", None, "claude-sonnet-4"),
        ("claude-sonnet-4-0", None, "claude-sonnet-4"),
        ("anthropic/claude-sonnet-4-5-20250929", None, "claude-sonnet-4-5"),
        ("claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
        ("claude-sonnet-4@20250514", None, "claude-sonnet-4"),  # Vertex's snapshot spelling
        ("claude-haiku-4-5-20251001", None, "claude-haiku-4-5"),
        ("claude-opus-4-1-20250805", None, "claude-opus-4-1"),
        ("claude-3-7-sonnet-latest", None, "claude-3-7-sonnet"),
        ("claude-3-5-sonnet-20241022", None, "claude-3-5-sonnet"),
        ("gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
        ("gemini/gemini-2.5-pro", None, "gemini-2.5-pro"),
        ("google/gemini-2.5-pro", None, "gemini-2.5-pro"),
        ("models/gemini-2.0-flash-001", None, "gemini-2.0-flash"),
        ("gemini-2.0-flash-lite-001", None, "gemini-2.0-flash-lite"),
    ],
)
def test_aliases_and_snapshots_resolve(name: str, provider: str | None, expected: str) -> None:
    price = lookup(name, provider)
    assert price is not None
    assert price.model == expected


@pytest.mark.parametrize(
    ("name", "provider"),
    [
        ("my-finetune", None),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", None),
        ("gpt-4o", "azure"),  # another provider's price is not the table's to guess
        ("azure/gpt-4o", None),
        ("openrouter/openai/gpt-4o", None),
        ("gpt-4o", "openrouter"),
        ("claude-sonnet-4-20250514", "openai"),
        ("gemini-2.5-flash-preview-05-20", None),  # preview snapshots are not their GA model
        ("llama-3.3-70b-versatile", "groq"),
        ("", None),
    ],
)
def test_unknown_models_have_no_price(name: str, provider: str | None) -> None:
    assert lookup(name, provider) is None
    assert price_for(name, provider) is None


def test_rates_are_exact_decimals() -> None:
    assert TABLE.models["gpt-4o-mini"].cache_read == per_million("0.075") == Decimal("7.5E-8")


def test_import_llmswitch_does_not_load_the_table() -> None:
    code = (
        "import sys, llmswitch\n"
        "assert 'llmswitch.cost' not in sys.modules, 'cost imported'\n"
        "import llmswitch.cost.table as t\n"
        "assert t.load_table.cache_info().currsize == 0, 'table read at import'\n"
        "llmswitch.completion_cost({'model': 'gpt-4o', 'usage': {'prompt_tokens': 1, 'completion_tokens': 1}})\n"
        "assert t.load_table.cache_info().currsize == 1\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_every_shipped_rate_is_a_whole_number_of_nano_dollars_per_token() -> None:
    # the limiters count whole nano-dollars (llmswitch.limits.money): costs at these rates are then exact
    from decimal import Decimal

    from llmswitch.cost import load_table

    nano = Decimal("1e-9")
    for price in load_table().models.values():
        for tokens in (0, *(tier.above_input_tokens + 1 for tier in price.tiers)):
            rates = price.rates(tokens)
            for kind in ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning"):
                rate = getattr(rates, kind)
                assert rate % nano == 0, (price.model, tokens, kind, rate)
