"""What bounds one client connection: its timer, read and write flow control, refusals and closing.

A mixin of ``h1.HttpProtocol`` (the connection), apart so that the parsing and the request cycle read on
their own. One timer per connection watches the head, body and write timeouts and the keep-alive: it looks
at the connection's state when it fires, so the hot path only notes a time, never arms a timer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from llmswitch.server.h1cycle import Cycle, plain_response
from llmswitch.server.h1limits import ServerLimits
from llmswitch.server.h1state import log

if TYPE_CHECKING:
    from llmswitch.server.h1state import ServerState

BODY_HIGH_WATER = 1024 * 1024  # unread request body at which reading pauses
LINGER_BYTES = 256 * 1024  # what is read and dropped of an unwanted body before the connection is cut
LINGER_SECONDS = 2.0
REASONS = {
    400: "Invalid HTTP request",
    408: "Request timeout",
    431: "Request header fields too large",
    501: "Transfer coding not implemented",
    505: "HTTP version not supported",
}


class Guard:
    """Timers, flow control and refusals of a connection (the attributes are ``HttpProtocol``'s)."""

    __slots__ = (
        "_closed",
        "_drain_waiter",
        "_head_since",
        "_held",
        "_idle_since",
        "_in_head",
        "_limits",
        "_lingering",
        "_parser_done",
        "_parsing",
        "_queue",
        "_scope_template",
        "_state",
        "_timer",
        "_write_since",
        "body_since",
        "loop",
        "read_paused",
        "transport",
        "write_paused",
    )

    _state: ServerState
    _limits: ServerLimits
    _queue: deque[Cycle]
    _parsing: Cycle | None
    _closed: bool
    _parser_done: bool
    _in_head: bool
    _held: bytes | None
    _lingering: int
    _timer: asyncio.TimerHandle | None
    _idle_since: float
    _head_since: float
    _write_since: float
    _drain_waiter: asyncio.Future[None] | None
    _scope_template: dict[str, Any]
    body_since: float
    read_paused: bool
    write_paused: bool
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def _feed_slices(self, view: memoryview) -> None:
        raise NotImplementedError

    def _close_unread(self, cycle: Cycle) -> None:
        """Answered before its body arrived: the body is not read, and the connection ends with the answer.

        A client told nothing (no ``100 Continue``) sends no body: close at once. Otherwise half-close, so
        the answer is delivered, and drop a little of what still comes before closing, so the client is
        not reset while it is still writing (which could lose the answer it has not read yet)."""
        self._parser_done = True
        for waiting in self._queue:
            waiting.keep_alive = False
        if self._queue:
            return  # pipelined requests already parsed are answered; the connection ends after them
        transport = self.transport
        if cycle.expect_100 or not transport.can_write_eof():
            self._close()
            return
        transport.write_eof()
        self._lingering = LINGER_BYTES
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        self.loop.call_later(LINGER_SECONDS, self._close)

    def _pause_reading(self) -> None:
        if not self.read_paused and not self._closed:
            self.read_paused = True
            self.transport.pause_reading()

    def _may_read(self) -> bool:
        cycle = self._parsing
        return (
            not self._closed
            and not self._parser_done
            and len(self._queue) <= self._limits.max_pipelined
            and (cycle is None or cycle.response_complete or cycle.buffered <= BODY_HIGH_WATER)
        )

    def maybe_resume_reading(self) -> None:
        if not self.read_paused or not self._may_read():
            return
        held = self._held
        if held is not None:
            self._held = None
            self._feed_slices(memoryview(held))
            if self._held is not None or not self._may_read():
                return
        self.read_paused = False
        self.transport.resume_reading()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        while self.write_paused and not self._closed:
            waiter = self._drain_waiter
            if waiter is None or waiter.done():
                waiter = self._drain_waiter = self.loop.create_future()
            await waiter

    def _wake_writers(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _on_timer(self) -> None:
        """The connection's one timer: closes what has waited too long, then looks again.

        It looks again at the earliest deadline of the connection's present state, and at the latest after
        the shortest timeout: a state begun since then has a deadline no earlier than that, so every
        deadline is met on time without the hot path arming a timer."""
        self._timer = None
        if self._closed:
            return
        limits = self._limits
        now = self.loop.time()
        due = now + limits.shortest_timeout
        if self.write_paused:
            deadline = self._write_since + limits.write_timeout
            if now >= deadline:
                log.debug("write timeout: %s left the response unread", self._scope_template.get("client"))
                self.transport.abort()  # the app's receive() reports the disconnect, its send() returns at once
                return
            due = min(due, deadline)
        if not self.read_paused and not self._parser_done:
            if self._in_head:
                deadline = self._head_since + limits.head_timeout
                if now >= deadline:
                    self._reject(408)
                    return
                due = min(due, deadline)
            cycle = self._parsing
            if cycle is not None and cycle.more_body and cycle.waiter is not None:
                deadline = self.body_since + limits.body_timeout
                if now >= deadline:
                    self._reject(408)
                    return
                due = min(due, deadline)
        if not self._queue and not self._in_head:
            deadline = self._idle_since + limits.keep_alive_timeout
            if now >= deadline:
                self._close()
                return
            due = min(due, deadline)
        self._timer = self.loop.call_at(due, self._on_timer)

    def _stop_parsing(self) -> None:
        self._parser_done = True
        self._pause_reading()
        for cycle in self._queue:
            cycle.keep_alive = False
        if not self._queue:
            self._close()

    def _reject(self, status: int) -> None:
        """A request we cannot take: 400 (or 408, 431, 501, 505) and close, where an answer can still go out."""
        log.debug("bad request from %s: %d", self._scope_template.get("client"), status)
        cycle = self._parsing
        if cycle is not None and cycle.more_body and not cycle.response_complete:
            # its body cannot be read: the request is lost, and so is the connection. The app's receive()
            # reports a disconnect; the client gets the error when nothing else was sent to it yet
            self._parser_done = True
            queue = self._queue
            if not cycle.started and queue and queue[0] is cycle:
                cycle.started = cycle.response_complete = True
                self.transport.write(plain_response(status, REASONS.get(status, "Error"), close=True))
            cycle.disconnect()
            self._close()
            return
        if self._queue:
            # a response is under way: let it finish, then close without answering the bad request
            self._stop_parsing()
            return
        self._parser_done = True
        self.transport.write(plain_response(status, REASONS.get(status, "Error"), close=True))
        self._close()

    def _close(self) -> None:
        if not self._closed:
            self.transport.close()
