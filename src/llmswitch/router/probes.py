"""Background health checks: a tiny request to every deployment on an interval (off by default).

Each probe goes through the same bookkeeping as a real request, so a failing probe counts toward the
deployment's breaker and a passing one closes it: a deployment that recovered is back in rotation
without waiting for live traffic to try it. Turn on with ``Router(health_check_interval=...)`` and
``await router.start_health_checks()``, or LiteLLM's ``background_health_checks`` in the gateway.

    >>> await router.start_health_checks(60)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.engine import Deadline
from llmswitch.errors import APIError, LLMSwitchError
from llmswitch.router.outcomes import Ask, Kind

if TYPE_CHECKING:
    from llmswitch.router.deployments import Target
    from llmswitch.router.router import Router

log = logging.getLogger("llmswitch.router")

PROBE_TIMEOUT = 30.0
_PING = [ir.Message(role="user", content=[ir.TextPart(text="ping")])]


class HealthChecks:
    def __init__(self, router: Router, interval: float) -> None:
        self.router = router
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="llmswitch-health-checks")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await self.round()
            await asyncio.sleep(self.interval)

    async def round(self) -> None:
        """Probe every configured deployment once, concurrently."""
        targets = [t for ts in self.router._groups.values() for t in ts]
        await asyncio.gather(*(self.probe(t) for t in targets))

    async def probe(self, t: Target) -> bool:
        """One probe; True if the deployment answered."""
        req: Any
        kind: Kind
        if t.model_info.get("mode") == "embedding":
            req, kind = ir.EmbeddingRequest(model=t.group, input=["ping"]), "embedding"
        else:
            req, kind = ir.Request(model=t.group, messages=_PING, max_tokens=1), "chat"
        ask = Ask(kind, req, None, Deadline(min(t.timeout or PROBE_TIMEOUT, PROBE_TIMEOUT), self.router.clock))
        ask.probe = True
        outcomes = self.router._outcomes
        try:
            await outcomes.attempt(t, ask)
        except APIError as exc:
            outcomes.failed(t, ask, exc)
            log.info("health check of %s failed: %s", t.id, exc)
            return False
        except LLMSwitchError as exc:
            log.warning("health check of %s could not be sent: %s", t.id, exc)
            return False
        return True
