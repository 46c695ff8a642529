"""What every connection of one HTTP/1.1 server shares: the app, the open connections and running requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from llmswitch.server.h1limits import ServerLimits

if TYPE_CHECKING:
    from llmswitch.server.h1 import HttpProtocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("llmswitch.server")

REFUSED_LOG_EVERY = 10.0  # seconds between log lines about connections refused over the cap


class ServerState:
    """What every connection of one server shares."""

    __slots__ = ("app", "app_state", "connections", "limits", "refused", "refused_logged", "shutting_down", "tasks")

    def __init__(self, app: ASGIApp, keep_alive_timeout: float = 65.0, limits: ServerLimits | None = None) -> None:
        self.app = app
        if limits is None:
            limits = ServerLimits(keep_alive_timeout=keep_alive_timeout)
        self.limits = limits
        self.app_state: dict[str, Any] | None = None  # the lifespan's state, copied into each request's scope
        self.connections: set[HttpProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.shutting_down = False
        self.refused = 0  # connections closed over the cap since the last log line about it
        self.refused_logged = -REFUSED_LOG_EVERY

    @property
    def keep_alive_timeout(self) -> float:
        return self.limits.keep_alive_timeout

    def refuse_connection(self, now: float) -> None:
        """Count a connection closed over the cap; say so at most once per ``REFUSED_LOG_EVERY`` seconds."""
        self.refused += 1
        if now - self.refused_logged >= REFUSED_LOG_EVERY:
            log.warning(
                "%d connection(s) closed at once: %d open, the limit (max_connections)",
                self.refused,
                len(self.connections),
            )
            self.refused = 0
            self.refused_logged = now
