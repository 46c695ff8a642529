"""A lean Redis client for the cache's hot path: ``GET`` and ``SET`` pipelined on one connection.

``SET`` may carry more commands in the same write (the key directory's, ``redis_keys.py``).

redis-py's asyncio client costs about 90 µs of CPU per command on the reference machine (its pool,
locks and parser layers); a cache lookup sits in front of every request, so the cache speaks RESP
itself for these two commands: one connection per event loop, commands written in order and replies
matched in order (Redis answers in order), so concurrent requests share it without a pool. A reply
to a command whose caller gave up (a timeout) is read and dropped, keeping the order. A lost
connection fails what waits on it and is made again by the next command. Everything else (admin
routes, a cluster, sentinels, TLS) goes through redis-py.

The Redis limits backend uses this client too, on a connection of its own, for its pipelined
``EVALSHA`` calls (:mod:`llmswitch.limits.redis_pipe`: ``send_many``, ``live``, ``drop``); its replies
may be arrays.

    >>> client = LeanRedis("redis://:secret@127.0.0.1:6379/2")      # doctest: +SKIP
    >>> await client.set("k", b"v", px=60_000); await client.get("k")  # doctest: +SKIP
    b'v'
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

# the most a connection buffers unread: far above any entry the cache stores (max_entry_bytes, 4 MiB)
MAX_BUFFERED = 256 * 1024 * 1024


class RespError(Exception):
    """An error reply from Redis (``-ERR ...``)."""


def lean_url(url: str | None) -> bool:
    """Whether ``url`` is one the lean client serves (plain ``redis://``; TLS and sockets go to redis-py)."""
    return url is not None and urlsplit(url).scheme == "redis"


def encode_command(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%b\r\n" % (len(a), a))
    return b"".join(out)


def parse_reply(buf: bytearray | bytes) -> tuple[Any, int] | None:
    """The first whole reply in ``buf`` and the bytes it took, or ``None`` when it has not all arrived."""
    return _parse(buf, 0)


def _parse(buf: bytearray | bytes, pos: int) -> tuple[Any, int] | None:
    """The reply starting at ``pos`` and where it ends (an offset into ``buf``: arrays nest)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    kind, head = buf[pos : pos + 1], bytes(buf[pos + 1 : end])
    if kind == b"$":
        n = int(head)
        if n < 0:
            return None, end + 2
        stop = end + 2 + n
        if len(buf) < stop + 2:
            return None
        return bytes(buf[end + 2 : stop]), stop + 2
    if kind == b"+":
        return head.decode(), end + 2
    if kind == b":":
        return int(head), end + 2
    if kind == b"-":
        return RespError(head.decode(errors="replace")), end + 2
    if kind == b"*":
        n = int(head)
        if n < 0:
            return None, end + 2
        items: list[Any] = []
        at = end + 2
        for _ in range(n):
            found = _parse(buf, at)
            if found is None:
                return None
            items.append(found[0])
            at = found[1]
        return items, at
    raise RespError(f"unexpected reply type {kind!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > MAX_BUFFERED or not self.waiting:
            # more than any reply we asked for could be, or bytes nobody asked for: not a Redis to trust
            self._fail(ConnectionError("Redis sent what was not asked for"))
            if self.transport is not None:
                self.transport.close()
            return
        try:
            while self.waiting:
                found = parse_reply(self.buf)
                if found is None:
                    return
                value, used = found
                del self.buf[:used]
                fut = self.waiting.popleft()
                if fut.done():
                    continue  # its caller gave up; the reply is read all the same, to keep the order
                if isinstance(value, RespError):
                    fut.set_exception(value)
                else:
                    fut.set_result(value)
            if self.buf:  # a reply beyond the commands sent would be taken for the next one's
                raise RespError("more replies than commands")
        except (RespError, ValueError) as exc:  # a stream we cannot read: nothing after it can be trusted
            self._fail(ConnectionError(f"unreadable reply from Redis: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._fail(ConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def _fail(self, exc: BaseException) -> None:
        self.lost = True
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(exc)

    def send_many(self, data: bytes, waiters: list[asyncio.Future[Any]]) -> bool:
        """Write ``data`` (``len(waiters)`` commands) at once; each reply goes to its waiter, in order.
        ``False`` and nothing written when the connection is already lost."""
        if self.lost or self.transport is None or self.transport.is_closing():
            return False
        self.waiting.extend(waiters)
        self.transport.write(data)
        return True

    def send(self, data: bytes, replies: int = 1) -> list[asyncio.Future[Any]]:
        """Write ``data`` (``replies`` commands) at once; a future for each command's reply, in order."""
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(replies)]
        if self.lost or self.transport is None or self.transport.is_closing():
            for fut in futs:
                fut.set_exception(ConnectionError("connection to Redis lost"))
            return futs
        self.waiting.extend(futs)
        self.transport.write(data)
        return futs


def _read_outcome(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


class LeanRedis:
    """``GET`` / ``SET ... PX`` on one pipelined connection to the Redis at a ``redis://`` URL."""

    def __init__(self, url: str, *, connect_timeout: float = 1.0) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        path = parts.path.strip("/")
        self.db = int(path) if path.isdigit() else 0
        self.connect_timeout = connect_timeout
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def _connection(self) -> _Protocol:
        proto = self._proto
        if proto is not None and not proto.lost:
            return proto
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect())
        return await asyncio.shield(self._connecting)

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        proto: _Protocol | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, proto = await loop.create_connection(_Protocol, self.host, self.port)
                hello = []
                if self.password is not None:
                    user = (self.username.encode(),) if self.username else ()
                    hello += proto.send(encode_command(b"AUTH", *user, self.password.encode()))
                if self.db:
                    hello += proto.send(encode_command(b"SELECT", str(self.db).encode()))
                await asyncio.gather(*hello)  # every reply read, a failed one raised
        except BaseException:
            if proto is not None and proto.transport is not None:
                proto.transport.close()
            raise
        self._proto = proto
        return proto

    async def get(self, key: str) -> bytes | None:
        proto = await self._connection()
        (fut,) = proto.send(encode_command(b"GET", key.encode()))
        value = await fut
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, *, px: int, then: Sequence[tuple[bytes, ...]] = ()) -> None:
        """``SET key value PX px``, and the commands ``then`` in the same write (their errors raised too)."""
        proto = await self._connection()
        data = encode_command(b"SET", key.encode(), value, b"PX", str(px).encode())
        if not then:
            (fut,) = proto.send(data)
            await fut
            return
        data += b"".join(encode_command(*command) for command in then)
        futs = proto.send(data, 1 + len(then))
        for fut in futs:  # every reply is read, so a failure after the first raised is not left unread
            fut.add_done_callback(_read_outcome)
        for fut in futs:
            await fut

    def live(self) -> _Protocol | None:
        """The connection if it is up now (nothing awaited), else ``None``."""
        proto = self._proto
        return proto if proto is not None and not proto.lost else None

    async def connection(self) -> _Protocol:
        """The connection, made (with AUTH and SELECT) if it is not up."""
        return await self._connection()

    def drop(self, reason: str) -> None:
        """Close the connection: whatever waits on it fails, and the next command makes a new one (after a
        caller gave up on a reply, the stream cannot be trusted to answer anything sooner)."""
        proto, self._proto = self._proto, None
        if proto is not None:
            proto._fail(ConnectionError(reason))
            if proto.transport is not None:
                proto.transport.close()

    async def aclose(self) -> None:
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()
