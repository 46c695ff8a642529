"""In-process rpm/tpm counters: a sliding-window estimate over this minute and the last."""

from __future__ import annotations

import pytest

from llmswitch.router.usage import WINDOW, LocalUsage


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_add_up_within_the_minute() -> None:
    clock = Clock(600.0)
    usage = LocalUsage(clock)
    assert usage.used("a") == (0.0, 0.0)
    usage.add("a", requests=1, tokens=100)
    usage.add("a", requests=1, tokens=50)
    usage.add("b", requests=1)
    clock.now += 30
    assert usage.used("a") == (2.0, 150.0)
    assert usage.used("b") == (1.0, 0.0)


def test_the_last_minute_fades_out_linearly() -> None:
    clock = Clock(600.0)
    usage = LocalUsage(clock)
    usage.add("a", requests=10, tokens=1000)
    clock.now = 660.0 + WINDOW / 4  # a quarter into the next minute: three quarters of the last one count
    assert usage.used("a") == pytest.approx((7.5, 750.0))
    usage.add("a", requests=2)
    assert usage.used("a")[0] == pytest.approx(9.5)
    clock.now = 780.0  # two minutes later: nothing left
    assert usage.used("a") == (0.0, 0.0)


def test_frees_in_is_the_time_left_in_the_minute() -> None:
    clock = Clock(600.0 + 45.0)
    usage = LocalUsage(clock)
    usage.add("a", requests=1)
    assert usage.frees_in("a") == pytest.approx(15.0)
