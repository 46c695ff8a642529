"""Serving an ASGI app over HTTP/1.1: listening, the lifespan, signals and graceful shutdown.

    >>> server = Server(app, host="127.0.0.1", port=4000)
    >>> server.run()  # blocks until SIGINT/SIGTERM (or ``server.should_exit = True`` from another thread)

Like ``uvicorn.Server``: ``started`` turns true once the lifespan's startup is done and the socket is
listening; setting ``should_exit`` from any thread starts a graceful shutdown within 0.1 s: stop
accepting, close idle connections, let in-flight requests and streams finish for ``graceful_timeout``
seconds, close what is left, then run the lifespan's shutdown. The protocol is in ``h1.py`` and ``h1cycle.py``;
what a client may send and how long it may take, in ``h1limits.ServerLimits``. With ``ssl`` (an
``ssl.SSLContext``, see ``server/tls.py``) it serves HTTPS. With ``freeze_gc`` (``llmswitch serve`` sets it)
what the app built at startup is frozen out of the garbage collector's passes (``gc.freeze``) once
the startup is done, and the collector's youngest generation is collected every ``GC_GEN0_THRESHOLD``
net allocations instead of every 700.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import ssl as _ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from llmswitch.server.h1 import ASGIApp, HttpProtocol, Message, ServerState, log
from llmswitch.server.h1limits import ServerLimits

LoopKind = Literal["auto", "asyncio", "uvloop"]

STARTUP_FAILED = 3  # exit code when the lifespan's startup fails (as uvicorn's)
BACKLOG = 2048
#: container objects allocated (less those freed) between two passes over the youngest generation.
#: Python's 700 is a few dozen requests' worth: each pass then walks the objects of every request in
#: flight (32 connections: thousands), which their reference counts free a moment later anyway; about
#: 3% of a busy worker's CPU went there (perf). At 5,000 a pass comes every few hundred requests. An
#: answered request leaves no reference cycle behind, nor does a closed connection (tests/server/test_h1.py),
#: so what only a pass frees is rare and memory does not grow (bench/memory.py).
GC_GEN0_THRESHOLD = 5_000
TICK = 0.1  # how often the serving loop looks at should_exit


class Server:
    """An HTTP/1.1 server for one ASGI app on ``host:port``, or on a listening socket ``sock``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        sock: socket.socket | None = None,
        keep_alive_timeout: float = 65.0,
        graceful_timeout: float = 30.0,
        loop: LoopKind = "auto",
        limits: ServerLimits | None = None,
        ssl: _ssl.SSLContext | None = None,
        freeze_gc: bool = False,
    ) -> None:
        self.app = app
        self.freeze_gc = freeze_gc
        self.limits = limits if limits is not None else ServerLimits(keep_alive_timeout=keep_alive_timeout)
        self.ssl = ssl
        self.host = host
        self.port = port
        self.sock = sock
        self.keep_alive_timeout = keep_alive_timeout
        self.graceful_timeout = graceful_timeout
        self.loop_kind = loop
        self.started = False
        self.should_exit = False
        self.force_exit = False  # skip the wait for in-flight requests (a second signal)
        self.exit_code = 0
        self.address: tuple[str, int] | None = None  # where it listens, once started
        self.state: ServerState | None = None
        self._first_signal = 0.0

    def run(self) -> None:
        """Serve on a new event loop (uvloop when installed) until told to stop; SystemExit on failure."""
        loop = new_event_loop(self.loop_kind)
        try:
            loop.run_until_complete(self.serve())
        finally:
            _close_loop(loop)
        if self.exit_code:
            raise SystemExit(self.exit_code)

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        signals = self._install_signal_handlers(loop)
        try:
            await self._serve(loop)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        state = self.state = ServerState(self.app, limits=self.limits)
        lifespan = Lifespan(self.app)
        if not await lifespan.startup():
            log.error("application startup failed: %s; not serving", lifespan.failed)
            self.exit_code = STARTUP_FAILED
            return
        if lifespan.supported:
            state.app_state = lifespan.state
        if self.freeze_gc:
            # what startup built (modules, the price table, the config, the key cache) lives as long as the
            # process: kept out of the collector's full passes, which would walk all of it every few
            # thousand requests; garbage from startup is collected first, so none of it is kept
            gc.collect()
            gc.freeze()
            gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
        try:
            server = await self._listen(loop, state)
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", self.host, self.port, exc)
            self.exit_code = 1
            await lifespan.shutdown()
            return
        sockets = server.sockets
        if sockets:
            addr = sockets[0].getsockname()
            self.address = (str(addr[0]), int(addr[1]))
        self.started = True
        # a plain attribute another thread may set (as uvicorn's): polled, as an Event could not be set from there
        while not self.should_exit:  # noqa: ASYNC110
            await asyncio.sleep(TICK)
        await self._drain(loop, server, state)
        await lifespan.shutdown()

    async def _listen(self, loop: asyncio.AbstractEventLoop, state: ServerState) -> asyncio.Server:
        def factory() -> HttpProtocol:
            return HttpProtocol(state, loop)

        if self.sock is not None:
            return await loop.create_server(factory, sock=self.sock, backlog=BACKLOG, ssl=self.ssl)
        return await loop.create_server(
            factory, self.host, self.port, backlog=BACKLOG, reuse_address=True, ssl=self.ssl
        )

    async def _drain(self, loop: asyncio.AbstractEventLoop, server: asyncio.Server, state: ServerState) -> None:
        server.close()  # no new connections
        state.shutting_down = True
        began = loop.time()
        requests, connections = len(state.tasks), len(state.connections)
        _log_drain(
            logging.INFO,
            f"graceful shutdown: draining {requests} request(s) in flight (streams included) on {connections} "
            f"connection(s), for up to {self.graceful_timeout:g} s",
            event="drain_started",
            requests=requests,
            connections=connections,
            graceful_seconds=self.graceful_timeout,
        )
        for conn in list(state.connections):
            conn.shutdown()
        deadline = began + self.graceful_timeout
        while (state.connections or state.tasks) and not self.force_exit and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        waited = round(loop.time() - began, 3)
        if state.connections or state.tasks:
            requests, connections = len(state.tasks), len(state.connections)
            _log_drain(
                logging.WARNING,
                f"graceful shutdown: cut after {waited:g} s: closing {connections} connection(s), cancelling "
                f"{requests} request(s) still running",
                event="drain_ended",
                outcome="cut",
                seconds=waited,
                requests=requests,
                connections=connections,
            )
        else:
            _log_drain(
                logging.INFO,
                f"graceful shutdown: drained in {waited:g} s",
                event="drain_ended",
                outcome="drained",
                seconds=waited,
            )
        for conn in list(state.connections):
            conn.abort()
        tasks = list(state.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        if threading.current_thread() is not threading.main_thread():
            return []
        installed: list[int] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.handle_signal, sig)
                installed.append(sig)
        return installed

    def handle_signal(self, sig: int) -> None:
        """The first signal starts a graceful shutdown; another one, later than half a second after it,
        stops waiting for in-flight requests. (A Ctrl-C reaches a worker from the terminal and from its
        supervisor at once: that pair counts as one.)"""
        now = time.monotonic()
        if self.should_exit and self._first_signal and now - self._first_signal > 0.5:
            self.force_exit = True
        if not self._first_signal:
            self._first_signal = now
        self.should_exit = True


