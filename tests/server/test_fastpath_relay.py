"""The fast path's stream relay passes the upstream's bytes on unchanged, however they were cut, and holds
the end marker (``data: [DONE]``) back until the answer's record is written: the record comes before the
client can have the whole answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch.server import faces
from llmswitch.server.fastpath import relay_stream


class Chunks:
    """A relayed stream whose raw bytes are ``chunks``."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def raw_chunks(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            await asyncio.sleep(0)
            yield c

    def close(self) -> None:
        pass


def relay(chunks: list[bytes]) -> tuple[list[tuple[str, bytes]], Any]:
    """What the client was sent, in order, with ``("record", b"")`` where the answer's record was written."""
    sent: list[tuple[str, bytes]] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(("body" if message.get("more_body") else "end", message.get("body", b"")))

    async def before_last_byte() -> None:
        sent.append(("record", b""))

    request = SimpleNamespace(state={})
    stream: Any = Chunks(chunks)
    asyncio.run(
        relay_stream(
            stream,
            request,  # type: ignore[arg-type]
            send,
            faces.OPENAI,
            include_usage=True,
            headers=[],
            before_last_byte=before_last_byte,
        )
    )
    return sent, request


def _event(text: str, eol: bytes) -> bytes:
    return b'data: {"choices":[{"index":0,"delta":{"content":"' + text.encode() + b'"}}]}' + eol + eol


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.text(alphabet="abc xyz", min_size=1, max_size=6), min_size=1, max_size=5),
    eol=st.sampled_from([b"\n", b"\r\n"]),
    done_blank=st.booleans(),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=8),
)
def test_the_relayed_bytes_are_the_upstreams_and_the_end_marker_follows_the_record(
    texts: list[str], eol: bytes, done_blank: bool, cuts: list[int]
) -> None:
    whole = b"".join(_event(t, eol) for t in texts) + b"data: [DONE]" + (eol + eol if done_blank else b"")
    points = sorted({c for c in cuts if c < len(whole)})
    chunks = [whole[a:b] for a, b in zip([0, *points], [*points, len(whole)], strict=True)]
    sent, _ = relay(chunks)
    assert b"".join(body for _, body in sent) == whole
    kinds = [kind for kind, _ in sent]
    assert kinds.count("record") == 1 and kinds[-1] == "end", kinds
    recorded = kinds.index("record")
    assert b"[DONE]" not in b"".join(body for _, body in sent[:recorded])
    assert b"[DONE]" in sent[-1][1]


def test_bytes_after_the_end_marker_still_come_after_it() -> None:
    whole = _event("hi", b"\n") + b"data: [DONE]\n\n" + b": a comment after the end\n\n"
    sent, _ = relay([whole[:40], whole[40:-10], whole[-10:]])
    assert b"".join(body for _, body in sent) == whole
    assert [kind for kind, _ in sent][-2:] == ["record", "end"]
