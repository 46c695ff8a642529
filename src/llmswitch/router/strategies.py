"""Which deployment of a tier takes the next request.

A strategy is one method, ``pick(candidates, stream) -> Target``, over deployments that are all
available (breaker closed or probing, not resting after a 429, under their rpm/tpm caps, the prompt
fits). Names are LiteLLM's ``routing_strategy`` values (our shorter names work too):

==========================  ==========================================================================
``simple-shuffle``          weighted random by ``weight``
``least-busy``              fewest requests in flight
``latency-based-routing``   lower latency average (time to first token for streams) of two random picks
``cost-based-routing``      lowest price per token (``model_info`` prices, or a pluggable cost source)
``usage-based-routing``     most rpm/tpm headroom left this minute (``-v2`` is the same)
==========================  ==========================================================================

Ties go to a random one of the tied deployments, so equal deployments share the load.

    >>> import random
    >>> strategy = strategy_for("least-busy", rng=random.Random(0).random)
    >>> type(strategy).__name__
    'LeastBusy'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from llmswitch.errors import ConfigError
from llmswitch.router.deployments import Target
from llmswitch.router.usage import LocalUsage, UsageCounter

Rng = Callable[[], float]


class Strategy(Protocol):
    def pick(self, candidates: Sequence[Target], stream: bool) -> Target:
        """One of ``candidates`` (never empty)."""
        ...


class CostSource(Protocol):
    """Price per token of a deployment: ``(input, output)`` in dollars, or ``None`` when unknown."""

    def __call__(self, target: Target) -> tuple[float, float] | None: ...


def model_info_cost(target: Target) -> tuple[float, float] | None:
    """The default cost source: ``model_info.input_cost_per_token`` / ``output_cost_per_token``."""
    info: Mapping[str, Any] = target.model_info
    cin, cout = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if cin is None and cout is None:
        return None
    try:
        return float(cin or 0.0), float(cout or 0.0)
    except (TypeError, ValueError):
        return None


def _tie_break(rng: Rng, candidates: Sequence[Target], key: Callable[[Target], float]) -> Target:
    """The candidate with the lowest key; a uniformly random one among equals (reservoir sampling)."""
    best = candidates[0]
    best_key = key(best)
    ties = 1
    for t in candidates[1:]:
        k = key(t)
        if k < best_key:
            best, best_key, ties = t, k, 1
        elif k == best_key:
            ties += 1
            if rng() * ties < 1.0:
                best = t
    return best


class WeightedShuffle:
    """Random, in proportion to ``weight``."""

    def __init__(self, rng: Rng) -> None:
        self.rng = rng

    def pick(self, candidates: Sequence[Target], stream: bool) -> Target:
        if len(candidates) == 1:
            return candidates[0]
        total = 0.0
        for t in candidates:
            total += max(t.weight, 0.0)
        if total <= 0:
            return candidates[int(self.rng() * len(candidates)) % len(candidates)]
        x = self.rng() * total
        for t in candidates:
            x -= max(t.weight, 0.0)
            if x < 0:
                return t
        return candidates[-1]


class LeastBusy:
    """Fewest requests in flight from this process."""

    def __init__(self, rng: Rng) -> None:
        self.rng = rng

    def pick(self, candidates: Sequence[Target], stream: bool) -> Target:
        return _tie_break(self.rng, candidates, lambda t: t.in_flight)


class LowestLatency:
    """Power of two choices over the latency averages: two deployments at random, the faster one wins.

    Always taking the single fastest would herd every request onto it until its average caught up;
    two random choices keep most of the gain and spread the load. Streams compare time to first token.
    A deployment with no average yet counts as fastest, so it gets measured.
    """

    def __init__(self, rng: Rng) -> None:
        self.rng = rng

    def pick(self, candidates: Sequence[Target], stream: bool) -> Target:
        n = len(candidates)
        if n == 1:
            return candidates[0]
        i = int(self.rng() * n) % n
        j = int(self.rng() * (n - 1)) % (n - 1)
        if j >= i:
            j += 1
        a, b = candidates[i], candidates[j]
        return b if _latency(b, stream) < _latency(a, stream) else a


def _latency(t: Target, stream: bool) -> float:
    first = t.ttft if stream else t.latency
    value = first if first is not None else (t.latency if stream else t.ttft)
    return value if value is not None else 0.0


class LowestCost:
    """Cheapest per token (input plus output price); unknown prices rank last."""

    def __init__(self, rng: Rng) -> None:
        self.rng = rng

    def pick(self, candidates: Sequence[Target], stream: bool) -> Target:
        return _tie_break(self.rng, candidates, _price)


def _price(t: Target) -> float:
    return math.inf if t.cost is None else t.cost[0] + t.cost[1]


class MostHeadroom:
    """The most rpm/tpm left this minute, as a fraction of the cap (the tighter of the two); deployments
    without caps count as fully free and, among themselves, the one that used fewest tokens wins."""

    def __init__(self, rng: Rng, usage: UsageCounter) -> None:
        self.rng = rng
        self.usage = usage

    def pick(self, candidates: Sequence[Target], stream: bool) -> Target:
        return _tie_break(self.rng, candidates, self._key)

    def _key(self, t: Target) -> float:
        requests, tokens = self.usage.used(t.id)
        free = 1.0
        if t.rpm:
            free = min(free, 1.0 - requests / t.rpm)
        if t.tpm:
            free = min(free, 1.0 - tokens / t.tpm)
        # most free first, then fewest tokens: one number, free fraction dominating
        return -free * 1e12 + tokens


STRATEGY_NAMES: dict[str, str] = {
    "simple-shuffle": "shuffle",
    "weighted-shuffle": "shuffle",
    "shuffle": "shuffle",
    "least-busy": "least-busy",
    "latency-based-routing": "latency",
    "lowest-latency": "latency",
    "cost-based-routing": "cost",
    "lowest-cost": "cost",
    "usage-based-routing": "usage",
    "usage-based-routing-v2": "usage",
    "usage-based": "usage",
}


def strategy_for(name: str | Strategy, *, rng: Rng, usage: UsageCounter | None = None) -> Strategy:
    """The strategy a ``routing_strategy`` name stands for; a strategy object is returned as is."""
    if not isinstance(name, str):
        return name
    kind = STRATEGY_NAMES.get(name)
    if kind == "shuffle":
        return WeightedShuffle(rng)
    if kind == "least-busy":
        return LeastBusy(rng)
    if kind == "latency":
        return LowestLatency(rng)
    if kind == "cost":
        return LowestCost(rng)
    if kind == "usage":
        return MostHeadroom(rng, usage if usage is not None else LocalUsage())
    raise ConfigError(f"unknown routing strategy {name!r}; one of: {', '.join(STRATEGY_NAMES)}")
