"""What a response cost: a price table shipped as data (``prices.json``) and exact arithmetic over usage.

    >>> from llmswitch import cost, ir
    >>> price = cost.price_for("claude-sonnet-4-20250514")
    >>> cost.cost_of(ir.Usage(input_tokens=2_000, cache_read_tokens=1_500, output_tokens=100), price)
    0.00345

The table covers the first-party OpenAI, Anthropic and Gemini APIs; its ``_meta`` names the pricing
pages and the date the figures were read. It is parsed on first use, never at ``import llmswitch``.
A deployment's config can override any rate under LiteLLM's key names (:mod:`llmswitch.cost.overrides`).
A model with no price gets ``None`` (``response.cost``) or an error (:func:`completion_cost`), never a guess.

Modules: :mod:`~llmswitch.cost.price` (the :class:`Price` of a model), :mod:`~llmswitch.cost.table`
(the shipped table and model-name resolution), :mod:`~llmswitch.cost.overrides` (config prices),
:mod:`~llmswitch.cost.compute` (cost of a usage, estimates), :mod:`~llmswitch.cost.usage` (usage of any
shape) and :mod:`~llmswitch.cost.response` (by model name: what the SDK and gateway call).
"""

from __future__ import annotations

from llmswitch.cost.compute import cost_decimal, cost_of, cost_of_embedding, estimate_cost
from llmswitch.cost.price import Price, PriceTier, Rates, per_million
from llmswitch.cost.response import completion_cost, cost_for_response, price_for
from llmswitch.cost.table import load_table, lookup
from llmswitch.cost.usage import usage_from_wire

__all__ = [
    "Price",
    "PriceTier",
    "Rates",
    "completion_cost",
    "cost_decimal",
    "cost_for_response",
    "cost_of",
    "cost_of_embedding",
    "estimate_cost",
    "load_table",
    "lookup",
    "per_million",
    "price_for",
    "usage_from_wire",
]
