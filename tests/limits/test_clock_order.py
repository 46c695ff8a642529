"""Calls from several gateway processes reach the limiter out of clock order (each process stamps
its call before the network round trip): a rate bucket's time must never move back, or the next
call would count the same interval's drain twice and admit more than the limit."""

from __future__ import annotations

from limits_helpers import FakeClock, RunLimiter

from llmswitch.limits import Limiter, SubjectLimits


def test_a_late_call_stamped_earlier_does_not_refill_the_bucket_twice(
    run_limiter: RunLimiter, clock: FakeClock
) -> None:
    limits = [SubjectLimits("key:clock-order", rpm_limit=2)]

    async def body(limiter: Limiter) -> list[bool]:
        answers = []
        answers.append((await limiter.admit(limits)).allowed)  # at t: the burst allows 2
        clock.advance(-30)  # a call from a process whose stamp is 30 s behind
        answers.append((await limiter.admit(limits)).allowed)
        clock.advance(30)  # back to t: no time has really passed since the first call
        answers.append((await limiter.admit(limits)).allowed)
        return answers

    assert run_limiter(body) == [True, True, False]
