"""Strategies inside a running Router: what they learn from real calls and what they are given."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator

import pytest
from router_harness import chat_request, row, run

from llmswitch.router.deployments import Target
from llmswitch.router.router import Router
from llmswitch.testing import FakeUpstream, RecordedRequest, Reply


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    upstream.reset()
    upstream.responder = None
    yield upstream
    upstream.reset()
    upstream.responder = None


def test_latency_based_routing_learns_which_deployment_is_faster(up: FakeUpstream) -> None:
    def responder(rec: RecordedRequest) -> Reply:
        return Reply(text="ok", latency=0.08 if rec.model == "slow" else 0.0)

    up.responder = responder
    r = Router(
        [row(up, "g", "slow"), row(up, "g", "fast")],
        routing_strategy="latency-based-routing",
        rng=random.Random(2).random,
    )

    async def main() -> Counter[str]:
        picks: Counter[str] = Counter()
        for _ in range(30):
            picks[(await r.chat(chat_request("g")))[1].model] += 1
        return picks

    picks = run(main())
    slow, fast = r.deployments("g")
    assert slow.latency is not None and fast.latency is not None and slow.latency > fast.latency
    # with two deployments the power of two choices always compares both: after one measurement each,
    # every request goes to the faster one
    assert picks["slow"] == 1 and picks["fast"] == 29


def test_cost_based_routing_uses_model_info_prices_or_any_cost_source(up: FakeUpstream) -> None:
    rows = [
        row(up, "g", "pricey", info={"input_cost_per_token": 5e-6, "output_cost_per_token": 15e-6}),
        row(up, "g", "cheap", info={"input_cost_per_token": 0.1e-6, "output_cost_per_token": 0.4e-6}),
        row(up, "g", "unknown"),
    ]
    r = Router(rows, routing_strategy="cost-based-routing")
    assert {run(r.chat(chat_request("g")))[1].model for _ in range(5)} == {"cheap"}

    def table(t: Target) -> tuple[float, float] | None:
        return {"unknown": (0.0, 0.0)}.get(t.model)

    r2 = Router(rows, routing_strategy="cost-based-routing", cost_source=table)
    assert run(r2.chat(chat_request("g")))[1].model == "unknown"


def test_least_busy_routes_around_requests_in_flight(up: FakeUpstream) -> None:
    def responder(rec: RecordedRequest) -> Reply:
        return Reply(text="ok", latency=0.2)

    up.responder = responder
    r = Router([row(up, "g", "a"), row(up, "g", "b"), row(up, "g", "c")], routing_strategy="least-busy")

    async def main() -> list[str]:
        routes = await asyncio.gather(*(r.chat(chat_request("g")) for _ in range(6)))
        return [route.model for _, route in routes]

    assert Counter(run(main())) == {"a": 2, "b": 2, "c": 2}


def test_usage_based_routing_spreads_by_headroom(up: FakeUpstream) -> None:
    r = Router(
        [row(up, "g", "small", rpm=10), row(up, "g", "big", rpm=30)],
        routing_strategy="usage-based-routing-v2",
        rng=random.Random(4).random,
    )

    async def main() -> Counter[str]:
        picks: Counter[str] = Counter()
        for _ in range(20):
            picks[(await r.chat(chat_request("g")))[1].model] += 1
        return picks

    picks = run(main())
    # equal fractions of each cap used: three times the traffic to three times the cap
    assert picks == {"small": 5, "big": 15}
