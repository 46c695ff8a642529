"""What answers cost, as the gateway's accounting needs it: each deployment's price resolved once, the
cost of an answer's usage, the estimate a budget reserves before the call, and the cost header.

The caches here are keyed by object identity and keep the object, so a new deployment or price that
lands at a reused address is never taken for the old one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from llmswitch import ir
from llmswitch.cost import cost_of, cost_of_embedding, estimate_cost, price_for
from llmswitch.server.amounts import cost_text

_OPTIONAL_STR = (str, type(None))


class Deployment:
    """What a spend record needs of the deployment that answered, and its price; once per deployment."""

    __slots__ = ("id", "kind", "model", "plain", "price", "provider", "target")

    def __init__(self, route: Any, target: Any, model: str) -> None:
        self.kind = type(route)
        self.target = target
        self.id = getattr(route, "id", None)
        self.provider = str(getattr(route, "provider", "")) or None
        self.model = getattr(route, "model", None)
        self.plain = all(type(v) in _OPTIONAL_STR for v in (self.id, self.provider, self.model))
        try:
            self.price = price_for(model, self.provider, overrides_of(target))
        except Exception:
            self.price = None


def overrides_of(target: Any) -> dict[str, Any] | None:
    params = getattr(target, "params", None) or {}
    info = getattr(target, "model_info", None) or {}
    if not params and not info:
        return None
    return {**params, **info}


# each deployment, resolved once: (id(target), model) -> Deployment (which keeps its target, so a
# later target at the same address is told apart)
_by_target: dict[tuple[int, str], Deployment] = {}


def deployment_of(route: Any) -> Deployment:
    target = getattr(route, "target", route)
    model = str(getattr(route, "model", ""))
    served = _by_target.get((id(target), model))
    if served is None or served.target is not target or served.kind is not type(route):
        if len(_by_target) > 10_000:
            _by_target.clear()
        served = _by_target[(id(target), model)] = Deployment(route, target, model)
    return served


def cost_of_usage(price: Any, usage: ir.Usage, *, batch: bool = False) -> float | None:
    """The cost of ``usage`` at ``price`` (at its batch rates with ``batch``), or ``None`` if it cannot be priced."""
    try:
        if price.mode == "embedding":
            return float(cost_of_embedding(usage, price, batch=batch))
        return float(cost_of(usage, price, batch=batch))
    except Exception:
        return None


#: the output a reservation assumes when neither the request (``max_tokens``) nor the price table (the
#: model's ``max_output_tokens``) bounds it: without a bound the estimate would be no reservation at all,
#: and concurrent requests could overspend a budget without limit. ``LLMSWITCH_DEFAULT_MAX_OUTPUT_TOKENS``
#: changes it (see docs/spend.md).
DEFAULT_MAX_OUTPUT_TOKENS = 4096

# (id(price), output bound) -> (price, input rate, the output's part of the estimate), for prices without
# long-context tiers: what estimate_cost computes, less the half that is the same on every request
_reserve: dict[tuple[int, int], tuple[Any, Decimal, Decimal]] = {}


def reserve_estimate(
    price: Any, tokens: int, max_tokens: int | None, default_output: int = DEFAULT_MAX_OUTPUT_TOKENS
) -> float:
    """The cost a budget reserves before the call: :func:`~llmswitch.cost.estimate_cost`, to the bit, for
    the request's ``max_tokens``, else the model's maximum output, else ``default_output`` tokens."""
    limit = max_tokens if max_tokens is not None else price.max_output_tokens
    if limit is None:
        limit = default_output
    known = _reserve.get((id(price), limit))
    if known is not None and known[0] is price and tokens >= 0:
        return float(tokens * known[1] + known[2])
    try:
        estimate = estimate_cost(price, tokens, limit)
    except Exception:
        return 0.0
    if not price.tiers and isinstance(limit, int):
        rates = price.rates()
        if len(_reserve) > 10_000:
            _reserve.clear()
        _reserve[(id(price), limit)] = (price, rates.input, max(limit, 0) * max(rates.output, rates.reasoning))
    return estimate


def cost_header(cost: float | None) -> dict[str, str]:
    return {} if cost is None else {"x-llmswitch-cost": cost_text(cost)}


def reachable_deployments(router: Any, group: str) -> list[Any]:
    """The deployments a request for ``group`` may be served by: its group's, then its fallbacks'."""
    targets = list(router.deployments(group))
    fallbacks = getattr(router, "fallbacks", None)
    if fallbacks:
        resolved = getattr(router, "aliases", {}).get(group, group)
        for reason in ("error", "context", "content_policy"):
            for other in fallbacks.chain(resolved, reason):
                targets.extend(router.deployments(other))
    return targets


def dearer(a: Any, b: Any) -> bool:
    """Whether price ``a`` costs at least what ``b`` does for every request (so ``b`` need not be kept)."""
    ra, rb = a.rates(), b.rates()
    if a.tiers or b.tiers:
        return a is b
    return bool(ra.input >= rb.input and max(ra.output, ra.reasoning) >= max(rb.output, rb.reasoning))
