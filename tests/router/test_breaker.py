"""The per-deployment circuit breaker: closed -> open -> half-open -> closed, on an injected clock."""

from __future__ import annotations

import pytest

from llmswitch.router.breaker import Breaker


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **kw: object) -> Breaker:
    return Breaker(clock=clock, **kw)  # type: ignore[arg-type]


def test_the_failure_after_the_allowed_ones_opens_it_for_the_cooldown() -> None:
    # LiteLLM: allowed_fails is "the number of failures allowed before cooling down"
    clock = Clock()
    b = breaker(clock, allowed_fails=3, cooldown=60.0)
    b.failure()
    b.failure()
    b.failure()
    assert b.state == "closed" and b.available()
    b.failure()
    assert b.state == "open" and not b.available()
    clock.now += 59.9
    assert not b.available()
    assert b.reopens_in() == pytest.approx(0.1)
    clock.now += 0.1
    assert b.available() and b.state == "half_open"


def test_a_success_between_failures_resets_the_run() -> None:
    clock = Clock()
    b = breaker(clock, allowed_fails=3, min_volume=100)
    for _ in range(10):
        b.failure()
        b.failure()
        b.success()
    assert b.state == "closed"
    assert b.totals() == (30, 20)


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    b = breaker(clock, allowed_fails=0, cooldown=10.0)
    b.failure()
    clock.now += 10
    assert b.available()
    b.acquire()
    assert not b.available()  # the probe is out: everyone else waits for its verdict
    b.success()
    assert b.state == "closed" and b.available()
    assert b.totals() == (1, 0)  # the window starts over after a recovery


def test_a_failed_probe_opens_it_for_another_cooldown() -> None:
    clock = Clock()
    b = breaker(clock, allowed_fails=5, cooldown=10.0)
    b.trip()
    clock.now += 10
    assert b.available()
    b.acquire()
    b.failure()  # one failure is enough in half-open state, whatever allowed_fails says
    assert b.state == "open"
    clock.now += 9.99
    assert not b.available()
    clock.now += 0.01
    assert b.available()
    assert b.times_opened == 2


def test_a_probe_without_verdict_frees_the_probe_slot() -> None:
    clock = Clock()
    b = breaker(clock, allowed_fails=0, cooldown=1.0)
    b.failure()
    clock.now += 1
    assert b.available()
    b.acquire()
    b.release()  # the client left before the answer: no verdict
    assert b.state == "half_open" and b.available()


def test_a_failure_rate_over_the_window_opens_it() -> None:
    clock = Clock()
    b = breaker(clock, allowed_fails=3, failure_rate=0.5, min_volume=10)
    # alternating outcomes never make three in a row, but half the calls fail
    for _ in range(4):
        b.success()
        b.failure()
    assert b.state == "closed"  # 8 calls: under the minimum volume
    b.success()
    b.failure()
    assert b.state == "open"  # 10 calls, 5 failures


def test_a_low_failure_rate_never_opens_it() -> None:
    clock = Clock()
    b = breaker(clock, allowed_fails=3, failure_rate=0.5, min_volume=10)
    for _ in range(50):
        b.success()
        b.success()
        b.failure()
    assert b.state == "closed"


def test_old_outcomes_leave_the_window() -> None:
    clock = Clock()
    b = breaker(clock, allowed_fails=3, window=60.0, min_volume=4)
    b.failure()
    b.failure()
    b.success()
    assert b.totals() == (3, 2)
    clock.now += 61
    assert b.totals() == (0, 0)
    b.failure()
    b.success()
    assert b.state == "closed"  # the two old failures no longer count


def test_allowed_fails_per_class_overrides_the_threshold() -> None:
    clock = Clock()
    b = breaker(clock, allowed_fails=1)
    for _ in range(5):
        b.failure(allowed_fails=5)
    assert b.state == "closed"
    b.failure(allowed_fails=5)
    assert b.state == "open"


def test_zero_allowed_fails_opens_on_the_first_failure() -> None:
    b = breaker(Clock(), allowed_fails=0)
    b.failure()
    assert b.state == "open"


def test_disabled_cooldowns_never_open() -> None:
    b = breaker(Clock(), allowed_fails=1, enabled=False)
    for _ in range(10):
        b.failure()
    b.trip()
    assert b.state == "closed" and b.available()
    assert b.consecutive == 10


def test_reset_closes_and_forgets() -> None:
    b = breaker(Clock(), allowed_fails=1)
    b.failure()
    b.reset()
    assert b.state == "closed" and b.totals() == (0, 0) and b.consecutive == 0


def test_a_configured_allowance_counts_failures_in_the_window_whatever_succeeded_between() -> None:
    # LiteLLM's rule when a config sets allowed_fails: more than that many failures in the window
    clock = Clock()
    counted = breaker(clock, allowed_fails=2, counted=True)
    default = breaker(clock, allowed_fails=2)
    for b in (counted, default):
        for _ in range(3):
            b.success()
            b.success()
            b.failure()
    assert counted.state == "open"
    assert default.state == "closed"  # 3 of 9 calls, never more than one in a row


def test_a_late_failure_from_before_the_breaker_opened_does_not_extend_it() -> None:
    clock = Clock()
    b = breaker(clock, allowed_fails=0, cooldown=10.0)
    early, late = b.acquire(), b.acquire()  # two calls in flight
    b.failure(generation=early)
    assert b.state == "open" and b.times_opened == 1
    clock.now += 8
    b.failure(generation=late)  # the other call's failure arrives late
    assert b.times_opened == 1 and b.reopens_in() == pytest.approx(2.0)
    b.success(generation=late)  # nor does a late success close it without a probe
    assert b.state == "open"


def test_a_late_failure_does_not_decide_the_fresh_probe() -> None:
    clock = Clock()
    b = breaker(clock, allowed_fails=0, cooldown=10.0)
    early, late = b.acquire(), b.acquire()
    b.failure(generation=early)
    clock.now += 10
    assert b.available()
    probe = b.acquire()
    b.failure(generation=late)  # from before the cooldown: not the probe's verdict
    assert b.state == "half_open" and not b.available()  # the probe is still out, nobody else goes
    b.release(late)
    assert not b.available()
    b.success(generation=probe)
    assert b.state == "closed"


def test_a_late_key_refusal_does_not_reopen_a_recovered_breaker() -> None:
    clock = Clock()
    b = breaker(clock, cooldown=10.0)
    old = b.acquire()
    b.trip()
    clock.now += 10
    assert b.available()
    b.success(generation=b.acquire())
    b.trip(generation=old)
    assert b.state == "closed"


def test_each_change_of_state_is_counted_once() -> None:
    clock = Clock()
    b = breaker(clock, allowed_fails=0, cooldown=10.0)
    b.failure()  # closed -> open
    assert (b.times_opened, b.times_half_opened, b.times_closed) == (1, 0, 0)
    assert not b.available()  # still cooling down: no change
    clock.now += 10
    assert b.available() and b.available()  # open -> half-open, once however often it is asked
    b.acquire()
    b.failure()  # the probe failed: half-open -> open
    clock.now += 10
    assert b.available()
    b.acquire()
    b.success()  # half-open -> closed
    b.success()  # already closed: nothing
    assert (b.times_opened, b.times_half_opened, b.times_closed) == (2, 2, 1)
    b.reset()  # closed already: nothing
    b.trip()
    b.reset()  # open -> closed by hand
    assert (b.times_opened, b.times_half_opened, b.times_closed) == (3, 2, 2)
