"""Each routing strategy picks as documented, deterministically under a seeded rng."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from llmswitch.errors import ConfigError
from llmswitch.router.deployments import Target, build_targets
from llmswitch.router.strategies import (
    LeastBusy,
    LowestCost,
    LowestLatency,
    MostHeadroom,
    WeightedShuffle,
    model_info_cost,
    strategy_for,
)
from llmswitch.router.usage import LocalUsage


def targets(*rows: dict[str, Any]) -> list[Target]:
    out = []
    for i, extra in enumerate(rows):
        info = extra.pop("model_info", {})
        lp = {"model": f"openai/m{i}", "api_key": "k", **extra}
        out.append({"model_name": "g", "litellm_params": lp, "model_info": {"id": f"d{i}", **info}})
    return build_targets(out)


def rng(seed: int = 7) -> Any:
    return random.Random(seed).random


def test_weighted_shuffle_follows_the_weights() -> None:
    ts = targets({"weight": 1}, {"weight": 3}, {"weight": 0})
    s = WeightedShuffle(rng())
    picks = Counter(s.pick(ts, False).id for _ in range(8000))
    assert picks["d2"] == 0
    assert picks["d1"] / picks["d0"] == pytest.approx(3.0, rel=0.1)


def test_weighted_shuffle_with_no_weight_at_all_is_uniform() -> None:
    ts = targets({"weight": 0}, {"weight": 0})
    s = WeightedShuffle(rng())
    picks = Counter(s.pick(ts, False).id for _ in range(2000))
    assert picks["d0"] / 2000 == pytest.approx(0.5, abs=0.05)


def test_least_busy_takes_the_fewest_in_flight_and_shares_ties() -> None:
    a, b, c = targets({}, {}, {})
    a.in_flight, b.in_flight, c.in_flight = 3, 1, 1
    s = LeastBusy(rng())
    picks = Counter(s.pick([a, b, c], False).id for _ in range(2000))
    assert set(picks) == {"d1", "d2"}
    assert picks["d1"] / 2000 == pytest.approx(0.5, abs=0.05)


def test_lowest_latency_compares_two_random_picks() -> None:
    fast, mid, slow = targets({}, {}, {})
    fast.latency, mid.latency, slow.latency = 0.1, 0.5, 2.0
    s = LowestLatency(rng())
    picks = Counter(s.pick([fast, mid, slow], False).id for _ in range(3000))
    # power of two choices: the slowest never wins a comparison, the fastest wins both it is in
    assert picks["d2"] == 0
    assert picks["d0"] / 3000 == pytest.approx(2 / 3, abs=0.04)
    assert picks["d1"] / 3000 == pytest.approx(1 / 3, abs=0.04)
    # with two deployments the faster one always wins
    assert {s.pick([slow, fast], False).id for _ in range(50)} == {"d0"}


def test_lowest_latency_uses_time_to_first_token_for_streams() -> None:
    a, b = targets({}, {})
    a.latency, a.ttft = 0.5, 2.0  # quick whole answers, slow to start streaming
    b.latency, b.ttft = 3.0, 0.2
    s = LowestLatency(rng())
    assert s.pick([a, b], False) is a
    assert s.pick([a, b], True) is b


def test_lowest_latency_tries_an_unmeasured_deployment() -> None:
    measured, new = targets({}, {})
    measured.latency = 0.05
    assert LowestLatency(rng()).pick([measured, new], False) is new


def test_lowest_cost_reads_model_info_prices_and_ranks_unknown_last() -> None:
    ts = targets(
        {"model_info": {"input_cost_per_token": 3e-6, "output_cost_per_token": 15e-6}},
        {"model_info": {"input_cost_per_token": 0.15e-6, "output_cost_per_token": 0.6e-6}},
        {},
    )
    for t in ts:
        t.cost = model_info_cost(t)
    assert ts[2].cost is None
    s = LowestCost(rng())
    assert {s.pick(ts, False).id for _ in range(20)} == {"d1"}
    assert s.pick([ts[2], ts[0]], False).id == "d0"


def test_lowest_cost_takes_prices_from_any_cost_source() -> None:
    a, b = targets({}, {})
    table = {"m0": (1e-6, 1e-6), "m1": (5e-7, 5e-7)}
    for t in (a, b):
        t.cost = table[t.model]
    assert LowestCost(rng()).pick([a, b], False) is b


def test_usage_based_takes_the_most_headroom() -> None:
    usage = LocalUsage(lambda: 0.0)
    a, b, c = targets({"rpm": 10}, {"rpm": 100}, {"tpm": 1000})
    usage.add(a.id, requests=2)  # 80% left
    usage.add(b.id, requests=50)  # 50% left
    usage.add(c.id, tokens=900)  # 10% left
    s = MostHeadroom(rng(), usage)
    assert s.pick([a, b, c], False) is a
    usage.add(a.id, requests=7)  # 10% left
    assert s.pick([a, b, c], False) is b


def test_usage_based_without_caps_prefers_fewest_tokens() -> None:
    usage = LocalUsage(lambda: 0.0)
    a, b = targets({}, {})
    usage.add(a.id, tokens=500)
    usage.add(b.id, tokens=100)
    assert MostHeadroom(rng(), usage).pick([a, b], False) is b


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("simple-shuffle", WeightedShuffle),
        ("least-busy", LeastBusy),
        ("latency-based-routing", LowestLatency),
        ("cost-based-routing", LowestCost),
        ("usage-based-routing", MostHeadroom),
        ("usage-based-routing-v2", MostHeadroom),
        ("lowest-latency", LowestLatency),
    ],
)
def test_litellm_names(name: str, kind: type) -> None:
    assert isinstance(strategy_for(name, rng=rng()), kind)


def test_an_unknown_name_is_a_config_error_and_objects_pass_through() -> None:
    with pytest.raises(ConfigError, match="least-bsy"):
        strategy_for("least-bsy", rng=rng())
    custom = LeastBusy(rng())
    assert strategy_for(custom, rng=rng()) is custom
