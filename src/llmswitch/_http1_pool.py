"""The keep-alive pool of HTTP/1.1 client connections, and one request over it.

A :class:`Pool` keeps idle connections per route (origin, proxy and TLS settings; LIFO, at most
``MAX_IDLE`` each, closed after ``IDLE_TTL`` seconds idle), at most ``MAX_PER_ORIGIN`` open connections
per route (more requests queue for one, within their own deadline) and a small DNS cache (``DNS_TTL``).
New connections are made with Happy Eyeballs (RFC 8305, ``aiohappyeyeballs``: the next address is
tried after 250 ms rather than after the first has failed) within ``CONNECT_TIMEOUT``.
:func:`exchange` sends one request on a pooled or new connection (see :mod:`llmswitch._http1` for the
connection itself). Plain exceptions, as there.
"""

from __future__ import annotations

import asyncio
import collections
import select
import socket
import ssl
from collections.abc import Awaitable, Callable

import aiohappyeyeballs

from llmswitch._http1 import WRITE_SLICE, Connection, RouteKey
from llmswitch._http1_proxy import ProxyEnvironment, auth_refused, open_tunnel
from llmswitch._http1_request import request_head
from llmswitch._http1_route import Route, make_route
from llmswitch.network import Network

# servers close idle keep-alive connections after 5-75 s; dropping ours well before never races them
IDLE_TTL = 15.0
MAX_IDLE = 100
# a pooled connection idle longer than this is checked for a close from the server before reuse
RECHECK_AFTER = 1.0
# short, so a provider's DNS failover (or a load balancer's address change) is followed quickly
DNS_TTL = 10.0
CONNECT_TIMEOUT = 10.0
HAPPY_EYEBALLS_DELAY = 0.25
MAX_PER_ORIGIN = 1000

AddrInfo = tuple[int, int, int, str, tuple[object, ...]]
Resolver = Callable[[str, int], Awaitable[list[AddrInfo]]]
# methods a server may see twice without harm (RFC 9110 9.2.2)
_IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"))


class Pool:
    """Idle connections of one event loop, per route, reused last-in first-out."""

    def __init__(self, loop: asyncio.AbstractEventLoop, resolver: Resolver | None = None) -> None:
        self.loop = loop
        self.idle: dict[RouteKey, list[Connection]] = {}
        self.conns: set[Connection] = set()  # every open connection, idle or busy (closed at shutdown)
        self.closed = False
        self.proxies = ProxyEnvironment()  # read once: a changed environment needs a new pool
        self.resolver: Resolver = resolver or self._getaddrinfo
        self.clock: Callable[[], float] = loop.time  # for the DNS cache (tests move it)
        self._routes: dict[str | tuple[str, Network], Route] = {}
        self._open: dict[RouteKey, int] = {}  # connections per route, connecting ones included
        self._waiters: dict[RouteKey, collections.deque[asyncio.Future[None]]] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[AddrInfo]]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._outbox: list[tuple[Connection, bytes]] = []  # requests to write once this loop pass ends

    def route(self, url: str, network: Network | None) -> Route:
        """Where ``url`` goes for a deployment's ``network`` settings (worked out once, then cached)."""
        key = url if network is None else (url, network)  # a plain URL key: the common case hashes nothing new
        route = self._routes.get(key)
        if route is None:
            route = make_route(url, network, self.proxies)
            if len(self._routes) >= 1024:
                self._routes.clear()
            self._routes[key] = route
        return route

    def forget_routes(self) -> None:
        """Work routes out again (the process-wide TLS settings changed); pooled connections made with
        the old settings are no longer picked, and close as they idle out."""
        self._routes.clear()

    def send(self, conn: Connection, data: bytes) -> None:
        """Write ``data``, a whole request, on ``conn`` once the event loop's current pass has run.

        The requests of one pass then go out back to back: a server on the same machine (a local model
        server, a sidecar, the benchmark's nginx) is woken once for all of them rather than once for
        each, which halved that server's CPU per request in ``bench/`` (docs/benchmarks.md). A request
        waits at most for the rest of the pass, work the loop would do before reading its answer anyway.
        """
        outbox = self._outbox
        if not outbox:
            self.loop.call_soon(self._send_queued)
        outbox.append((conn, data))

    def _send_queued(self) -> None:
        outbox, self._outbox = self._outbox, []
        for conn, data in outbox:
            conn.send(data)

    def checkout(self, key: RouteKey) -> Connection | None:
        idle = self.idle.get(key)
        if not idle:
            return None
        now = self.loop.time()
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            idle_for = now - conn.idle_since
            if idle_for > IDLE_TTL:
                conn.close()
                continue
            if idle_for >= RECHECK_AFTER and _readable(conn):
                # the server's close (or stray bytes) is waiting unread: reusing it would send a request
                # into a dead connection, and a request once written is not sent again
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
        if self._waiters:
            self._wake_one(conn.origin)
        if self._sweeper is None:
            self._sweeper = self.loop.call_at(now + IDLE_TTL, self._sweep)

    def forget(self, conn: Connection) -> None:
        """An idle connection closed by the server."""
        idle = self.idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)

    def release(self, conn: Connection) -> None:
        """``conn`` no longer counts against its route's cap (closed, or never connected)."""
        conn.slot_held = False
        key = conn.origin
        left = self._open.get(key, 1) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)
        if self._waiters:
            self._wake_one(key)

    def _wake_one(self, key: RouteKey) -> None:
        waiters = self._waiters.get(key)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        if waiters is not None and not waiters:
            del self._waiters[key]

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

    async def obtain(self, route: Route, deadline: float | None) -> tuple[Connection, bool]:
        """A connection for ``route`` and whether it was pooled: an idle one, a new one, or (at the cap)
        the first one to come free before ``deadline``."""
        key = route.key
        while self._open.get(key, 0) >= MAX_PER_ORIGIN:
            waiter = self.loop.create_future()
            waiters = self._waiters.get(key)
            if waiters is None:
                waiters = self._waiters[key] = collections.deque()
            waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one(key)  # woken as it gave up: pass the turn on
                raise
            conn = self.checkout(key)
            if conn is not None:
                return conn, True
        return await self.connect(route, deadline), False

    async def connect(self, route: Route, deadline: float | None) -> Connection:
        conn = Connection(self, route.key)
        conn.slot_held = True
        self._open[route.key] = self._open.get(route.key, 0) + 1
        limit = self.loop.time() + CONNECT_TIMEOUT
        if deadline is not None and deadline < limit:
            limit = deadline
        try:
            async with asyncio.timeout_at(limit):
                await self._connect(conn, route)
        except BaseException:
            if conn.transport is None and conn.slot_held:
                self.release(conn)
            raise
        return conn

    async def _connect(self, conn: Connection, route: Route) -> None:
        try:
            sock = await aiohappyeyeballs.start_connection(
                await self._resolve(route.host, route.port),
                happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY,
                interleave=1,
                loop=self.loop,
            )
        except OSError:
            self._dns.pop((route.host, route.port), None)  # maybe stale: resolve again next time
            raise
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if route.tunnel:
                assert route.proxy is not None
                _, host, port = route.target.origin
                await open_tunnel(self.loop, sock, route.proxy, host, port)
            await self.loop.create_connection(
                lambda: conn, sock=sock, ssl=route.tls, server_hostname=route.server_hostname
            )
        except BaseException:
            if conn.transport is None:
                sock.close()
            raise

    async def _resolve(self, host: str, port: int) -> list[AddrInfo]:
        now = self.clock()
        hit = self._dns.get((host, port))
        if hit is not None and hit[0] > now:
            return hit[1]
        infos = await self.resolver(host, port)
        if not infos:
            raise socket.gaierror(f"no address for {host}")
        self._dns[(host, port)] = (now + DNS_TTL, infos)
        return infos

    async def _getaddrinfo(self, host: str, port: int) -> list[AddrInfo]:
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        return [(int(family), int(kind), proto, name, tuple(address)) for family, kind, proto, name, address in infos]

    async def close(self) -> None:
        """Abort every connection, idle or busy (a busy one's caller gets a connection error)."""
        self.closed = True
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(ConnectionError("the connection pool was closed"))
        self._waiters.clear()
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


