"""A circuit breaker per deployment: closed, open, half-open.

*Closed*: calls flow; outcomes go into a sliding window. *Open*: no calls for ``cooldown`` seconds.
*Half-open*: exactly one probe call; its success closes the breaker, its failure opens it for another
cooldown.

When it opens, as LiteLLM documents ``allowed_fails`` ("the number of failures allowed before cooling
down"): the failure *after* the allowed ones opens it, so ``allowed_fails=3`` opens on the fourth.

- ``counted=True`` (a config set ``allowed_fails``, or ``allowed_fails_policy`` names the error's class):
  LiteLLM's rule, more than ``allowed_fails`` failures within the window, whatever succeeded between them.
- otherwise (our default): more than ``allowed_fails`` failures *in a row*, or more than ``allowed_fails``
  failures making up at least ``failure_rate`` of at least ``min_volume`` calls in the window (a busy
  deployment's occasional error does not cool it down; one that goes hard down after a busy minute does
  not need as many failures as it had successes).

An outcome is only believed for the breaker state it was sent under: :meth:`acquire` hands out the
breaker's generation, and a verdict carrying an older one (a call that was in flight when the breaker
opened, answering late) neither re-opens nor extends an open breaker nor decides a fresh probe.

Time comes from an injected clock, so tests step through a cooldown without sleeping:

    >>> now = [0.0]
    >>> b = Breaker(allowed_fails=1, cooldown=60.0, clock=lambda: now[0])
    >>> b.failure(); b.state
    'closed'
    >>> b.failure(); b.state
    'open'
    >>> b.available(), (now.__setitem__(0, 60.0), b.available())[1], b.state
    (False, True, 'half_open')
    >>> probe = b.acquire(); b.available()  # the probe is out: nobody else goes
    False
    >>> b.success(probe); b.state
    'closed'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]

_BUCKETS = 6


class Breaker:
    """One deployment's breaker. Not thread-safe: it lives on the event loop that routes."""

    __slots__ = (
        "_calls",
        "_epochs",
        "_failures",
        "_probing",
        "_width",
        "allowed_fails",
        "clock",
        "consecutive",
        "cooldown",
        "counted",
        "enabled",
        "failure_rate",
        "generation",
        "min_volume",
        "opened_at",
        "state",
        "times_closed",
        "times_half_opened",
        "times_opened",
        "window",
    )

    def __init__(
        self,
        *,
        allowed_fails: int = 3,
        cooldown: float = 5.0,
        window: float = 60.0,
        failure_rate: float = 0.5,
        min_volume: int = 10,
        counted: bool = False,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowed_fails = max(allowed_fails, 0)
        self.cooldown = cooldown
        self.window = window
        self.failure_rate = failure_rate
        self.min_volume = min_volume
        self.counted = counted
        self.enabled = enabled
        self.clock = clock
        self.state: State = "closed"
        # bumped on every change of state: a verdict is only believed for the state its call went out under
        self.generation = 0
        self.opened_at = 0.0
        self.consecutive = 0
        # state changes so far, for the metrics: to open, to half-open (a probe may go), back to closed
        self.times_opened = 0
        self.times_half_opened = 0
        self.times_closed = 0
        self._probing = False
        # a ring of time buckets: counts are kept per bucket and summed over the live ones, so
        # recording is O(buckets) with nothing allocated
        self._width = window / _BUCKETS
        self._epochs = [-1] * _BUCKETS
        self._calls = [0] * _BUCKETS
        self._failures = [0] * _BUCKETS

    # ------------------------------------------------------------ asking

    def available(self) -> bool:
        """May a call go to this deployment now? (An open breaker past its cooldown turns half-open.)"""
        if self.state == "closed":
            return True
        if self.state == "open":
            if self.clock() - self.opened_at < self.cooldown:
                return False
            self.state = "half_open"
            self.generation += 1
            self.times_half_opened += 1
            self._probing = False
        return not self._probing

    def reopens_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when it is not open)."""
        if self.state != "open":
            return 0.0
        return max(self.opened_at + self.cooldown - self.clock(), 0.0)

    def acquire(self) -> int:
        """A call is going out (in half-open state it is the one probe); pass what this returns with its verdict."""
        if self.state == "half_open":
            self._probing = True
        return self.generation

    def release(self, generation: int | None = None) -> None:
        """A call ended with no verdict on the deployment (the client left, the request was wrong)."""
        if generation is None or generation == self.generation:
            self._probing = False

    # ------------------------------------------------------------ telling
    # ``generation`` is what :meth:`acquire` returned for the call; ``None`` means "now" (a direct verdict)

    def success(self, generation: int | None = None) -> None:
        if generation is not None and generation != self.generation:
            return  # an answer from before the last change of state says nothing about the present one
        self.consecutive = 0
        self._probing = False
        if self.state != "closed":
            self.state = "closed"
            self.generation += 1
            self.times_closed += 1
            self._reset_window()
        self._record(failed=False)

    def failure(self, allowed_fails: int | None = None, generation: int | None = None) -> None:
        """A failure the deployment is to blame for; ``allowed_fails`` overrides the threshold for its class
        (``allowed_fails_policy``, LiteLLM's counting rule)."""
        if generation is not None and generation != self.generation:
            # in flight when the breaker opened (or before a probe went out): counting it would re-open an
            # open breaker, stretch its cooldown, or fail a probe that has not answered yet
            return
        self.consecutive += 1
        self._probing = False
        if not self.enabled:
            return
        if self.state == "half_open":
            self._open()
            return
        self._record(failed=True)
        calls, failures = self.totals()
        if allowed_fails is not None or self.counted:
            threshold = self.allowed_fails if allowed_fails is None else max(allowed_fails, 0)
            if failures > threshold or self.consecutive > threshold:
                self._open()
            return
        threshold = self.allowed_fails
        if self.consecutive > threshold or (
            failures > threshold and calls >= self.min_volume and failures >= self.failure_rate * calls
        ):
            self._open()

    def trip(self, generation: int | None = None) -> None:
        """Open now: the deployment cannot serve anything until a probe says otherwise (its key was refused)."""
        if self.enabled and (generation is None or generation == self.generation):
            self._open()

    def reset(self) -> None:
        if self.state != "closed":
            self.times_closed += 1
        self.state = "closed"
        self.generation += 1
        self.consecutive = 0
        self._probing = False
        self._reset_window()

    # ------------------------------------------------------------ window

    def totals(self) -> tuple[int, int]:
        """(calls, failures) within the window."""
        now_epoch = int(self.clock() // self._width)
        calls = failures = 0
        for i in range(_BUCKETS):
            if now_epoch - self._epochs[i] < _BUCKETS:
                calls += self._calls[i]
                failures += self._failures[i]
        return calls, failures

    def _record(self, *, failed: bool) -> None:
        epoch = int(self.clock() // self._width)
        slot = epoch % _BUCKETS
        if self._epochs[slot] != epoch:
            self._epochs[slot] = epoch
            self._calls[slot] = 0
            self._failures[slot] = 0
        self._calls[slot] += 1
        if failed:
            self._failures[slot] += 1

    def _reset_window(self) -> None:
        for i in range(_BUCKETS):
            self._epochs[i] = -1
            self._calls[i] = self._failures[i] = 0

    def _open(self) -> None:
        self.state = "open"
        self.generation += 1
        self.opened_at = self.clock()
        self.times_opened += 1
