"""The one pooled HTTP client: timeouts, streaming bodies, cancellation, and error mapping.

Why our own keep-alive HTTP/1.1 client (``asyncio.Protocol`` + ``httptools``, in :mod:`llmswitch._http1`
and :mod:`llmswitch._http1_pool`) rather than aiohttp's: aiohttp's client took ~30% of the gateway's CPU per proxied request. For one
small request/response exchange on a reused connection, on uvloop, on the 2-core reference machine,
this client measured 26-29 µs of CPU against aiohttp's 195-265 µs, about 7x less, where the kernel's and
the loop's share alone (a bare protocol, parsing nothing) is 11-13 µs (``bench/transport_cpu.py``).

One connection pool per event loop, created on first use: idle connections are kept per origin and
reused (keep-alive is where the speed is). Network failures become :class:`APIConnectionError` /
:class:`APITimeoutError`; statuses are returned for the provider to interpret.

    >>> raw = await send(HTTPCall(url, headers, body), timeout=30, provider="openai")  # doctest: +SKIP
    >>> raw.status, raw.body  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import os
import weakref
import zlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

import httptools

from llmswitch import _http1, _http1_pool, _http1_request, _http1_tls
from llmswitch.errors import APIConnectionError, APIResponseValidationError, APITimeoutError, ConfigError

if TYPE_CHECKING:
    from llmswitch.providers.base import HTTPCall

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _http1_pool.Pool] = weakref.WeakKeyDictionary()
_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[AsyncIterator[None], asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)

# what a failed exchange raises below this module; all of it becomes APIConnectionError / APITimeoutError
_NETWORK_ERRORS = (OSError, httptools.HttpParserError, zlib.error, _http1_request.InvalidURL, _http1.ResponseTooLarge)


# the pool used last: one loop per process is the common case, and a WeakKeyDictionary look-up is not free
_last: _http1_pool.Pool | None = None


def _pool() -> _http1_pool.Pool:
    """The connection pool of the running loop."""
    global _last
    loop = asyncio.get_running_loop()
    pool = _last
    if pool is not None and pool.loop is loop and not pool.closed:
        return pool
    pool = _pools.get(loop)
    if pool is None or pool.closed:
        pool = _pools[loop] = _http1_pool.Pool(loop)
        keeper = _close_at_loop_shutdown(pool)
        _keepers[loop] = (keeper, loop.create_task(keeper.__anext__()))  # type: ignore[arg-type]
    _last = pool
    return pool


async def _close_at_loop_shutdown(pool: _http1_pool.Pool) -> AsyncIterator[None]:
    """An async generator parked at its first ``yield``: ``asyncio.run`` closes every live async
    generator when it ends (``shutdown_asyncgens``), which closes the pool with its loop, so an
    SDK user's ``asyncio.run(main())`` leaves no unclosed connections behind."""
    try:
        yield
    finally:
        await _forget(pool)


async def close_session() -> None:
    """Close the running loop's pool and its connections (at shutdown)."""
    pool = _pools.get(asyncio.get_running_loop())
    if pool is not None:
        await _forget(pool)


async def _forget(pool: _http1_pool.Pool) -> None:
    global _last
    if _last is pool:
        _last = None
    if _pools.get(pool.loop) is pool:
        del _pools[pool.loop]
    await pool.close()


class RawResponse(NamedTuple):
    status: int
    headers: dict[str, str]  # lower-cased names; filled only for statuses >= 400
    body: bytes


def _connection_error(
    exc: BaseException, url: str, provider: str | None
) -> APIConnectionError | APIResponseValidationError:
    if isinstance(exc, _http1.ResponseTooLarge):
        return APIResponseValidationError(f"{provider or 'provider'}: {_host(url)}: {exc}", provider=provider)
    if isinstance(exc, TimeoutError):
        return APITimeoutError(f"{provider or 'provider'}: request to {_host(url)} timed out", provider=provider)
    return APIConnectionError(
        f"{provider or 'provider'}: connection to {_host(url)} failed: {type(exc).__name__}: {exc}", provider=provider
    )


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


