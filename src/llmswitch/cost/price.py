"""What one model costs: :class:`Price` (USD per token, as exact decimals) and the rates one request pays.

A price holds the published rates; :meth:`Price.rates` picks the ones a given request is billed at,
after the long-context tier its input falls in and the batch discount:

    >>> p = Price(model="m", input=per_million("2.50"), output=per_million(10), batch_discount=Decimal("0.5"))
    >>> float(p.rates(input_tokens=1_000).input * 1_000_000)
    2.5
    >>> float(p.rates(input_tokens=1_000, batch=True).output * 1_000_000)
    5.0

Rates that a provider does not publish fall back to what the provider bills in their place: no
cache-read rate means no cache discount (the input rate), no cache-write rate means writes cost the
input rate (OpenAI), no 1-hour rate means the 5-minute one, no reasoning rate means the output rate, no
audio rate means the input or output rate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Mode = Literal["chat", "embedding"]

_MILLION = Decimal(1_000_000)


def per_million(usd: Decimal | int | str) -> Decimal:
    """A per-token rate from a price per million tokens, exactly.

    >>> per_million("0.075")
    Decimal('7.5E-8')
    """
    return Decimal(usd) / _MILLION


@dataclass(frozen=True)
class PriceTier:
    """Rates that replace the base ones for a whole request whose input exceeds ``above_input_tokens``.

    Input counts cache reads and writes (normal form), as Anthropic and Gemini decide the tier. A rate
    left ``None`` keeps the base price's rate.
    """

    above_input_tokens: int
    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None


@dataclass(frozen=True)
class Rates:
    """The per-token USD rates one request is billed at, every fallback already applied."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    reasoning: Decimal
    input_audio: Decimal
    output_audio: Decimal


@dataclass(frozen=True)
class Price:
    """The published price of one model, in USD per token.

    ``input_batch`` / ``output_batch`` are explicit batch rates (LiteLLM's ``*_cost_per_token_batches``);
    without them the batch API bills every rate times ``batch_discount``.
    """

    model: str
    input: Decimal
    output: Decimal = Decimal(0)
    cache_read: Decimal | None = None
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None
    # audio tokens where the provider prices them apart from other input / output
    input_audio: Decimal | None = None
    output_audio: Decimal | None = None
    # USD per web search request (a server tool billed per call, on top of the tokens its results add)
    web_search_request: Decimal | None = None
    batch_discount: Decimal | None = None
    input_batch: Decimal | None = None
    output_batch: Decimal | None = None
    tiers: tuple[PriceTier, ...] = ()
    provider: str | None = None
    mode: Mode = "chat"
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None

    def tier_for(self, input_tokens: int) -> PriceTier | None:
        """The tier a request with this many input tokens is billed in (``None``: the base rates)."""
        chosen: PriceTier | None = None
        for tier in self.tiers:
            if input_tokens > tier.above_input_tokens and (
                chosen is None or tier.above_input_tokens > chosen.above_input_tokens
            ):
                chosen = tier
        return chosen

    def rates(self, input_tokens: int = 0, *, batch: bool = False) -> Rates:
        """The rates of a request with ``input_tokens`` of input (normal form), sent through the batch API or not."""
        if not batch and not self.tiers:
            return self._base_rates  # every request of a model without tiers pays these
        return self._rates(input_tokens, batch)

    @functools.cached_property
    def _base_rates(self) -> Rates:
        return self._rates(0, False)

    def _rates(self, input_tokens: int, batch: bool) -> Rates:
        tier = self.tier_for(input_tokens)
        t = tier or _BASE
        input_rate = _pick(t.input, self.input)
        output_rate = _pick(t.output, self.output)
        cache_read = _pick(t.cache_read, self.cache_read, input_rate)
        write_5m = _pick(t.cache_write_5m, self.cache_write_5m, input_rate)
        write_1h = _pick(t.cache_write_1h, self.cache_write_1h, write_5m)
        reasoning = _pick(t.reasoning, self.reasoning, output_rate)
        input_audio = _pick(self.input_audio, input_rate)
        output_audio = _pick(self.output_audio, output_rate)
        if batch:
            factor = self._batch_factor()
            # explicit batch rates are for the base tier; a long-context tier is discounted by the factor
            in_base = tier is None
            input_rate = self.input_batch if in_base and self.input_batch is not None else input_rate * factor
            output_rate = self.output_batch if in_base and self.output_batch is not None else output_rate * factor
            cache_read, write_5m, write_1h = cache_read * factor, write_5m * factor, write_1h * factor
            reasoning, input_audio, output_audio = reasoning * factor, input_audio * factor, output_audio * factor
        return Rates(input_rate, output_rate, cache_read, write_5m, write_1h, reasoning, input_audio, output_audio)

    def _batch_factor(self) -> Decimal:
        if self.batch_discount is not None:
            return self.batch_discount
        if self.input_batch is not None and self.input:
            return self.input_batch / self.input
        return Decimal(1)  # no batch price published: billed as a normal request


_BASE = PriceTier(above_input_tokens=0)


def _pick(*rates: Decimal | None) -> Decimal:
    for rate in rates:
        if rate is not None:
            return rate
    raise ValueError("no rate")  # the last candidate is always set; kept for the type checker
