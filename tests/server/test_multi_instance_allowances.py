"""Two gateway processes on one Redis, with limits wide enough that each admits from allowances.

A gateway takes an allowance (a block of a key's limits, from Redis at once) where 16 of it fit, and
admits from it in memory (llmswitch.limits.allowance). These tests fire enough requests at a pair of
gateways for both to do so early on and for the limit to be reached, in two waves a moment apart (an
allowance not used up goes back within 0.25 s): across both waves a rate limit admits exactly its
bucket (and what it refilled meanwhile), and a budget exactly the requests it pays for, as when every
request is admitted in Redis one by one (tests/server/test_multi_instance.py).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from multi_harness import (
    GatewayProcess,
    gateway_pair,
    key_info,
    price,
    priced_config,
    wait_key_known,
    wait_logged,
)

from llmswitch import ir
from llmswitch.cost import estimate_cost, price_for
from llmswitch.dialects.openai_chat import decode_request
from llmswitch.limits import BudgetState
from llmswitch.limits.redis_limiter import RedisLimiter
from llmswitch.server.accounting import estimate_prompt_tokens
from llmswitch.store import hash_key
from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture(scope="module")
def gateways(
    upstream: FakeUpstream, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    with gateway_pair(upstream, postgres_url, tmp_path_factory.mktemp("allowances")) as pair:
        yield pair


def wave(
    pair: tuple[GatewayProcess, GatewayProcess], call: Callable[[GatewayProcess], int], threads: int, each: int
) -> Counter[int]:
    """``threads`` clients, each sending ``each`` requests one after another, alternating the gateways."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def client(i: int) -> None:
        for j in range(each):
            status = call(pair[(i + j) % 2])
            with lock:
                statuses[status] += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    return statuses


def test_a_rate_limit_admits_its_bucket_across_two_gateways_admitting_from_allowances(
    gateways: tuple[GatewayProcess, GatewayProcess], up: FakeUpstream
) -> None:
    a, b = gateways
    key = a.new_key(rpm_limit=1200, key_alias=f"rpm1200-{uuid.uuid4().hex[:6]}")
    wait_key_known(b.port, key, timeout=3.5)

    def chat(gw: GatewayProcess) -> int:
        body = {"model": "m-openai", "messages": [{"role": "user", "content": "hello"}]}
        return gw.call("POST", "/v1/chat/completions", body, key=key).status

    before = len(up.requests)
    started = time.monotonic()
    first = wave(gateways, chat, threads=16, each=110)
    time.sleep(0.6)  # what allowances held unused goes back
    second = wave(gateways, chat, threads=8, each=40)
    elapsed = time.monotonic() - started
    answered = first[200] + second[200]
    print(f"rpm_limit=1200, 2080 requests in {elapsed:.2f} s: first wave {dict(first)}, second {dict(second)}")
    assert set(first) | set(second) <= {200, 429}
    refill = math.floor(elapsed * 1200 / 60) + 1
    assert 1200 <= answered <= 1200 + refill
    assert len(up.requests) - before == answered