# set by llmswitch.telemetry.traces while tracing is on: opens the attempt's span, returns its traceparent
trace_header: Callable[[str], str | None] | None = None


def _headers(call: HTTPCall) -> dict[str, str]:
    hook = trace_header
    if hook is None:
        return call.headers
    traceparent = hook(call.url)
    return call.headers if traceparent is None else {**call.headers, "traceparent": traceparent}


async def send(call: HTTPCall, *, timeout: float | None, provider: str | None = None) -> RawResponse:
    """Send a request and read the whole answer; ``timeout`` bounds all of it (connect, send, body)."""
    if _mounted and (origin := _mounted_origin(call.url)) is not None:
        return await origin.send(call, timeout=timeout, provider=provider)
    pool = _pool()
    headers = call.headers if trace_header is None else _headers(call)
    try:
        conn = await _http1_pool.exchange(
            pool, call.url, call.method, headers, call.body, timeout, stream=False, network=call.network
        )
    except _NETWORK_ERRORS as exc:
        raise _connection_error(exc, call.url, provider) from exc
    status = conn.status
    headers = _http1.header_dict(conn.raw_headers) if status >= 400 else {}
    body = conn.take()
    pool.checkin(conn)
    return RawResponse(status, headers, body)


class StreamResponse:
    """An open streamed answer: ``status``, ``headers``, ``read()``, ``iter_chunks()``; ``close()`` when done.

    ``timeout`` bounds each wait for more body bytes.
    """

    __slots__ = ("_conn", "_pool", "_provider", "_timeout", "_url", "headers", "status")

    def __init__(
        self, conn: _http1.Connection, pool: _http1_pool.Pool, url: str, provider: str | None, timeout: float | None
    ) -> None:
        self._conn: _http1.Connection | None = conn
        self._pool = pool
        self._url = url
        self._provider = provider
        self._timeout = timeout
        self.status = conn.status
        self.headers = _http1.header_dict(conn.raw_headers)

    def _deadline(self, conn: _http1.Connection) -> float | None:
        return None if self._timeout is None else conn.loop.time() + self._timeout

    async def read(self) -> bytes:
        """The rest of the body; the connection then goes back to the pool."""
        conn = self._conn
        if conn is None:
            return b""
        try:
            while not conn.complete:
                await conn.wait(self._deadline(conn))
        except _NETWORK_ERRORS as exc:
            self.close()
            raise _connection_error(exc, self._url, self._provider) from exc
        data = conn.take()
        self.close()
        return data

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (what arrived while the reader was busy comes as one chunk)."""
        conn = self._conn
        try:
            while conn is not None and conn is self._conn:
                if conn.chunks:
                    yield conn.take()
                elif conn.complete:
                    self.close()
                else:
                    await conn.wait(self._deadline(conn))
        except _NETWORK_ERRORS as exc:
            self.close()
            raise _connection_error(exc, self._url, self._provider) from exc

    def close(self) -> None:
        """Return the connection to the pool if the whole body arrived, else abort it (the caller left early)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.complete:
            self._pool.checkin(conn)
        else:
            conn.busy = False
            conn.abort()


async def open_stream(call: HTTPCall, *, timeout: float | None, provider: str | None = None) -> StreamResponse:
    """Send a request and return as soon as the status line and headers arrive.

    ``timeout`` bounds connecting, the wait for headers and each later wait for bytes.
    """
    if _mounted and (origin := _mounted_origin(call.url)) is not None:
        return await origin.open_stream(call, timeout=timeout, provider=provider)
    pool = _pool()
    headers = call.headers if trace_header is None else _headers(call)
    try:
        conn = await _http1_pool.exchange(
            pool, call.url, call.method, headers, call.body, timeout, stream=True, network=call.network
        )
    except _NETWORK_ERRORS as exc:
        raise _connection_error(exc, call.url, provider) from exc
    return StreamResponse(conn, pool, call.url, provider, timeout)