def _log_drain(level: int, text: str, **fields: Any) -> None:
    """A drain log line; ``fields`` (with ``event``) also as the structured record the gateway's JSON
    logging writes (accesslog's ``data``), so they can be read without parsing ``text``."""
    if log.isEnabledFor(level):
        data = {"ts": round(time.time(), 3), "level": logging.getLevelName(level).lower(), "msg": text, **fields}
        log.log(level, text, extra={"data": data})


class Lifespan:
    """Runs an app's ``lifespan`` scope: startup before serving, shutdown after."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.state: dict[str, Any] = {}
        self.supported = True
        self.failed: str | None = None
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._received = False
        self._started = asyncio.Event()
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> bool:
        """True when the app started (or has no lifespan), False when its startup failed."""
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._inbox.put({"type": "lifespan.startup"})
        await self._started.wait()
        return self.failed is None

    async def shutdown(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._stopped.wait()

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self._app(scope, self._receive, self._send)
        except Exception as exc:
            if not self._received:
                self.supported = False  # an app without a lifespan may refuse the scope: serve it anyway
                log.debug("the ASGI application does not support the lifespan (%r)", exc)
            elif not self._started.is_set():
                self.failed = self.failed or repr(exc)
                log.exception("error in the ASGI application's lifespan startup")
            else:
                log.exception("error in the ASGI application's lifespan")
        else:
            if not self._received:
                self.supported = False
        finally:
            self._started.set()
            self._stopped.set()

    async def _receive(self) -> Message:
        self._received = True
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._started.set()
        elif kind == "lifespan.startup.failed":
            self.failed = str(message.get("message") or "startup failed")
            self._started.set()
        elif kind == "lifespan.shutdown.complete":
            self._stopped.set()
        elif kind == "lifespan.shutdown.failed":
            log.error("application shutdown failed: %s", message.get("message", ""))
            self._stopped.set()


def new_event_loop(kind: LoopKind = "auto") -> asyncio.AbstractEventLoop:
    """uvloop's loop when ``kind`` is "uvloop", or "auto" and uvloop is installed; else asyncio's."""
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory()
    return asyncio.new_event_loop()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