def test_a_budget_pays_for_its_requests_across_two_gateways_admitting_from_allowances(
    gateways: tuple[GatewayProcess, GatewayProcess], up: FakeUpstream
) -> None:
    a, b = gateways
    out = 200
    body = {"model": "m-openai", "messages": [{"role": "user", "content": "hello"}], "max_tokens": out}
    prompt = estimate_prompt_tokens(decode_request(body))
    usage = ir.Usage(input_tokens=prompt, output_tokens=out)
    cost = price("m-openai", usage)
    gpt4o = price_for("gpt-4o", "openai")
    assert gpt4o is not None and estimate_cost(gpt4o, prompt, out) == pytest.approx(cost)
    key = a.new_key(max_budget=400.5 * cost, key_alias=f"budget-{uuid.uuid4().hex[:6]}")
    wait_key_known(b.port, key, timeout=3.5)
    up.responder = lambda _: Reply(usage=usage, latency=0.01)

    def chat(gw: GatewayProcess) -> int:
        return gw.call("POST", "/v1/chat/completions", body, key=key).status

    try:
        first = wave(gateways, chat, threads=16, each=35)
        time.sleep(0.6)
        second = wave(gateways, chat, threads=4, each=15)
    finally:
        up.responder = None
    answered = first[200] + second[200]
    print(f"budget of 400.5 requests: first wave {dict(first)}, second {dict(second)}")
    assert set(first) | set(second) <= {200, 400}
    # a budget admits while spent + reserved < max_budget: the 401st request is the last
    assert answered == 401
    rows = wait_logged(a.port, key, answered, timeout=5)
    spent = sum(row["spend"] for row in rows)
    assert spent == pytest.approx(401 * cost, rel=1e-9)
    assert key_info(b.port, key)["spend"] == pytest.approx(spent, rel=1e-9)


def metric(gw: GatewayProcess, name: str) -> float:
    text = gw.call("GET", "/metrics", key=None).body.decode()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    assert values, f"{name} not in /metrics"
    return values[0]


def test_admissions_from_allowances_are_counted_in_the_metrics(
    gateways: tuple[GatewayProcess, GatewayProcess], up: FakeUpstream
) -> None:
    a, _ = gateways
    key = a.new_key(rpm_limit=1_000_000, key_alias=f"wide-{uuid.uuid4().hex[:6]}")
    before = metric(a, "llmswitch_limiter_allowance_admissions_total")
    body = {"model": "m-openai", "messages": [{"role": "user", "content": "hello"}]}
    for _ in range(100):
        assert a.call("POST", "/v1/chat/completions", body, key=key).status == 200
    # all but the first few (each allowance is asked for in the background, 4 requests, then 8, 16, ...)
    assert metric(a, "llmswitch_limiter_allowance_admissions_total") - before >= 80
    assert metric(a, "llmswitch_limiter_allowances_total") >= 1


def test_a_gateway_killed_holding_an_allowance_loses_no_spend_and_resurrects_no_budget(
    upstream: FakeUpstream, up: FakeUpstream, postgres_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(priced_config(upstream, postgres_url, redis=True))
    env = {"LLMSWITCH_JOURNAL_DIR": str(tmp_path / "journal")}
    body = {"model": "m-openai", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 50}
    usage = ir.Usage(input_tokens=estimate_prompt_tokens(decode_request(body)), output_tokens=50)
    cost = price("m-openai", usage)
    up.responder = lambda _: Reply(usage=usage)
    gw = GatewayProcess(config, tmp_path / "a.log", env).wait_ready()
    try:
        key = gw.new_key(max_budget=10_000 * cost, key_alias=f"killed-{uuid.uuid4().hex[:6]}")
        for _ in range(60):
            assert gw.call("POST", "/v1/chat/completions", body, key=key).status == 200
        assert metric(gw, "llmswitch_limiter_allowance_admissions_total") >= 40
    finally:
        gw.kill()  # kill -9 with an allowance held: never reported to Redis, its spend journaled only
        up.responder = None

    async def held() -> BudgetState | None:
        async with RedisLimiter() as limiter:  # the gateway's Redis and key names
            return await limiter.budget(f"key:{hash_key(key)}")

    state = asyncio.run(held())
    # what the allowance held stays counted (as spent in full once its lease expires): nothing given back
    assert state is not None and state.spent + state.reserved >= 60 * cost * (1 - 1e-9)
    again = GatewayProcess(config, tmp_path / "b.log", env).wait_ready()
    try:  # the journal the killed process left is shipped: every answer recorded, once
        rows = wait_logged(again.port, key, 60, timeout=10)
        assert len(rows) == 60
        assert key_info(again.port, key)["spend"] == pytest.approx(60 * cost, rel=1e-9)
    finally:
        again.stop()