class InProcessOrigin(Protocol):
    """Something in this process that answers calls as an HTTP server would (a local model,
    :mod:`llmswitch.local`): the same bytes in and out, without a socket."""

    async def send(self, call: HTTPCall, *, timeout: float | None, provider: str | None) -> RawResponse: ...

    async def open_stream(self, call: HTTPCall, *, timeout: float | None, provider: str | None) -> StreamResponse: ...


# URL scheme -> the origin answering it in this process; empty unless a local provider was used, so the
# network path pays one falsy check for it
_mounted: dict[str, InProcessOrigin] = {}


def mount(scheme: str, origin: InProcessOrigin) -> None:
    """Answer calls to ``scheme://...`` with ``origin`` instead of the network (httpx's ``mounts``).

    >>> mount("llamacpp", origin)  # doctest: +SKIP
    """
    _mounted[scheme] = origin


def _mounted_origin(url: str) -> InProcessOrigin | None:
    scheme, sep, _ = url.partition("://")
    return _mounted.get(scheme) if sep else None


def configure(
    *,
    connect_timeout: float | None = None,
    dns_ttl: float | None = None,
    max_connections_per_origin: int | None = None,
    max_response_body: int | None = None,
    max_response_head: int | None = None,
    max_response_headers: int | None = None,
) -> None:
    """Process-wide client settings; each ``None`` keeps the current value. See docs/upstream.md.

    >>> configure(connect_timeout=5, max_connections_per_origin=200)  # doctest: +SKIP
    """
    if connect_timeout is not None:
        _http1_pool.CONNECT_TIMEOUT = float(connect_timeout)
    if dns_ttl is not None:
        _http1_pool.DNS_TTL = float(dns_ttl)
    if max_connections_per_origin is not None:
        _http1_pool.MAX_PER_ORIGIN = int(max_connections_per_origin)
    if max_response_body is not None:
        _http1.MAX_BODY_BYTES = int(max_response_body)
    if max_response_head is not None:
        _http1.MAX_HEAD_BYTES = int(max_response_head)
    if max_response_headers is not None:
        _http1.MAX_HEADERS = int(max_response_headers)


def configure_tls(*, ssl_verify: bool | str | None = None, ssl_certificate: str | None = None) -> None:
    """LiteLLM's ``litellm_settings.ssl_verify`` / ``ssl_certificate``: the process-wide CA bundle (or
    ``False``: no verification) and client certificate. ``None``: from the environment (``SSL_VERIFY``,
    ``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``, ``SSL_CERTIFICATE``). A deployment's own settings win."""
    _http1_tls.set_defaults(ssl_verify=ssl_verify, ssl_certificate=ssl_certificate)
    for pool in list(_pools.values()):
        pool.forget_routes()


# every setting of configure() can also come from the environment (read once, when this module loads)
ENVIRONMENT = {
    "LLMSWITCH_CONNECT_TIMEOUT": ("connect_timeout", float),
    "LLMSWITCH_DNS_TTL": ("dns_ttl", float),
    "LLMSWITCH_MAX_CONNECTIONS_PER_ORIGIN": ("max_connections_per_origin", int),
    "LLMSWITCH_MAX_RESPONSE_BODY": ("max_response_body", int),
    "LLMSWITCH_MAX_RESPONSE_HEAD": ("max_response_head", int),
    "LLMSWITCH_MAX_RESPONSE_HEADERS": ("max_response_headers", int),
}


def configure_from_environment(env: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Apply the ``LLMSWITCH_*`` client variables that are set (see :data:`ENVIRONMENT`)."""
    values: dict[str, float | int] = {}
    for name, (setting, kind) in ENVIRONMENT.items():
        text = env.get(name)
        if text is None or not text.strip():
            continue
        try:
            value = kind(text)
        except ValueError:
            raise ConfigError(f"{name}={text!r}: expected {'an integer' if kind is int else 'a number'}") from None
        if value <= 0:
            raise ConfigError(f"{name}={text!r}: expected a positive value")
        values[setting] = value
    if values:
        configure(**values)  # type: ignore[arg-type]


configure_from_environment()
