"""The keep-alive pool of HTTP/1.1 client connections, and one request over it.

A :class:`Pool` keeps idle connections per origin (LIFO, at most ``MAX_IDLE`` each, closed after
``IDLE_TTL`` seconds idle) and a small DNS cache; :func:`exchange` sends one request on a pooled or new
connection (see :mod:`llmswitch._http1` for the connection itself). Plain exceptions, as there.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

from llmswitch._http1 import (
    WRITE_SLICE,
    Connection,
    Origin,
    parse_url,
    request_head,
    tls_context,
)

# servers close idle keep-alive connections after 60-75 s; dropping ours well before never races them
IDLE_TTL = 15.0
MAX_IDLE = 100
DNS_TTL = 300.0


class Pool:
    """Idle connections of one event loop, per origin, reused last-in first-out."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.idle: dict[Origin, list[Connection]] = {}
        self.conns: set[Connection] = set()  # every open connection, idle or busy (closed at shutdown)
        self.closed = False
        self._dns: dict[tuple[str, int], tuple[float, list[tuple[int, int, int, tuple[object, ...]]]]] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def checkout(self, origin: Origin) -> Connection | None:
        idle = self.idle.get(origin)
        if not idle:
            return None
        now = self.loop.time()
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if now - conn.idle_since > IDLE_TTL:
                conn.close()
                continue
            return conn
        return None

    def checkin(self, conn: Connection) -> None:
        """Keep ``conn`` for reuse if its answer ended cleanly and the server keeps it open; else close it."""
        conn.busy = False
        transport = conn.transport
        if (
            self.closed
            or not (conn.reusable and conn.keep_alive and conn.complete)
            or conn.body_unsent
            or transport is None
            or transport.is_closing()
            or transport.get_write_buffer_size()
        ):
            conn.close()
            return
        if conn.read_paused:
            conn.read_paused = False
            transport.resume_reading()
        conn.idle_since = now = self.loop.time()
        idle = self.idle.get(conn.origin)
        if idle is None:
            idle = self.idle[conn.origin] = []
        elif len(idle) >= MAX_IDLE:
            idle.pop(0).close()
        idle.append(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_at(now + IDLE_TTL, self._sweep)

    def forget(self, conn: Connection) -> None:
        """An idle connection closed by the server."""
        idle = self.idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)

    def _sweep(self) -> None:
        self._sweeper = None
        limit = self.loop.time() - IDLE_TTL
        oldest: float | None = None
        for origin, idle in list(self.idle.items()):
            expired = 0
            while expired < len(idle) and idle[expired].idle_since <= limit:
                expired += 1
            for conn in idle[:expired]:
                conn.close()
            del idle[:expired]
            if not idle:
                del self.idle[origin]
            elif oldest is None or idle[0].idle_since < oldest:
                oldest = idle[0].idle_since
        if oldest is not None and not self.closed:
            self._sweeper = self.loop.call_at(oldest + IDLE_TTL, self._sweep)

    async def connect(self, origin: Origin, deadline: float | None) -> Connection:
        async with asyncio.timeout_at(deadline):
            return await self._connect(origin)

    async def _connect(self, origin: Origin) -> Connection:
        scheme, host, port = origin
        context = tls_context() if scheme == "https" else None
        error: OSError | None = None
        for family, kind, proto, address in await self._resolve(host, port):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await self.loop.sock_connect(sock, address)
                return await self._start_connection(sock, origin, context)
            except OSError as exc:
                sock.close()
                error = exc
                if isinstance(exc, ssl.SSLError):
                    break  # the next address would be the same server's certificate
            except BaseException:
                sock.close()
                raise
        self._dns.pop((host, port), None)  # maybe stale: resolve again next time
        assert error is not None
        raise error

    async def _start_connection(
        self, sock: socket.socket, origin: Origin, context: ssl.SSLContext | None
    ) -> Connection:
        conn = Connection(self, origin)
        hostname = origin[1] if context is not None else None
        await self.loop.create_connection(lambda: conn, sock=sock, ssl=context, server_hostname=hostname)
        return conn

    async def _resolve(self, host: str, port: int) -> list[tuple[int, int, int, tuple[object, ...]]]:
        now = self.loop.time()
        hit = self._dns.get((host, port))
        if hit is not None and hit[0] > now:
            return hit[1]
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        if not infos:
            raise socket.gaierror(f"no address for {host}")
        addresses = [(int(family), int(kind), proto, tuple(address)) for family, kind, proto, _, address in infos]
        self._dns[(host, port)] = (now + DNS_TTL, addresses)
        return addresses

    async def close(self) -> None:
        """Abort every connection, idle or busy (a busy one's caller gets a connection error)."""
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self.idle.clear()
        conns = list(self.conns)
        for conn in conns:
            conn.abort()
            if conn.timer is not None:
                conn.timer.cancel()
                conn.timer = None
        if conns:
            await asyncio.sleep(0)  # let the transports close their sockets before the loop goes away


# ---------------------------------------------------------------- one request


async def exchange(
    pool: Pool, url: str, method: str, headers: dict[str, str], body: bytes, timeout: float | None, *, stream: bool
) -> Connection:
    """Send a request and wait for the whole answer, or (``stream``) for its status and headers.

    ``timeout`` bounds everything up to that point. A pooled connection that turns out to be closed
    by the server before any byte of the answer arrived is replaced by a fresh one, once.
    """
    target = parse_url(url)
    loop = pool.loop
    deadline = None if timeout is None else loop.time() + timeout
    head = request_head(method, target, headers, len(body))
    conn = pool.checkout(target.origin)
    reused = conn is not None
    while True:
        if conn is None:
            conn = await pool.connect(target.origin, deadline)
        try:
            conn.start(method == "HEAD", stream)
            if len(body) <= WRITE_SLICE:
                assert conn.transport is not None
                conn.transport.write(head + body if body else head)
            else:
                await conn.write_large(head, body, deadline)
            if stream:
                while not conn.headers_done:
                    await conn.wait(deadline)
            else:
                while not conn.complete:
                    await conn.wait(deadline)
            return conn
        except (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            conn.busy = False
            conn.abort()
            if not reused or conn.received:
                raise
            # the server closed an idle connection as we picked it: it never saw this request
            reused = False
            conn = None
        except BaseException:
            conn.busy = False
            conn.abort()
            raise
