"""A response's usage, in whatever shape it comes, as a normal-form :class:`llmswitch.ir.Usage`.

Reads OpenAI Chat Completions usage (``prompt_tokens`` ..., with LiteLLM's and our cache-write
fields), OpenAI Responses usage (``input_tokens`` with ``input_tokens_details``), Anthropic usage
(``input_tokens`` that leave cache reads and writes out) and Gemini ``usageMetadata``, from dicts or
from SDK objects (anything with ``model_dump()``):

    >>> usage_from_wire({"prompt_tokens": 1000, "completion_tokens": 500,
    ...                  "prompt_tokens_details": {"cached_tokens": 400}}).cache_read_tokens
    400
    >>> usage_from_wire({"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 5}).input_tokens
    100
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch import ir


def as_dict(obj: Any) -> dict[str, Any]:
    """``obj`` as a plain dict: a mapping as is, an SDK object through ``model_dump()``; else empty."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        out = dump()
        return dict(out) if isinstance(out, Mapping) else {}
    return {}


def usage_from_wire(usage: Any) -> ir.Usage:
    """Normal-form usage from a usage dict or object of any dialect we speak (empty usage if unreadable)."""
    if isinstance(usage, ir.Usage):
        return usage
    u = as_dict(usage)
    if "prompt_tokens" in u or "completion_tokens" in u:
        return _from_openai_chat(u)
    if "promptTokenCount" in u or "candidatesTokenCount" in u:
        from llmswitch.dialects.gemini_response import map_usage_in as gemini_usage

        return gemini_usage(u)
    anthropic_cache = "cache_read_input_tokens" in u or "cache_creation_input_tokens" in u
    if "input_tokens_details" in u or ("output_tokens_details" in u and not anthropic_cache):
        return _from_openai_responses(u)
    if "input_tokens" in u or "output_tokens" in u:
        from llmswitch.dialects.anthropic_content import map_usage_in as anthropic_usage

        return anthropic_usage(u)
    return ir.Usage()


def _from_openai_chat(u: Mapping[str, Any]) -> ir.Usage:
    from llmswitch.dialects.openai_chat import map_usage_in

    out = map_usage_in(dict(u))
    # the 5m/1h split of cache writes, as our results and LiteLLM's carry it
    split = u.get("cache_creation") or {}
    if isinstance(split, Mapping):
        out.cache_write_5m_tokens = _int(split.get("ephemeral_5m_input_tokens"))
        out.cache_write_1h_tokens = _int(split.get("ephemeral_1h_input_tokens"))
    if not out.cache_write_tokens:
        # LiteLLM's own field for Anthropic cache writes on OpenAI-shaped usage
        out.cache_write_tokens = _int(u.get("cache_creation_input_tokens"))
    return out


def _from_openai_responses(u: Mapping[str, Any]) -> ir.Usage:
    details_in = u.get("input_tokens_details") or {}
    details_out = u.get("output_tokens_details") or {}
    return ir.Usage(
        input_tokens=_int(u.get("input_tokens")),
        output_tokens=_int(u.get("output_tokens")),
        cache_read_tokens=_int(details_in.get("cached_tokens")),
        reasoning_tokens=_int(details_out.get("reasoning_tokens")),
        reasoning_reported="reasoning_tokens" in details_out,
    )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
