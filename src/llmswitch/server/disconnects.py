"""A client that hangs up cancels its request's work: the handler is cancelled (and with it the upstream
call), unless the answer was already sent."""

from __future__ import annotations

import asyncio
from typing import Any

from llmswitch.server import http


class DisconnectWatch:
    """Cancels a request's handler when its client hangs up.

    Only requests still running after ``DISCONNECT_WATCH_DELAY`` get a watching task: a quick answer
    is over before a hang-up could save anything, and a timer costs far less than a task per request.
    """

    __slots__ = ("_handle", "_request", "_task", "_watcher")

    def __init__(self, request: http.Request, task: asyncio.Task[Any] | None) -> None:
        self._request = request
        self._task = task
        self._handle: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Task[None] | None = None

    def arm(self) -> None:
        # the handler's own loop, from its task: asyncio.get_running_loop() is a getpid() system call on
        # Python 3.11, once per request
        task = self._task
        loop = task.get_loop() if task is not None else asyncio.get_running_loop()
        self._handle = loop.call_later(DISCONNECT_WATCH_DELAY, self._start)

    def _start(self) -> None:
        self._handle = None
        self._watcher = asyncio.ensure_future(_cancel_on_disconnect(self._request, self._task))

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self._watcher is not None:
            self._watcher.cancel()


DISCONNECT_WATCH_DELAY = 0.05


async def _cancel_on_disconnect(request: http.Request, task: asyncio.Task[Any] | None) -> None:
    await request.wait_disconnect()
    # after the last byte went out the server reports a "disconnect" too; that one is not a hang-up
    if task is not None and not request.state.get("responded"):
        task.cancel()
    else:
        request.disconnected = False
