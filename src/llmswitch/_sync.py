"""Synchronous calls over the async engine: one background event loop thread per process.

The sync API (``completion``, ``embedding``) submits coroutines to that loop, so sync and async callers
share one code path and one pooled HTTP client, and a sync call works inside a program that already
runs an event loop (a notebook, a web handler).
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="llmswitch-sync", daemon=True).start()
            atexit.register(_shutdown, loop)
            _loop = loop
        return _loop


def _shutdown(loop: asyncio.AbstractEventLoop) -> None:
    from llmswitch import transport

    try:
        asyncio.run_coroutine_threadsafe(transport.close_session(), loop).result(timeout=2)
    except Exception:
        pass
    loop.call_soon_threadsafe(loop.stop)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the background loop and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()


class SyncIterator(Iterator[T]):
    """A sync iterator over an async iterator living on the background loop.

    ``close()`` (also called on garbage collection and by ``with``) closes the async side, which
    drops the upstream connection when the caller stops early.
    """

    def __init__(self, source: AsyncIterator[T]) -> None:
        self._source = source
        self._closed = False

    def __iter__(self) -> SyncIterator[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        try:
            return run(self._source.__anext__())  # type: ignore[arg-type]
        except StopAsyncIteration:
            self._closed = True
            raise StopIteration from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        aclose = getattr(self._source, "aclose", None)
        if aclose is not None and _loop is not None and not _loop.is_closed():
            fut = asyncio.run_coroutine_threadsafe(aclose(), _loop)
            if threading.current_thread().name != "llmswitch-sync":
                try:
                    fut.result(timeout=5)
                except Exception:
                    pass

    def __enter__(self) -> SyncIterator[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
