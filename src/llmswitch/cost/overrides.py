"""Prices written in a deployment's config, under LiteLLM's names, laid over the shipped table.

A deployment's ``model_info`` (or ``litellm_params``) may price its model per token, as LiteLLM's
config does. Every key given replaces the table's rate; a model the table does not know is priced
from the overrides alone when they give at least its input rate (and its output rate, unless it is
an embedding model):

    >>> p = apply_overrides(None, "my-llama", {"input_cost_per_token": 1e-07, "output_cost_per_token": 2e-07})
    >>> p.input, p.output
    (Decimal('1E-7'), Decimal('2E-7'))

Recognised keys: ``input_cost_per_token``, ``output_cost_per_token``, ``cache_read_input_token_cost``,
``cache_creation_input_token_cost`` (5-minute writes), ``cache_creation_input_token_cost_above_1hr``,
``output_cost_per_reasoning_token``, ``input_cost_per_audio_token``, ``output_cost_per_audio_token``,
``input_cost_per_token_batches``, ``output_cost_per_token_batches``,
any of the rate keys with ``_above_<N>k_tokens`` (a long-context tier), ``max_input_tokens``,
``max_output_tokens`` (or ``max_tokens``) and ``mode``. Values are read as the decimals they were
written as, so ``2.5e-06`` is exactly 2.5 micro-dollars.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from llmswitch.cost.price import Price, PriceTier
from llmswitch.errors import ConfigError

RATE_KEYS: Mapping[str, str] = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_write_5m",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "output_cost_per_reasoning_token": "reasoning",
    "input_cost_per_audio_token": "input_audio",
    "output_cost_per_audio_token": "output_audio",
}
BATCH_KEYS: Mapping[str, str] = {
    "input_cost_per_token_batches": "input_batch",
    "output_cost_per_token_batches": "output_batch",
}
_TIER_RATES = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning")
_TIER_KEY = re.compile(r"^(?P<base>[a-z_0-9]+?)_above_(?P<k>\d+)k_tokens$")


def has_price_keys(overrides: Mapping[str, Any] | None) -> bool:
    """Whether ``overrides`` sets any rate (limits and ``mode`` alone do not make a price)."""
    return bool(overrides) and any(_is_rate_key(k) for k in overrides or {})


def apply_overrides(base: Price | None, model: str, overrides: Mapping[str, Any]) -> Price | None:
    """``base`` with the rates and limits ``overrides`` sets; ``None`` when there is still no full price."""
    fields: dict[str, Any] = {}
    tiers: dict[int, dict[str, Decimal]] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key in RATE_KEYS or key in BATCH_KEYS:
            fields[RATE_KEYS.get(key) or BATCH_KEYS[key]] = _decimal(key, value)
            continue
        match = _TIER_KEY.match(key)
        if match and match["base"] in RATE_KEYS:
            tiers.setdefault(int(match["k"]) * 1000, {})[RATE_KEYS[match["base"]]] = _decimal(key, value)
    for key in ("max_input_tokens", "max_output_tokens"):
        if overrides.get(key) is not None:
            fields[key] = _int(key, overrides[key])
    if "max_output_tokens" not in fields and overrides.get("max_tokens") is not None:
        fields["max_output_tokens"] = _int("max_tokens", overrides["max_tokens"])
    if overrides.get("mode") in ("chat", "embedding"):
        fields["mode"] = overrides["mode"]
    if base is None:
        mode = fields.get("mode", "chat")
        if "input" not in fields or ("output" not in fields and mode != "embedding"):
            return None  # a half-priced model would under-report silently; unpriced is honest
        base = Price(model=model, input=fields.pop("input"))
    if tiers:
        fields["tiers"] = _merge_tiers(base.tiers, tiers)
    return dataclasses.replace(base, **fields)


def _merge_tiers(existing: tuple[PriceTier, ...], given: Mapping[int, Mapping[str, Decimal]]) -> tuple[PriceTier, ...]:
    by_threshold = {t.above_input_tokens: t for t in existing}
    for threshold, rates in given.items():
        tier = by_threshold.get(threshold, PriceTier(above_input_tokens=threshold))
        by_threshold[threshold] = PriceTier(
            above_input_tokens=threshold,
            **{name: rates.get(name, getattr(tier, name)) for name in _TIER_RATES},
        )
    return tuple(by_threshold[k] for k in sorted(by_threshold))


def _is_rate_key(key: str) -> bool:
    if key in RATE_KEYS or key in BATCH_KEYS:
        return True
    match = _TIER_KEY.match(key)
    return match is not None and match["base"] in RATE_KEYS


def _decimal(key: str, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number of USD per token, not {value!r}")
    try:
        # str() keeps a float as written (2.5e-06), not its binary expansion
        out = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ConfigError(f"{key} must be a number of USD per token, not {value!r}") from exc
    if not out.is_finite() or out < 0:
        raise ConfigError(f"{key} must be a non-negative number of USD per token, not {value!r}")
    return out


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{key} must be a whole number of tokens, not {value!r}")
    try:
        out = int(value)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a whole number of tokens, not {value!r}") from exc
    if out <= 0:
        raise ConfigError(f"{key} must be a positive number of tokens, not {value!r}")
    return out
