"""The one pooled HTTP client: timeouts, streaming bodies, cancellation, and error mapping.

One aiohttp session per event loop, created on first use and reused for every call (connection
pooling and keep-alive are where the speed is). Network failures become :class:`APIConnectionError`
/ :class:`APITimeoutError`; statuses are returned for the provider to interpret.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, NamedTuple

import aiohttp

from llmswitch.errors import APIConnectionError, APITimeoutError

if TYPE_CHECKING:
    from llmswitch.providers.base import HTTPCall

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = weakref.WeakKeyDictionary()


def session() -> aiohttp.ClientSession:
    """The shared session of the running loop."""
    loop = asyncio.get_running_loop()
    s = _sessions.get(loop)
    if s is None or s.closed:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60)
        s = aiohttp.ClientSession(connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",))
        _sessions[loop] = s
        keeper = _close_at_loop_shutdown(s)
        _keepers[loop] = (keeper, loop.create_task(keeper.__anext__()))  # type: ignore[arg-type]
    return s


_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[AsyncIterator[None], asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)


async def _close_at_loop_shutdown(s: aiohttp.ClientSession) -> AsyncIterator[None]:
    """An async generator parked at its first ``yield``: ``asyncio.run`` closes every live async
    generator when it ends (``shutdown_asyncgens``), which closes the session with its loop, so an
    SDK user's ``asyncio.run(main())`` leaves no unclosed connections behind."""
    try:
        yield
    finally:
        await s.close()


async def close_session() -> None:
    """Close the running loop's session (at shutdown)."""
    loop = asyncio.get_running_loop()
    s = _sessions.pop(loop, None)
    if s is not None:
        await s.close()


class RawResponse(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def _headers(resp: aiohttp.ClientResponse) -> dict[str, str]:
    return {k.lower(): v for k, v in resp.headers.items()}


def _connection_error(exc: BaseException, url: str, provider: str | None) -> APIConnectionError:
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return APITimeoutError(f"{provider or 'provider'}: request to {_host(url)} timed out", provider=provider)
    return APIConnectionError(
        f"{provider or 'provider'}: connection to {_host(url)} failed: {type(exc).__name__}: {exc}", provider=provider
    )


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


async def send(call: HTTPCall, *, timeout: float | None, provider: str | None = None) -> RawResponse:
    """Send a request and read the whole answer."""
    try:
        async with session().request(
            call.method,
            call.url,
            data=call.body,
            headers=call.headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            body = await resp.read()
            headers = _headers(resp) if resp.status >= 400 else {}
            return RawResponse(resp.status, headers, body)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise _connection_error(exc, call.url, provider) from exc


class StreamResponse:
    """An open streamed answer: ``status``, ``headers``, ``iter_chunks()``; ``close()`` drops the connection."""

    def __init__(self, resp: aiohttp.ClientResponse, url: str, provider: str | None) -> None:
        self._resp = resp
        self._url = url
        self._provider = provider
        self.status = resp.status
        self.headers = _headers(resp)

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _connection_error(exc, self._url, self._provider) from exc
        finally:
            self._resp.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _connection_error(exc, self._url, self._provider) from exc

    def close(self) -> None:
        """Abort the connection (the caller stopped reading early) or return it to the pool if done."""
        if self._resp.content.at_eof():
            self._resp.release()
        else:
            self._resp.close()


async def open_stream(call: HTTPCall, *, timeout: float | None, provider: str | None = None) -> StreamResponse:
    """Send a request and return as soon as the status line and headers arrive.

    ``timeout`` bounds connecting, the wait for headers and each later wait for bytes.
    """
    try:
        resp = await session().request(
            call.method,
            call.url,
            data=call.body,
            headers=call.headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
        )
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise _connection_error(exc, call.url, provider) from exc
    return StreamResponse(resp, call.url, provider)