def _readable(conn: Connection) -> bool:
    """Whether an idle connection's socket has something to read (the server's FIN, most likely)."""
    assert conn.transport is not None
    sock = conn.transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        poller = select.poll()  # not select.select: descriptors past 1023 are common in a busy gateway
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _replayable(method: str, headers: dict[str, str]) -> bool:
    """Whether a request may be sent again after the server may have seen it: idempotent methods, and
    requests carrying an idempotency key (the server deduplicates them)."""
    if method in _IDEMPOTENT:
        return True
    return any(name.lower() in ("idempotency-key", "x-idempotency-key") for name in headers)


# ---------------------------------------------------------------- one request


async def exchange(
    pool: Pool,
    url: str,
    method: str,
    headers: dict[str, str],
    body: bytes,
    timeout: float | None,
    *,
    stream: bool,
    network: Network | None = None,
) -> Connection:
    """Send a request and wait for the whole answer, or (``stream``) for its status and headers.

    ``timeout`` bounds everything up to that point. A pooled connection found closed before the
    request was written is replaced by a fresh one, transparently. Once the request was written the
    server may have acted on it: it is sent again (once, on a fresh connection) only when the pooled
    connection died without a byte of answer and the request is idempotent or carries an idempotency
    key; a POST is never sent twice.
    """
    route = pool.route(url, network)
    loop = pool.loop
    deadline = None if timeout is None else loop.time() + timeout
    head = request_head(method, route.target, headers, len(body))
    conn = pool.checkout(route.key)
    reused = conn is not None
    while True:
        if conn is None:
            conn, reused = await pool.obtain(route, deadline)
        try:
            conn.start(method == "HEAD", stream)
            if len(body) <= WRITE_SLICE:
                pool.send(conn, head + body if body else head)
            else:
                await conn.write_large(head, body, deadline)
            if stream:
                while not conn.headers_done:
                    await conn.wait(deadline)
            else:
                while not conn.complete:
                    await conn.wait(deadline)
            if conn.status == 407 and route.proxy is not None and not route.tunnel:
                conn.busy = False
                conn.abort()
                raise auth_refused(route.proxy, "Proxy Authentication Required")
            return conn
        except (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            conn.busy = False
            conn.abort()
            if not reused or conn.received or (conn.sent and not _replayable(method, headers)):
                raise
            # the server closed an idle connection as we picked it (before the request went out, or,
            # for a request that may be repeated, before a byte of answer)
            reused = False
            conn = None
        except BaseException:
            conn.busy = False
            conn.abort()
            raise
