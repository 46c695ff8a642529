"""Prices and costs by model name: what the SDK, the gateway and users call.

- :func:`price_for` — the shipped price of a model, with a deployment's overrides laid over it;
- :func:`cost_for_response` — the cost of one answered request, ``None`` when its model has no price;
- :func:`completion_cost` — LiteLLM's helper: the cost of a finished response object or dict.

    >>> from llmswitch import ir
    >>> cost_for_response("gpt-4o-2024-08-06", "openai", ir.Usage(input_tokens=1_000, output_tokens=500))
    0.0075
    >>> cost_for_response("my-finetune", None, ir.Usage(input_tokens=1_000)) is None
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch import ir
from llmswitch.cost.compute import cost_of, cost_of_embedding
from llmswitch.cost.overrides import apply_overrides
from llmswitch.cost.price import Price
from llmswitch.cost.table import lookup, split_model
from llmswitch.cost.usage import as_dict, usage_from_wire
from llmswitch.errors import ConfigError


def price_for(model: str, provider: str | None = None, overrides: Mapping[str, Any] | None = None) -> Price | None:
    """The price of ``model`` served by ``provider``, or ``None`` when neither the table nor ``overrides`` price it.

    ``overrides`` holds LiteLLM's per-token keys (``input_cost_per_token`` ...) as a deployment's
    ``model_info`` or ``litellm_params`` write them; pass both merged (see
    :mod:`llmswitch.cost.overrides`). The table prices first-party APIs only: ``gpt-4o`` through
    ``azure`` or ``openrouter`` is unpriced unless overridden.

        >>> price_for("gpt-4o").max_output_tokens
        16384
        >>> float(price_for("gpt-4o", overrides={"input_cost_per_token": 2e-06}).input * 1_000_000)
        2.0
    """
    base = lookup(model, provider)
    if not overrides:
        return base
    return apply_overrides(base, split_model(model, provider)[0] or model, overrides)


def cost_for_response(
    model: str,
    provider: str | None,
    usage: ir.Usage | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    batch: bool = False,
) -> float | None:
    """USD cost of a response ``model`` produced with ``usage``; ``None`` when the model has no price or there is
    no usage — never a guess.

    ``model`` is the name the response carries (a dated snapshot resolves to its family unless the
    snapshot is priced apart). Embedding models bill their input tokens only.
    """
    if usage is None:
        return None
    price = price_for(model, provider, overrides)
    if price is None:
        return None
    if price.mode == "embedding":
        return cost_of_embedding(usage, price, batch=batch)
    return cost_of(usage, price, batch=batch)


def completion_cost(
    completion_response: Any = None,
    model: str | None = None,
    custom_llm_provider: str | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    batch: bool = False,
) -> float:
    """USD cost of a finished response, as LiteLLM's ``completion_cost``.

    Takes our :class:`~llmswitch.results.ModelResponse` or ``EmbeddingResponse``, an openai-SDK
    ``ChatCompletion`` (or Anthropic ``Message``), or their dicts: anything with ``model`` and
    ``usage``. ``model=`` prices it as another model (a deployment's real one);
    ``overrides`` are per-token prices under LiteLLM's names.

        >>> completion_cost({"model": "gpt-4o-mini", "usage": {"prompt_tokens": 1000, "completion_tokens": 100}})
        0.00021

    Raises :class:`~llmswitch.errors.ConfigError` when the model has no known price or the response
    has no usage, rather than report a cost that is not one.
    """
    body = as_dict(completion_response)
    name = model or body.get("model")
    if not isinstance(name, str) or not name:
        raise ConfigError("completion_cost needs a response that names its model, or model=")
    raw_usage = body.get("usage") if body else getattr(completion_response, "usage", None)
    if raw_usage is None:
        raise ConfigError(f"the response of {name!r} carries no usage to price")
    usage = usage_from_wire(raw_usage)
    cost = cost_for_response(name, custom_llm_provider, usage, overrides, batch=batch)
    if cost is None:
        where = f" from {custom_llm_provider}" if custom_llm_provider else ""
        raise ConfigError(
            f"no price known for model {name!r}{where}: give its input_cost_per_token and "
            "output_cost_per_token in overrides= (or the deployment's model_info)"
        )
    return cost
