"""A stream whose first events were read (and checked) before the client sees any of them.

It stands in for the :class:`~llmswitch.engine.ChatStream` it wraps: the buffered events come first,
then the rest of the upstream stream as it arrives. Never relayed as raw bytes (``passthrough`` is
false): the buffered events were decoded already.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmswitch import ir

__all__ = ["ReplayStream"]


class ReplayStream:
    def __init__(self, stream: Any, buffered: list[ir.StreamEvent], rest: AsyncIterator[ir.StreamEvent] | None) -> None:
        self._stream = stream
        self._buffered = buffered
        self._rest = rest
        self.meta = stream.meta
        self.passthrough = False
        self.usage: ir.Usage | None = stream.usage
        self.context = stream.context

    async def events(self) -> AsyncIterator[ir.StreamEvent]:
        try:
            for ev in self._buffered:
                if ev.usage is not None:
                    self.usage = ev.usage
                yield ev
            if self._rest is not None:
                async for ev in self._rest:
                    if ev.usage is not None:
                        self.usage = ev.usage
                    yield ev
        finally:
            self.close()

    async def raw_chunks(self) -> AsyncIterator[bytes]:  # pragma: no cover - passthrough is always false
        raise NotImplementedError("a replayed stream has no raw bytes")
        yield b""

    def close(self) -> None:
        self._stream.close()
