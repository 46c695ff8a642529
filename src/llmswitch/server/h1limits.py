"""What the HTTP/1.1 server allows a client: sizes, counts, timeouts and connections (see docs/edge.md).

    >>> Server(app, limits=ServerLimits(head_timeout=10.0, max_connections=1000))

Every limit holds before the app sees anything, so none of it waits for authentication. The defaults
sit beside nginx's and uvicorn's (the table in docs/edge.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The server's limits. Timeouts are seconds; a timed-out read or write closes the connection."""

    max_head_bytes: int = 64 * 1024
    """request line and headers, and separately a chunked body's trailers: more is answered 431"""
    max_headers: int = 100
    """header fields in one request head (trailers count too): more is answered 431"""
    head_timeout: float = 30.0
    """from a request's first byte to the end of its head: past it, 408 and close"""
    body_timeout: float = 60.0
    """while the app waits for request body bytes, the longest gap between them: past it, 408 and close"""
    write_timeout: float = 60.0
    """how long a client may leave the response unread (the write buffer full): past it, the connection
    is dropped and the app's receive() reports the disconnect"""
    keep_alive_timeout: float = 65.0
    """an idle connection (no request under way) is closed after this"""
    max_connections: int = 4096
    """open connections of one server (one worker); a connection over it is accepted and closed at once"""
    max_pipelined: int = 8
    """requests parsed and waiting behind the running one; past it, reading pauses until they are answered"""

    def __post_init__(self) -> None:
        for name in ("max_head_bytes", "max_headers", "max_connections", "max_pipelined"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)!r}")
        for name in ("head_timeout", "body_timeout", "write_timeout", "keep_alive_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {getattr(self, name)!r}")

    @property
    def shortest_timeout(self) -> float:
        return min(self.head_timeout, self.body_timeout, self.write_timeout, self.keep_alive_timeout)
