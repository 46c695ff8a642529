"""The price table shipped in the package (``prices.json``), read on first use, and model names resolved to it.

A response names its model the way the provider does (``gpt-4o-2024-08-06``, ``claude-sonnet-4-20250514``,
``models/gemini-2.0-flash-001``); a caller may add a provider prefix (``openai/gpt-4o``). Resolution
strips the prefixes, tries the name as is, then its aliases, then the name without a date or version
suffix, so an exact row (``gpt-4o-2024-05-13``, priced apart) always wins over its family:

    >>> lookup("openai/gpt-4o-2024-08-06").model, lookup("gpt-4o-2024-05-13").model
    ('gpt-4o', 'gpt-4o-2024-05-13')
    >>> lookup("claude-sonnet-4-20250514", "anthropic").model
    'claude-sonnet-4'
    >>> lookup("gpt-4o", "azure") is None  # the table prices first-party APIs only
    True
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from llmswitch.cost.price import Mode, Price, PriceTier, per_million

# the names a provider prefix may take, mapped to the provider named in the table
PROVIDER_ALIASES: Mapping[str, str] = {"google": "gemini", "google_ai_studio": "gemini", "claude": "anthropic"}

# suffixes that name a snapshot of a model priced like the model: dates, Vertex's "@date", Gemini's "-001"
_SNAPSHOT = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8}|-\d{3})$")


class PriceTable:
    """Prices by canonical model name, with the aliases that lead to them."""

    def __init__(self, models: Mapping[str, Price], aliases: Mapping[str, str], meta: Mapping[str, Any]) -> None:
        self.models = models
        self.aliases = aliases
        self.meta = meta

    def resolve(self, model: str, provider: str | None = None) -> Price | None:
        """The price of ``model`` as served by ``provider`` (or the provider its prefix names), else ``None``."""
        name, hint = split_model(model, provider)
        for candidate in (name, _SNAPSHOT.sub("", name)):
            price = self.models.get(self.aliases.get(candidate, candidate))
            if price is not None:
                return price if hint is None or hint == price.provider else None
        return None


def split_model(model: str, provider: str | None = None) -> tuple[str, str | None]:
    """(bare model name, provider hint): ``"openai/gpt-4o"`` -> ``("gpt-4o", "openai")``.

    An explicit ``provider`` wins over the prefix; Gemini's ``models/`` prefix is not a provider.

    >>> split_model("models/gemini-2.5-flash"), split_model("gpt-4o", "OpenAI")
    (('gemini-2.5-flash', None), ('gpt-4o', 'openai'))
    """
    segments = [s for s in model.strip().lower().split("/") if s and s != "models"]
    name = segments[-1] if segments else ""
    hint = provider.lower() if provider else (segments[0] if len(segments) > 1 else None)
    return name, PROVIDER_ALIASES.get(hint, hint) if hint else None


@cache
def load_table() -> PriceTable:
    """The shipped table, parsed once (decimal-exact) on first use."""
    text = resources.files("llmswitch.cost").joinpath("prices.json").read_text(encoding="utf-8")
    return parse_table(json.loads(text, parse_float=Decimal))


def lookup(model: str, provider: str | None = None) -> Price | None:
    """The shipped price of ``model`` (see the module docstring for how names resolve), or ``None``."""
    return load_table().resolve(model, provider)


def parse_table(doc: Mapping[str, Any]) -> PriceTable:
    """A :class:`PriceTable` from the JSON document's dict (prices per million tokens)."""
    models = {name.lower(): _parse_model(name.lower(), row) for name, row in doc["models"].items()}
    aliases = {alias.lower(): target.lower() for alias, target in doc.get("aliases", {}).items()}
    missing = sorted(a for a, t in aliases.items() if t not in models)
    if missing:
        raise ValueError(f"prices.json: aliases to unknown models: {', '.join(missing)}")
    return PriceTable(models, aliases, doc.get("_meta", {}))


def _parse_model(name: str, row: Mapping[str, Any]) -> Price:
    mode: Mode = "embedding" if row.get("mode") == "embedding" else "chat"
    return Price(
        model=name,
        provider=row["provider"],
        mode=mode,
        input=per_million(row["input"]),
        output=_rate(row, "output") or Decimal(0),
        cache_read=_rate(row, "cache_read"),
        cache_write_5m=_rate(row, "cache_write_5m"),
        cache_write_1h=_rate(row, "cache_write_1h"),
        reasoning=_rate(row, "reasoning"),
        input_audio=_rate(row, "input_audio"),
        output_audio=_rate(row, "output_audio"),
        web_search_request=Decimal(row["web_search_requests"]) / 1000 if row.get("web_search_requests") else None,
        batch_discount=Decimal(row["batch_discount"]) if row.get("batch_discount") is not None else None,
        tiers=tuple(_parse_tier(t) for t in row.get("tiers", ())),
        max_input_tokens=row.get("max_input_tokens"),
        max_output_tokens=row.get("max_output_tokens"),
    )


def _parse_tier(row: Mapping[str, Any]) -> PriceTier:
    return PriceTier(
        above_input_tokens=int(row["above_input_tokens"]),
        input=_rate(row, "input"),
        output=_rate(row, "output"),
        cache_read=_rate(row, "cache_read"),
        cache_write_5m=_rate(row, "cache_write_5m"),
        cache_write_1h=_rate(row, "cache_write_1h"),
        reasoning=_rate(row, "reasoning"),
    )


def _rate(row: Mapping[str, Any], key: str) -> Decimal | None:
    value = row.get(key)
    return per_million(value) if value is not None else None
