"""A stream's end marker reaches the client only once the answer's record is written.

A client that has the end marker (``data: [DONE]``, ``message_stop``, ``response.completed``, Gemini's
chunk with its ``finishReason``) has the whole answer, and may hang up
before the body's own end: the openai SDK's synchronous stream closes its response at ``[DONE]`` without
reading on. The upstream here sends its whole answer, then waits before ending its body; the client hangs up
as soon as it has the end marker. The answer must be recorded as answered (200, its usage as the provider
gave it, not estimated), on the fast path (bytes relayed) and the full path (re-encoded).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import openai
import pytest
from gateway_harness import Closing, ServedGateway, chat_request, raw_post
from money_harness import served
from multi_harness import price, priced_config, wait_logged

from llmswitch import ir

USAGE = (300, 4)
HOLD = 0.6  # seconds between the upstream's last event and its body's end


def _events() -> bytes:
    head = {"id": "chatcmpl-end", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    chunks = [
        head
        | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "all of it"}, "finish_reason": None}]},
        head | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        head
        | {
            "choices": [],
            "usage": {"prompt_tokens": USAGE[0], "completion_tokens": USAGE[1], "total_tokens": sum(USAGE)},
        },
    ]
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


class HoldingUpstream:
    """An OpenAI upstream on loopback that answers every chat stream whole, then waits ``HOLD`` seconds
    before the chunked body's last chunk."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.answered = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:  # one request after another on the connection
                while b"\r\n\r\n" not in data:
                    got = conn.recv(65536)
                    if not got:
                        return
                    data += got
                head, data = data.split(b"\r\n\r\n", 1)
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                body = _events()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                    + f"{len(body):x}\r\n".encode()
                    + body
                    + b"\r\n"
                )
                self.answered += 1
                time.sleep(HOLD)
                conn.sendall(b"0\r\n\r\n")

    @property
    def openai_base(self) -> str:
        return f"{self.url}/v1"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    d: Path = tmp_path_factory.mktemp("stream-end")
    up = HoldingUpstream()
    bases = SimpleNamespace(openai_base=up.openai_base, anthropic_base=up.url, gemini_base=up.url)
    try:
        with served(priced_config(bases, str(d / "keys.db")), d / "journal") as gateway:  # type: ignore[arg-type]
            yield gateway
    finally:
        up.close()


def _answered_record(gw: ServedGateway, key: str) -> None:
    [row] = wait_logged(gw.port, key, 1, timeout=5)
    assert row["status"] == 200 and row["estimated"] is False and row["stream"] is True, row
    assert (row["prompt_tokens"], row["completion_tokens"]) == USAGE, row
    assert row["spend"] == pytest.approx(price("m-openai", ir.Usage(input_tokens=USAGE[0], output_tokens=USAGE[1])))


@pytest.mark.parametrize(
    ("face", "marker"),
    [
        ("openai", b"data: [DONE]"),
        ("anthropic", b"message_stop"),
        ("responses", b"response.completed"),
        ("gemini", b'"finishReason"'),  # Gemini's stream has no end marker: its last chunk says the finish
    ],
    ids=["fast-openai", "full-anthropic", "full-responses", "full-gemini"],
)
def test_a_client_that_hangs_up_at_the_end_marker_is_recorded_as_answered(
    gw: ServedGateway, face: str, marker: bytes
) -> None:
    key = gw.new_key(key_alias=f"end-{uuid.uuid4().hex[:8]}", max_budget=50.0)
    if face == "responses":
        path, body = "/v1/responses", {"model": "m-openai", "input": "say all of it", "stream": True}
    else:
        path, body = chat_request(face, "m-openai", "say all of it", stream=True)
    got = b""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(raw_post(path, body, key))
        while marker not in got:
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
    assert b"all of it" in got
    _answered_record(gw, key)


def test_the_openai_sdks_stream_closed_at_done_is_recorded_as_answered(gw: ServedGateway, closing: Closing) -> None:
    key = gw.new_key(key_alias=f"end-sdk-{uuid.uuid4().hex[:8]}", max_budget=50.0)
    c = closing(openai.OpenAI(base_url=f"http://127.0.0.1:{gw.port}/v1", api_key=key, max_retries=0, timeout=10))
    stream = c.chat.completions.create(
        model="m-openai", messages=[{"role": "user", "content": "say all of it"}], stream=True
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    assert text == "all of it"
    _answered_record(gw, key)
