"""``FakeUpstream``: the server's lifecycle, its script of replies, and what tests can observe."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType

from aiohttp import web

from llmswitch.testing._recorded import RecordedRequest
from llmswitch.testing._reply import Reply
from llmswitch.testing._routes import build_app
from llmswitch.testing._unscripted import fill_reply

Responder = Callable[[RecordedRequest], Reply | Awaitable[Reply]]

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")


class FakeUpstream:
    """A fake OpenAI / Anthropic / Gemini API on a loopback port, answering scripted :class:`Reply` values.

    Use ``async with FakeUpstream() as up:`` inside a running event loop, or ``with FakeUpstream() as
    up:`` from synchronous code (the server then runs on its own thread and loop).

    Which reply answers a request: the next one queued for its model (``script(..., model=...)``),
    else the next one queued for any model (``script(...)``), else ``responder(request)`` when set,
    else ``default``, whose open content is filled for the request (an echo of the last user message; a
    tool call when tools are sent; JSON for a response format: see ``llmswitch.testing``).

    ``disconnects`` counts requests whose client went away before the fake had finished answering.
    A short stream may be written whole before a client stops reading it, so give a stream that a
    test leaves early some ``chunk_delay`` (and enough text) to keep it going.
    """

    def __init__(
        self,
        *,
        default: Reply | None = None,
        models: Iterable[str] = DEFAULT_MODELS,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.default: Reply = default if default is not None else Reply()
        # where to listen: port 0 takes any free port (see ``url``); a fixed one lets a config file point here
        self.host = host
        self.port_wanted = port
        self.responder: Responder | None = None
        self.models: list[str] = list(models)
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        # Vertex AI: the access tokens the fake's OAuth endpoint issued (``token_uri``), their lifetime in
        # seconds, and whether it refuses every grant
        self.tokens: list[str] = []
        self.grants: list[str] = []  # the signed JWT assertions it was given, as sent
        self.token_ttl = 3600
        self.refuse_tokens = False
        self._queue: deque[Reply] = deque()
        self._by_model: dict[str, deque[Reply]] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    # ------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, once started (a wildcard host is reached on loopback)."""
        if self._port is None:
            raise RuntimeError("the fake upstream is not running: use `with FakeUpstream() as up:` (or async with)")
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self._port}" if ":" in host else f"http://{host}:{self._port}"

    @property
    def port(self) -> int:
        """The port it listens on, once started."""
        if self._port is None:
            raise RuntimeError("the fake upstream is not running")
        return self._port

    @property
    def openai_base(self) -> str:
        """Base URL for the ``openai`` SDK and ``llmswitch`` (``api_base=``): ``{url}/v1``."""
        return f"{self.url}/v1"

    @property
    def anthropic_base(self) -> str:
        """Base URL for the ``anthropic`` SDK (which adds ``/v1/messages`` itself)."""
        return self.url

    @property
    def gemini_base(self) -> str:
        """Base URL for the ``google-genai`` SDK (``HttpOptions(base_url=...)``)."""
        return self.url

    @property
    def vertex_base(self) -> str:
        """Root for ``vertex_ai/`` models (``api_base=``): the fake serves Vertex AI's publisher paths."""
        return self.url

    @property
    def token_uri(self) -> str:
        """The OAuth token endpoint to put in a test service-account key's ``token_uri``."""
        return f"{self.url}/token"

    # ------------------------------------------------------------ scripting and observing

    def script(self, *replies: Reply, model: str | None = None) -> None:
        """Queue replies, each answering one request (only requests for ``model``, when given)."""
        with self._lock:
            queue = self._queue if model is None else self._by_model.setdefault(model, deque())
            queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many scripted replies have not been used yet."""
        with self._lock:
            return len(self._queue) + sum(len(q) for q in self._by_model.values())

    def calls_for(self, path_fragment: str) -> list[RecordedRequest]:
        """The recorded requests whose path contains ``path_fragment``."""
        with self._lock:
            return [r for r in self.requests if path_fragment in r.path]

    def reset(self) -> None:
        """Forget recorded requests, disconnects and queued replies (``default`` and ``responder`` stay)."""
        with self._lock:
            self.requests.clear()
            self.disconnects = 0
            self._queue.clear()
            self._by_model.clear()

    def wait_for_disconnects(self, count: int = 1, *, timeout: float = 5.0) -> bool:
        """Block until ``disconnects >= count`` or ``timeout`` passes; True if it was reached.

        For the threaded form (``with FakeUpstream()``); inside its own loop use :meth:`await_disconnects`.
        """
        if self._thread is None and self._loop is not None and _running_loop() is self._loop:
            raise RuntimeError(
                "wait_for_disconnects would block the fake's own loop: use `await up.await_disconnects()`"
            )
        deadline = time.monotonic() + timeout
        while self.disconnects < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    async def await_disconnects(self, count: int = 1, *, timeout: float = 5.0) -> bool:
        """Wait (asynchronously) until ``disconnects >= count`` or ``timeout`` passes; True if reached."""
        deadline = time.monotonic() + timeout
        while self.disconnects < count:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    # ------------------------------------------------------------ what the routes call (the Host protocol)

    def record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(rec)

    def next_number(self) -> int:
        return next(self._numbers)

    async def choose(self, rec: RecordedRequest) -> Reply:
        with self._lock:
            queue = self._by_model.get(rec.model) if rec.model else None
            if queue:
                return queue.popleft()
            if self._queue:
                return self._queue.popleft()
        responder = self.responder
        if responder is None:
            return fill_reply(self.default, rec.chat)
        reply = responder(rec)
        if inspect.isawaitable(reply):
            reply = await reply
        return reply

    def note_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1

    def is_stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    async def wait_stopping(self) -> None:
        assert self._stopping is not None
        await self._stopping.wait()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> FakeUpstream:
        """Start serving on ``host:port`` (by default a free loopback port) in the running loop."""
        if self._runner is not None:
            raise RuntimeError("the fake upstream is already running")
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        # cancel a handler when its client goes away: that is how disconnects are seen
        runner = web.AppRunner(build_app(self), handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            if self.port_wanted:
                # a fixed port is taken again at once after a restart, not after TIME_WAIT
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port_wanted))
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        self._runner = runner
        return self

    async def stop(self) -> None:
        """Stop serving: hanging requests end, open connections close."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        assert self._stopping is not None
        self._stopping.set()
        await runner.cleanup()
        self._port = None

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def __enter__(self) -> FakeUpstream:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_serve, args=(loop,), name="llmswitch-fake-upstream", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=30)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            raise
        self._thread = thread
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            self._thread = None

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"<FakeUpstream {where} requests={len(self.requests)} pending={self.pending}>"


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
