"""Knowing the other gateway instances on the same store, and saying when limits cannot hold across them.

Without Redis, each process counts rate limits and budgets on its own: N instances on one database
allow N times every budget. Each instance therefore beats into the store's ``instances`` table (at
start, then every ``interval`` seconds, off the request path) and, while its limits are per-process,
logs a warning at start and whenever an instance it had not seen appears. With
``require_shared=True`` (``LLMSWITCH_REQUIRE_SHARED_LIMITS=1``, or ``general_settings:
require_shared_limits: true``) it refuses to start instead: its start-up fails, naming the others.

Two instances starting at once cannot both miss each other: each writes its row before it reads the
others', so the later of the two reads sees the earlier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any

from llmswitch.store.instances import InstanceRecord

log = logging.getLogger("llmswitch.server")

ENV_REQUIRE = "LLMSWITCH_REQUIRE_SHARED_LIMITS"
ENV_INTERVAL = "LLMSWITCH_INSTANCE_HEARTBEAT_S"
DEFAULT_INTERVAL_S = 5.0
DEAD_AFTER_BEATS = 3  # an instance silent for this many beats is gone (killed, or its host is)


class SharedLimitsRequired(RuntimeError):
    """Refusing to start: other instances use the store and this one's limits would be its own."""


def require_shared_from(setting: bool, env: dict[str, str] | None = None) -> bool:
    """The config's ``require_shared_limits``, or ``LLMSWITCH_REQUIRE_SHARED_LIMITS`` set to a true value."""
    raw = (os.environ if env is None else env).get(ENV_REQUIRE, "")
    return setting or raw.strip().lower() in ("1", "true", "yes", "on")


def interval_from_env() -> float:
    try:
        value = float(os.environ.get(ENV_INTERVAL) or DEFAULT_INTERVAL_S)
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value > 0 else DEFAULT_INTERVAL_S


class InstanceWatch:
    """This process's row in the store's instances table, beaten every ``interval`` seconds."""

    def __init__(self, store: Any, *, limits: str, require_shared: bool = False, interval: float | None = None) -> None:
        self.store = store
        self.limits = limits
        self.require_shared = require_shared
        self.interval = interval if interval is not None else interval_from_env()
        self.me: InstanceRecord | None = None
        self._seen: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def per_process(self) -> bool:
        # "fallback" is Redis (degrading only while it is down); "memory" counts in this process alone
        return self.limits == "memory"

    async def start(self) -> None:
        """Beat once (the store is open), warn or refuse as above, then beat in the background."""
        # made here, in the process that serves (after any fork), never in a parent that forks it
        self.me = InstanceRecord(
            instance_id=uuid.uuid4().hex, host=socket.gethostname(), pid=os.getpid(), limits=self.limits
        )
        try:
            others = await self._beat()
        except NotImplementedError:
            return  # a store backend that does not track instances: nothing to say
        except Exception as exc:
            if self.per_process and self.require_shared:  # it was asked to be sure: it cannot be
                raise SharedLimitsRequired(
                    f"refusing to start: cannot tell whether other instances use this database ({exc})"
                ) from exc
            log.warning("instance heartbeat: cannot reach the store (%s); retrying every %g s", exc, self.interval)
            others = []
        if others and self.per_process and self.require_shared:
            with contextlib.suppress(Exception):
                await self.store.remove_instance(self.me.instance_id)
            raise SharedLimitsRequired(
                f"refusing to start: {_name(others)} already use{'s' * (len(others) == 1)} this database "
                "and this instance would count rate limits and budgets on its own (no Redis), allowing "
                f"{len(others) + 1} times each of them; configure Redis (router_settings.redis_host or REDIS_URL), "
                f"or unset {ENV_REQUIRE} (general_settings.require_shared_limits) to start anyway"
            )
        self._note(others)
        self._task = asyncio.create_task(self._run(), name="llmswitch-instance-heartbeat")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.me is not None:
            with contextlib.suppress(Exception):
                await self.store.remove_instance(self.me.instance_id)

    async def _beat(self) -> list[InstanceRecord]:
        assert self.me is not None
        others: list[InstanceRecord] = await self.store.beat_instance(
            self.me, dead_after_s=self.interval * DEAD_AFTER_BEATS
        )
        # a process of this host that is gone (killed, and restarted at once: a container's pid 1 comes
        # back with the same pid) would otherwise count as live for three beats, and a restart that
        # requires shared limits would refuse to start because of its own predecessor
        gone = [o for o in others if o.host == self.me.host and _gone(o.pid)]
        for o in gone:
            await self.store.remove_instance(o.instance_id)
        return [o for o in others if o not in gone]

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.interval)
            try:
                others = await self._beat()
            except Exception as exc:  # the store away: limits are unaffected, try again next beat
                if not failing:
                    log.warning("instance heartbeat: cannot reach the store (%s); retrying", exc)
                failing = True
                continue
            failing = False
            self._note(others)

    def _note(self, others: list[InstanceRecord]) -> None:
        """Warn about instances not seen before, while this one's limits are its own."""
        new = [o for o in others if o.instance_id not in self._seen]
        self._seen = {o.instance_id for o in others}
        if not new or not self.per_process:
            return
        log.warning(
            "another llmswitch instance uses this database: %s. Rate limits and budgets are counted in each "
            "process (no Redis), so %d instances allow up to %d times each of them; configure Redis "
            "(router_settings.redis_host or REDIS_URL) to share them, or set %s=1 to refuse to start like this",
            _name(new),
            len(others) + 1,
            len(others) + 1,
            ENV_REQUIRE,
        )


def _gone(pid: int) -> bool:
    """Whether process ``pid`` of this host has ended (this process's own pid: an earlier life of it)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def _name(instances: list[InstanceRecord]) -> str:
    return "; ".join(i.describe() for i in instances)
