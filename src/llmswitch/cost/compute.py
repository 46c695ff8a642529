"""The cost of a response from its usage, exactly: every token billed once, at the rate of its kind.

Usage is in normal form (``llmswitch.ir``): ``input_tokens`` counts cache reads and writes, and
``output_tokens`` counts reasoning. So a response is billed as

- ``input_tokens - cache_read - cache_write`` at the input rate,
- cache reads at the cache-read rate, cache writes at the 5-minute or 1-hour write rate,
- ``output_tokens`` at the output rate (reasoning at its own rate where the model prices it apart;
  OpenAI's rejected prediction tokens are inside ``output_tokens`` and so billed as output),
- audio tokens (inside the counts above) at the audio rates where the model prices audio apart,
- each web search request at the model's per-request price,

all after the long-context tier and the batch discount, in exact decimals; only the final figure
becomes a float.

    >>> from llmswitch import ir
    >>> from llmswitch.cost.price import Price, per_million
    >>> p = Price(model="gpt-4o", input=per_million("2.50"), cache_read=per_million("1.25"), output=per_million(10))
    >>> cost_of(ir.Usage(input_tokens=1_000, cache_read_tokens=400, output_tokens=500), p)
    0.007
"""

from __future__ import annotations

from decimal import Decimal

from llmswitch import ir
from llmswitch.cost.price import Price
from llmswitch.errors import ConfigError


def cost_decimal(usage: ir.Usage, price: Price, *, batch: bool = False) -> Decimal:
    """:func:`cost_of` as an exact :class:`~decimal.Decimal` of USD, for sums that must not drift."""
    rates = price.rates(usage.input_tokens, batch=batch)
    read = _count(usage.cache_read_tokens)
    write_1h = _count(usage.cache_write_1h_tokens)
    # a write without a reported lifetime is a 5-minute one (Anthropic's default)
    write_5m = max(_count(usage.cache_write_tokens) - write_1h, _count(usage.cache_write_5m_tokens))
    uncached = max(_count(usage.input_tokens) - read - write_5m - write_1h, 0)
    output = _count(usage.output_tokens)
    reasoning = min(_count(usage.reasoning_tokens), output)
    # audio is inside the counts above; uncached audio and spoken output pay the audio rates instead
    audio_in = min(_count(usage.input_audio_tokens), uncached)
    audio_out = min(_count(usage.output_audio_tokens), output - reasoning)
    searches = _count(usage.web_search_requests)
    return (
        (uncached - audio_in) * rates.input
        + audio_in * rates.input_audio
        + read * rates.cache_read
        + write_5m * rates.cache_write_5m
        + write_1h * rates.cache_write_1h
        + (output - reasoning - audio_out) * rates.output
        + audio_out * rates.output_audio
        + reasoning * rates.reasoning
        + (searches * price.web_search_request if searches and price.web_search_request is not None else 0)
    )


def cost_of(usage: ir.Usage, price: Price, *, batch: bool = False) -> float:
    """USD cost of a response with ``usage`` at ``price`` (``batch=True``: sent through the batch API).

    See the module docstring for how each kind of token is billed.
    """
    if not (
        batch
        or price.tiers
        or usage.cache_read_tokens
        or usage.cache_write_tokens
        or usage.cache_write_5m_tokens
        or usage.cache_write_1h_tokens
        or usage.reasoning_tokens
        or usage.input_audio_tokens
        or usage.output_audio_tokens
        or usage.web_search_requests
    ):
        # plain input and output: the same sum as cost_decimal's without its terms that are zero
        # (adding an exact zero changes no Decimal's value), so the same float, at a third of the cost
        rates = price.rates()
        inp, out = usage.input_tokens, usage.output_tokens
        return float((inp if inp > 0 else 0) * rates.input + (out if out > 0 else 0) * rates.output)
    return float(cost_decimal(usage, price, batch=batch))


def cost_of_embedding(tokens: int | ir.Usage, price: Price, *, batch: bool = False) -> float:
    """USD cost of embedding ``tokens`` input tokens (or an embedding response's usage).

    >>> from llmswitch.cost.price import Price, per_million
    >>> cost_of_embedding(10_000, Price(model="text-embedding-3-small", input=per_million("0.02")))
    0.0002
    """
    count = tokens.input_tokens if isinstance(tokens, ir.Usage) else tokens
    return float(_count(count) * price.rates(count, batch=batch).input)


def estimate_cost(
    price: Price,
    prompt_tokens_estimate: int,
    max_output_tokens: int | None = None,
    *,
    cache_writes: bool = False,
    batch: bool = False,
) -> float:
    """An upper bound of a request's cost before it is sent, for budget reservations.

    The prompt is billed at the input rate (at the dearest cache-write rate when ``cache_writes``,
    for requests that mark content for caching), and ``max_output_tokens`` (the request's limit, else
    the model's) at the output rate, or the reasoning rate if that is dearer.

        >>> from llmswitch.cost.price import Price, per_million
        >>> p = Price(model="m", input=per_million(3), output=per_million(15), max_output_tokens=64_000)
        >>> estimate_cost(p, 10_000)  # 10k x $3/M + 64k x $15/M
        0.99

    Raises :class:`~llmswitch.errors.ConfigError` when neither the request nor the table gives a
    maximum output.
    """
    limit = max_output_tokens if max_output_tokens is not None else price.max_output_tokens
    if limit is None:
        raise ConfigError(f"no max_output_tokens for {price.model!r}: pass one to bound the cost")
    rates = price.rates(prompt_tokens_estimate, batch=batch)
    prompt_rate = max(rates.input, rates.cache_write_5m, rates.cache_write_1h) if cache_writes else rates.input
    return float(_count(prompt_tokens_estimate) * prompt_rate + _count(limit) * max(rates.output, rates.reasoning))


def _count(tokens: int) -> int:
    return tokens if tokens > 0 else 0
