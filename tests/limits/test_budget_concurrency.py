"""200 concurrent reservations of random cost against one budget, from two limiter instances at once.

On Redis the two instances are two processes; in memory (which is per process by design) they are two
threads, each with its own event loop, sharing one limiter. Either way the admitted total may pass the
budget by less than the cost of one request, the last one admitted, and never by more. The measured
overshoot is printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from limits_helpers import REDIS_URL

from llmswitch.limits import Limiter, Refusal
from llmswitch.limits.memory import MemoryLimiter
from llmswitch.limits.redis_limiter import RedisLimiter

BUDGET = 1.0
REQUESTS = 200
SUBJECT = "key:shared"
MODES = ("settle-as-they-go", "all-in-flight")


def random_costs(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [round(rng.uniform(0.005, 0.2), 6) for _ in range(REQUESTS)]


async def race(limiter: Limiter, costs: list[float], mode: str) -> list[float]:
    """Reserve every cost at once; settle each at its estimate. The admitted costs."""
    if mode == "all-in-flight":
        held = await asyncio.gather(*(limiter.reserve(SUBJECT, cost, BUDGET) for cost in costs))
        admitted = [res for res in held if not isinstance(res, Refusal)]
        await asyncio.gather(*(limiter.settle(res, res.cost) for res in admitted))
        return [res.cost for res in admitted]

    async def one(cost: float) -> float | None:
        res = await limiter.reserve(SUBJECT, cost, BUDGET)
        if isinstance(res, Refusal):
            return None
        await asyncio.sleep(0)  # in flight while the others race
        await limiter.settle(res, cost)
        return cost

    return [cost for cost in await asyncio.gather(*(one(cost) for cost in costs)) if cost is not None]


def redis_worker(prefix: str, costs: list[float], mode: str, barrier: Any, results: Any) -> None:
    async def main() -> list[float]:
        # generous bounds: this measures atomicity, not latency, on a machine busy with other tests
        async with RedisLimiter(REDIS_URL, prefix=prefix, timeout_s=5, deadline_s=10) as limiter:
            assert await limiter.ping()
            barrier.wait(timeout=60)
            return await race(limiter, costs, mode)

    results.put(asyncio.run(main()))


def run_in_two_processes(prefix: str, halves: list[list[float]], mode: str) -> list[list[float]]:
    ctx = multiprocessing.get_context("spawn")  # fork in a threaded pytest is unsafe (and warns)
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=redis_worker, args=(prefix, half, mode, barrier, results)) for half in halves]
    for proc in procs:
        proc.start()
    try:
        out: list[list[float]] = [results.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
    assert all(proc.exitcode == 0 for proc in procs)
    return out


def run_in_two_threads(halves: list[list[float]], mode: str) -> tuple[list[list[float]], MemoryLimiter]:
    limiter = MemoryLimiter()
    barrier = threading.Barrier(2)
    out: list[list[float]] = [[], []]

    def worker(i: int) -> None:
        barrier.wait(timeout=60)
        out[i] = asyncio.run(race(limiter, halves[i], mode))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return out, limiter


def check_overshoot(label: str, per_instance: list[list[float]], spent: float) -> None:
    admitted = [cost for costs in per_instance for cost in costs]
    total = sum(admitted)
    overshoot = total - BUDGET
    print(
        f"\n{label}: {len(admitted)}/{REQUESTS} admitted ({' + '.join(str(len(c)) for c in per_instance)}), "
        f"total {total:.6f} for a budget of {BUDGET}: overshoot {overshoot:.6f}, "
        f"largest admitted request {max(admitted):.6f}"
    )
    assert total >= BUDGET  # demand was far above the budget: it must have been used up
    # the last request admitted saw spent + reserved < budget, so it alone can end past the budget
    assert overshoot < max(admitted)
    assert spent == pytest.approx(total, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_two_redis_processes_overshoot_by_less_than_one_request(prefix: str, mode: str) -> None:
    costs = random_costs(seed=MODES.index(mode))
    per_process = run_in_two_processes(prefix, [costs[0::2], costs[1::2]], mode)

    async def spent() -> float:
        async with RedisLimiter(REDIS_URL, prefix=prefix) as limiter:
            state = await limiter.budget(SUBJECT)
            assert state is not None and state.reserved == 0.0
            return state.spent

    check_overshoot(f"redis, two processes, {mode}", per_process, asyncio.run(spent()))


@pytest.mark.parametrize("mode", MODES)
def test_two_threads_on_one_memory_limiter_overshoot_by_less_than_one_request(mode: str) -> None:
    costs = random_costs(seed=7)
    per_thread, limiter = run_in_two_threads([costs[0::2], costs[1::2]], mode)
    state = asyncio.run(limiter.budget(SUBJECT))
    assert state is not None and state.reserved == 0.0
    check_overshoot(f"memory, two threads, {mode}", per_thread, state.spent)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_two_instances_in_one_loop(backend: str, request: pytest.FixtureRequest) -> None:
    """Two limiter instances interleaving on one event loop (Redis: two connection pools)."""
    prefix: str = request.getfixturevalue("prefix") if backend == "redis" else ""
    costs = random_costs(seed=11)

    async def main() -> tuple[list[list[float]], float]:
        make: Callable[[], Limiter]
        if backend == "redis":

            def make() -> Limiter:
                return RedisLimiter(REDIS_URL, prefix=prefix, timeout_s=5, deadline_s=10)

            first, second = make(), make()
        else:
            first = second = MemoryLimiter()
        try:
            halves = await asyncio.gather(
                race(first, costs[0::2], "settle-as-they-go"), race(second, costs[1::2], "settle-as-they-go")
            )
            state = await first.budget(SUBJECT)
            assert state is not None
            return list(halves), state.spent
        finally:
            await first.aclose()
            await second.aclose()

    per_instance, spent = asyncio.run(main())
    check_overshoot(f"{backend}, two instances in one loop", per_instance, spent)
