"""Keeping an in-memory copy of the store fresh: one loop, shared by keys, users and teams."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("llmswitch.server")


async def refresh_forever(refresh: Callable[[], Awaitable[None]], interval: float, what: str) -> None:
    """Call ``refresh`` every ``interval`` seconds until cancelled. A store that cannot be reached
    leaves the copy as it is (requests keep being served from memory); that is logged once, and
    so is the recovery."""
    failing_since: float | None = None
    while True:
        await asyncio.sleep(interval)
        try:
            await refresh()
            if failing_since is not None:
                log.warning("%s refresh recovered after %.1fs", what, time.monotonic() - failing_since)
                failing_since = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if failing_since is None:
                failing_since = time.monotonic()
                log.warning("%s refresh failed, serving %s from memory: %s", what, what, exc)
