"""What only the memory backend has to prove: bounded state, and safety across threads."""

from __future__ import annotations

import asyncio
import threading

from limits_helpers import FakeClock

from llmswitch.limits import SubjectLimits
from llmswitch.limits.memory import MemoryLimiter


def test_idle_subjects_are_forgotten_so_state_stays_bounded() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock, lease_ttl_s=60)

    async def body() -> None:
        for i in range(20_000):
            await limiter.check_and_consume([SubjectLimits(f"key:{i}", rpm_limit=10)])
            clock.advance(0.01)  # 200 s in all: the early subjects are idle and full again
        # subjects seen in the last lease TTL (6000) are live; the state never holds more than twice that
        assert "key:0" not in limiter._rates
        assert len(limiter._rates) <= 2 * 6_000 + 1
        # a subject still within its window keeps its state
        decision = await limiter.check_and_consume([SubjectLimits("key:19999", rpm_limit=10)])
        assert decision.remaining == 8

    asyncio.run(body())


def test_threads_sharing_a_limiter_never_admit_past_a_limit() -> None:
    limiter = MemoryLimiter(clock=FakeClock())
    key = [SubjectLimits("key:a", rpm_limit=1000)]
    admitted: list[int] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        async def run() -> int:
            barrier.wait()
            return sum([(await limiter.check_and_consume(key)).allowed for _ in range(500)])

        admitted.append(asyncio.run(run()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 1000
