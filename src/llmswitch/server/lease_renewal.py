"""Keeping the leases of running requests alive.

What an admitted request holds in the limiter (a parallel slot, a budget reservation) is a lease with a
TTL, so that a process that dies holding one cannot hold it for ever. A request that runs longer than the
TTL (a long stream) must keep its leases to its end: :func:`renew_leases` renews every held reservation
each ``every`` seconds (a third of the TTL), and lets go of one held past any request's length.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmswitch.limits import Limiter, Reservation

log = logging.getLogger("llmswitch.accounting")

# longer than any request runs (the default request timeout is 600 s)
MAX_HOLD_S = 6 * 3600.0


async def renew_leases(limiter: Limiter, held: set[Reservation], every: float) -> None:
    """Renew the leases of the reservations in ``held`` every ``every`` seconds, for ever; a reservation
    settled or held past :data:`MAX_HOLD_S` leaves ``held`` instead."""
    while True:
        await asyncio.sleep(every)
        too_old = limiter.now_us() - int(MAX_HOLD_S * 1_000_000)
        for reservation in list(held):
            if reservation.settled or reservation.admitted_us < too_old:
                # a request never finished (a bug) must not hold its slot for ever: its leases expire
                held.discard(reservation)
                continue
            try:
                await limiter.renew(reservation)
            except Exception as exc:  # its leases then run their course; the next round tries again
                log.warning("renewing a request's limits leases failed: %s", exc)
