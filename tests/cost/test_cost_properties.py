"""Properties of the cost of any usage at any shipped price: no token billed twice, none for free, cache
never dearer than no cache."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from llmswitch import ir
from llmswitch.cost import Price, cost_decimal, cost_of, load_table

PRICES = [p for _, p in sorted(load_table().models.items()) if p.mode == "chat"]
prices = st.sampled_from(PRICES)
KINDS = (
    "uncached",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
    "output",
    "reasoning",
    "input_audio",
    "output_audio",
    "web_search",
)


@st.composite
def usages(draw: st.DrawFn, max_tokens: int = 400_000) -> ir.Usage:
    """Consistent normal-form usage: reads and writes inside the input, reasoning inside the output."""
    uncached, read, w5, w1 = (draw(st.integers(0, max_tokens // 4)) for _ in range(4))
    output = draw(st.integers(0, 100_000))
    reasoning = draw(st.integers(0, output))
    return ir.Usage(
        input_tokens=uncached + read + w5 + w1,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=w5 + w1,
        cache_write_5m_tokens=w5,
        cache_write_1h_tokens=w1,
        reasoning_tokens=reasoning,
        # audio is part of the uncached input and of the non-reasoning output
        input_audio_tokens=draw(st.integers(0, uncached)),
        output_audio_tokens=draw(st.integers(0, output - reasoning)),
        web_search_requests=draw(st.integers(0, 20)),
    )


def more(u: ir.Usage, kind: str, k: int) -> ir.Usage:
    """``u`` with ``k`` more tokens of one kind, kept in normal form."""
    if kind == "uncached":
        return with_counts(u, input_tokens=u.input_tokens + k)
    if kind == "cache_read":
        return with_counts(u, input_tokens=u.input_tokens + k, cache_read_tokens=u.cache_read_tokens + k)
    if kind == "cache_write_5m":
        return with_counts(
            u,
            input_tokens=u.input_tokens + k,
            cache_write_tokens=u.cache_write_tokens + k,
            cache_write_5m_tokens=u.cache_write_5m_tokens + k,
        )
    if kind == "cache_write_1h":
        return with_counts(
            u,
            input_tokens=u.input_tokens + k,
            cache_write_tokens=u.cache_write_tokens + k,
            cache_write_1h_tokens=u.cache_write_1h_tokens + k,
        )
    if kind == "output":
        return with_counts(u, output_tokens=u.output_tokens + k)
    if kind == "input_audio":
        return with_counts(u, input_tokens=u.input_tokens + k, input_audio_tokens=u.input_audio_tokens + k)
    if kind == "output_audio":
        return with_counts(u, output_tokens=u.output_tokens + k, output_audio_tokens=u.output_audio_tokens + k)
    if kind == "web_search":
        return with_counts(u, web_search_requests=u.web_search_requests + k)
    return with_counts(u, output_tokens=u.output_tokens + k, reasoning_tokens=u.reasoning_tokens + k)


def with_counts(u: ir.Usage, **changes: int) -> ir.Usage:
    fields = {f: getattr(u, f) for f in u.__struct_fields__}
    return ir.Usage(**(fields | changes))


@given(prices, usages(), st.sampled_from(KINDS), st.integers(1, 300_000), st.booleans())
def test_cost_is_monotonic_in_every_kind_of_token(price: Price, u: ir.Usage, kind: str, k: int, batch: bool) -> None:
    assert cost_decimal(more(u, kind, k), price, batch=batch) >= cost_decimal(u, price, batch=batch)


@given(prices, usages(), st.integers(1, 100_000))
def test_a_cached_token_never_costs_more_than_an_uncached_one(price: Price, u: ir.Usage, k: int) -> None:
    # the same prompt (same input_tokens, same tier), with k of its uncached tokens served from the cache
    u = more(u, "uncached", k)
    cached = with_counts(u, cache_read_tokens=u.cache_read_tokens + k)
    assert cost_decimal(cached, price) <= cost_decimal(u, price)


@given(prices, usages(), usages())
def test_every_token_is_billed_once(price: Price, a: ir.Usage, b: ir.Usage) -> None:
    # at flat rates, the cost of two usages together is the sum of their costs: nothing is billed
    # twice (a cached token at both the input and the cache rate) and nothing is dropped
    flat = dataclasses.replace(price, tiers=())
    both = ir.Usage(
        **{f: getattr(a, f) + getattr(b, f) for f in ir.Usage.__struct_fields__ if type(getattr(a, f)) is int}
    )
    assert cost_decimal(both, flat) == cost_decimal(a, flat) + cost_decimal(b, flat)


@given(prices, st.integers(0, 150_000))
def test_a_fully_cached_prompt_pays_only_the_cache_rate(price: Price, n: int) -> None:
    rates = price.rates(n)
    assert cost_decimal(ir.Usage(input_tokens=n, cache_read_tokens=n), price) == n * rates.cache_read


@given(prices, usages())
def test_batch_never_costs_more(price: Price, u: ir.Usage) -> None:
    assert cost_decimal(u, price, batch=True) <= cost_decimal(u, price)
    assert cost_decimal(u, price) >= Decimal(0)


ALL_PRICES = [p for _, p in sorted(load_table().models.items())]


@given(
    st.sampled_from(ALL_PRICES),
    st.integers(-5, 10**15),
    st.integers(-5, 10**15),
    st.sampled_from([(0, 0, 0), (1, 0, 0), (0, 2, 0), (0, 0, 3)]),
    st.booleans(),
)
def test_cost_of_is_the_exact_sum_as_a_float_on_every_path(
    price: Price, inp: int, out: int, extra: tuple[int, int, int], batch: bool
) -> None:
    # cost_of takes a shortcut for plain input and output tokens: the same float as the full sum
    read, write, reasoning = extra
    usage = ir.Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
    )
    assert cost_of(usage, price, batch=batch) == float(cost_decimal(usage, price, batch=batch))


@given(st.sampled_from(ALL_PRICES), st.integers(0, 10**7), st.booleans())
def test_rates_are_the_same_however_often_they_are_asked_for(price: Price, inp: int, batch: bool) -> None:
    fresh = dataclasses.replace(price)  # nothing remembered yet
    assert price.rates(inp, batch=batch) == fresh.rates(inp, batch=batch) == fresh.rates(inp, batch=batch)
