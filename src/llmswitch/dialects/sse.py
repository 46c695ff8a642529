"""Server-sent events, both directions, incrementally and without I/O.

:class:`SSEParser` takes bytes as they arrive (split anywhere, ``\\n``, ``\\r\\n`` or ``\\r`` line ends)
and yields complete events; comment lines (``: keep-alive``) are dropped, as the SSE standard says.

    >>> p = SSEParser()
    >>> p.feed(b"event: ping\\ndata: {}\\n\\ndata: {\\"a\\"")
    [SSEEvent(event='ping', data='{}')]
    >>> p.feed(b": 1}\\n\\n")
    [SSEEvent(event=None, data='{"a": 1}')]
"""

from __future__ import annotations

from typing import NamedTuple


class SSEEvent(NamedTuple):
    event: str | None
    data: str


class SSEParser:
    """Incremental SSE decoder: ``feed(bytes) -> [SSEEvent]``, then ``close()`` for a trailing event."""

    __slots__ = ("_buf", "_data", "_event", "_has_data")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._has_data = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        out: list[SSEEvent] = []
        start = 0
        n = len(buf)
        while start < n:
            nl = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, nl if nl >= 0 else n)
            if cr >= 0:
                end = cr
                # a lone \r at the very end may be the first half of \r\n: wait for more bytes
                if cr + 1 == n:
                    break
                nxt = cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
            elif nl >= 0:
                end, nxt = nl, nl + 1
            else:
                break
            self._line(buf[start:end], out)
            start = nxt
        self._buf = buf[start:]
        return out

    def close(self) -> list[SSEEvent]:
        """Flush what is left when the stream ends without a final blank line."""
        out: list[SSEEvent] = []
        if self._buf:
            self._line(self._buf.removesuffix(b"\r"), out)
            self._buf = b""
        self._line(b"", out)
        return out

    def _line(self, raw: bytes, out: list[SSEEvent]) -> None:
        if not raw:
            if self._has_data:
                out.append(SSEEvent(self._event, "\n".join(self._data)))
            self._data = []
            self._event = None
            self._has_data = False
            return
        if raw[:1] == b":":
            return
        line = raw.decode("utf-8", "replace")
        field, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
            self._has_data = True
        elif field == "event":
            self._event = value


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """One SSE event; ``data`` must not contain newlines (compact JSON never does)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
