"""Per-minute rate limits as GCRA (a token bucket kept as one number), in exact integer arithmetic.

Why GCRA and not a sliding window:

- **O(1) and allocation-free.** A subject's state is a "debt" and the time it was last updated, per
  limit: no per-request log (an exact sliding log holds one entry per request in the window, which for
  a busy key is thousands), no second bucket. In Redis it is two fields of one hash.
- **Exact answers, not estimates.** Retry-after is the exact moment the request would fit, so a
  client that waits that long is admitted, and one that comes back a microsecond sooner is not. The
  two-bucket sliding-window counter can only estimate both, assuming traffic was uniform.
- **The semantics clients already know.** OpenAI and Anthropic enforce their limits as token buckets
  that refill continuously, and their ``x-ratelimit-*`` headers mean "remaining in the bucket" and
  "time until the bucket is full": GCRA yields exactly those numbers.
- **Settling is one addition.** A request reserves its estimated tokens; when the real usage is known
  the debt moves by the difference, however long ago the request was admitted.

The cost: like every token bucket (and like a fixed window at its boundary) a subject that was idle
may burst its full limit and then continue at the sustained rate, so an arbitrary 60 s span can see up
to twice the limit; over any longer span the average never exceeds it. Only a sliding log avoids that,
at O(requests) memory per subject.

Units make it exact: time is in microseconds and one request (or token) costs ``PERIOD_US`` units of
debt, which drains at ``limit`` units per microsecond, so the bucket holds ``limit * PERIOD_US``. All
of it is integers (below 2**53 for limits up to 150 million per minute, so the Lua copy in Redis, whose
numbers are doubles, computes the same answers).

    >>> debt = 0
    >>> for _ in range(3):                       # 3 rpm: three requests at once fit
    ...     ok, remaining, reset_us, retry_us, debt = take(debt, 3, 1)
    >>> ok, remaining, reset_us
    (True, 0, 60000000)
    >>> take(debt, 3, 1)[:4]                     # the fourth waits 20 s, when one request has drained
    (False, 0, 60000000, 20000000)
"""

from __future__ import annotations

PERIOD_US = 60_000_000  # every limit is per minute (rpm, tpm)
NEVER_FITS = -1  # retry_us when a request is larger than the whole limit


def decay(debt: int, last_us: int, now_us: int, limit: int) -> int:
    """The debt left at ``now_us`` of a debt that stood at ``last_us``; a clock going backwards waits."""
    if debt <= 0:
        return 0
    elapsed = now_us - last_us
    if elapsed <= 0:
        return debt
    left = debt - elapsed * limit
    return left if left > 0 else 0


def take(debt: int, limit: int, cost: int) -> tuple[bool, int, int, int, int]:
    """Try to add ``cost`` to a (decayed) debt: ``(ok, remaining, reset_us, retry_us, new_debt)``.

    A request needs room for at least one unit even when it costs none (a zero-token estimate still
    waits while the token limit is exhausted). ``remaining`` and ``reset_us`` describe the bucket after
    the request when admitted, as it stands when not; ``retry_us`` is 0 when admitted and
    :data:`NEVER_FITS` when ``cost`` exceeds the limit itself.
    """
    if limit <= 0:
        return False, 0, 0, NEVER_FITS, debt  # a zero limit blocks everything, for good
    capacity = limit * PERIOD_US
    need = cost if cost > 0 else 1
    if debt + need * PERIOD_US <= capacity:
        new = debt + cost * PERIOD_US
        return True, (capacity - new) // PERIOD_US, -(-new // limit), 0, new
    retry = -(-(debt + need * PERIOD_US - capacity) // limit) if need <= limit else NEVER_FITS
    remaining = (capacity - debt) // PERIOD_US if capacity > debt else 0
    return False, remaining, -(-debt // limit), retry, debt
