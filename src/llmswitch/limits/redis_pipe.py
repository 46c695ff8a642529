"""The Redis limits backend's script calls, pipelined on one lean connection per event loop.

Every admission and every settlement of a gateway process is one ``EVALSHA``. Through redis-py each
cost a pool checkout, a lock, a write and a parse of its own (about 90 µs of CPU on the reference
machine, two per request). Here each call is written at once on the cache's lean RESP connection
(:mod:`llmswitch.cache.backends.resp`), without waiting for the replies to earlier ones: Redis answers
in order, and every reply that has arrived is read in one go. Calls made while the connection is
being made are queued and written together once it is up, settlements first. Each script is still
one atomic step on the server; only the transport is shared.

Writing at the next turn of the loop instead, to gather a turn's calls into one write, was measured
and dropped: under a burst the next turn comes only after the loop has read and handled every
request that arrived meanwhile, and the calls' latency grew past the limiter's deadline.

A call whose caller gave up before it was written is not written at all (so it surely did not
happen); one written and not answered may or may not have happened, which the settle script's replay
check tells apart (see ``settle.lua``).

    pipe = ScriptPipe("redis://127.0.0.1:6379/0", connect_timeout=0.25)
    reply = await pipe.call(script.evalsha(keys, args), first=True)     # a settlement
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from llmswitch.cache.backends.resp import LeanRedis

Waiting = tuple[bytes, "asyncio.Future[Any]"]
_STALLED_S = 1.0  # how long a connection may stay silent after a missed deadline before it is replaced


class LuaScript:
    """A script's body and SHA-1, and the ``EVALSHA`` / ``EVAL`` commands that run it, encoded."""

    __slots__ = ("_eval_head", "_sha_head", "body", "sha")

    def __init__(self, body: str) -> None:
        self.body = body
        self.sha = hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()
        self._sha_head = b"$7\r\nEVALSHA\r\n$40\r\n" + self.sha.encode() + b"\r\n"
        raw = body.encode()
        self._eval_head = b"$4\r\nEVAL\r\n$%d\r\n%b\r\n" % (len(raw), raw)

    def evalsha(self, keys: Sequence[str], args: Sequence[str | int]) -> bytes:
        return _command(self._sha_head, keys, args)

    def eval(self, keys: Sequence[str], args: Sequence[str | int]) -> bytes:
        return _command(self._eval_head, keys, args)


def _command(head: bytes, keys: Sequence[str], args: Sequence[str | int]) -> bytes:
    nkeys = b"%d" % len(keys)
    out = [b"*%d\r\n" % (3 + len(keys) + len(args)), head, b"$%d\r\n%b\r\n" % (len(nkeys), nkeys)]
    for key in keys:
        raw = key.encode()
        out.append(b"$%d\r\n%b\r\n" % (len(raw), raw))
    for arg in args:
        raw = arg.encode() if isinstance(arg, str) else b"%d" % arg
        out.append(b"$%d\r\n%b\r\n" % (len(raw), raw))
    return b"".join(out)


class ScriptPipe:
    """Commands to the Redis at a ``redis://`` URL, pipelined on one connection.

    One connection per event loop (made on first use, again after it is lost or dropped). A failure to
    connect fails the calls waiting for it with :class:`ConnectionError`.
    """

    def __init__(self, url: str, *, connect_timeout: float) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._lean: LeanRedis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._first: list[Waiting] = []
        self._rest: list[Waiting] = []
        self._scheduled = False
        # when a call's deadline passed with no answer since (loop time); see stalled()
        self._stalled_since: float | None = None

    def call(self, command: bytes, *, first: bool = False) -> asyncio.Future[Any]:
        """The reply to ``command`` (a future). Written now when connected; else queued until the
        connection is up, ``first`` ahead of the queued calls that are not (settlements before admissions)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # a connection belongs to the loop it was made on (tests and the SDK run several loops)
            self._lean = LeanRedis(self._url, connect_timeout=self._connect_timeout)
            self._loop, self._first, self._rest, self._scheduled = loop, [], [], False
        if self._stalled_since is not None and loop.time() - self._stalled_since > _STALLED_S:
            # no answer for a while after a deadline passed: a connection that may never answer again
            # (a half-open socket) is replaced, failing what still waits on it
            self._stalled_since = None
            self.drop("no answer from Redis since a deadline passed")
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._scheduled:
            # connected and nothing queued: written now, not at the next turn, which under load comes only
            # after the loop has read and handled whatever else arrived meanwhile (a burst's requests)
            proto = self._lean.live() if self._lean is not None else None
            if proto is not None and proto.send_many(command, [fut]):
                return fut
        (self._first if first else self._rest).append((command, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self._scheduled = False
        batch = self._first + self._rest if self._first else self._rest
        self._first, self._rest = [], []
        # a caller that gave up already (its deadline) is not written: it surely did not happen
        batch = [item for item in batch if not item[1].done()]
        if not batch:
            return
        lean = self._lean
        assert lean is not None and self._loop is not None
        proto = lean.live()
        if proto is not None and proto.send_many(b"".join(cmd for cmd, _ in batch), [fut for _, fut in batch]):
            return
        self._loop.create_task(self._connect_and_write(lean, batch))

    async def _connect_and_write(self, lean: LeanRedis, batch: list[Waiting]) -> None:
        try:
            proto = await lean.connection()
        except Exception as exc:  # refused, timed out, or AUTH/SELECT answered an error: unreachable
            _fail(batch, ConnectionError(str(exc) or type(exc).__name__))
            return
        batch = [item for item in batch if not item[1].done()]
        if batch and not proto.send_many(b"".join(cmd for cmd, _ in batch), [fut for _, fut in batch]):
            _fail(batch, ConnectionError("connection to Redis lost"))

    def timed_out(self) -> None:
        """A call's deadline passed. The connection is kept (under load the answer may only be late, and
        dropping it would fail every other call in flight); if nothing answers for a while it is replaced."""
        if self._stalled_since is None and self._loop is not None:
            self._stalled_since = self._loop.time()

    def answered(self) -> None:
        self._stalled_since = None

    def drop(self, reason: str) -> None:
        """Close the connection (a caller's deadline passed): what waits on it fails, the next call reconnects."""
        if self._lean is not None:
            self._lean.drop(reason)

    async def aclose(self) -> None:
        lean, self._lean, self._loop = self._lean, None, None
        _fail(self._first + self._rest, ConnectionError("the limiter was closed"))
        self._first, self._rest = [], []
        if lean is not None:
            await lean.aclose()


def _fail(batch: list[Waiting], exc: BaseException) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_exception(exc)
