"""The gateway at the edge of our HTTP/1.1 server: the key is checked on the request's head.

A caller without a valid key is refused before its body is read or invited (no ``100 Continue``), and a key
sent only as a chunked body's trailer counts for nothing. Raw sockets on loopback, against the gateway of
``conftest.gw`` (master key, SQLite store) and, for the same behaviour under another server, uvicorn.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from gateway_harness import GROUPS, MASTER_KEY, ServedGateway, chat_request, free_port, gateway_config
from test_h1 import Reader

from llmswitch.config import parse_config
from llmswitch.server.h1limits import ServerLimits
from llmswitch.server.h1serve import Server
from llmswitch.server.serve import build_gateway
from llmswitch.testing import FakeUpstream, Reply

HUGE = 30 * 1024 * 1024


def head(path: str, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in {"host": "gw", **headers}.items())
    return f"POST {path} HTTP/1.1\r\n{lines}\r\n".encode()


def chat_body() -> bytes:
    path, body = chat_request("openai", GROUPS["openai"])
    assert path == "/v1/chat/completions"
    return json.dumps(body).encode()


def refused_without_100(port: int, headers: dict[str, str], path: str = "/v1/chat/completions") -> int:
    """Send a head announcing a 30 MiB body with ``Expect: 100-continue``; its status."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            head(
                path,
                {"content-type": "application/json", "expect": "100-continue", "content-length": str(HUGE), **headers},
            )
        )
        r = Reader(s)
        _, status, _ = r.head()
        assert r.closed()  # answered and closed: the body was never waited for
        return status


def test_three_keyless_uploads_are_refused_on_the_head_without_100_and_without_reading_a_body(
    gw: ServedGateway, up: FakeUpstream
) -> None:
    socks = [socket.create_connection(("127.0.0.1", gw.port), timeout=5) for _ in range(3)]
    try:
        for s in socks:
            s.sendall(head("/v1/chat/completions", {"expect": "100-continue", "content-length": str(HUGE)}))
        for s in socks:
            r = Reader(s)
            raw, status, headers = r.head()
            assert status == 401 and not raw.startswith(b"HTTP/1.1 100")
            assert headers["connection"] == "close"
            body = r._take(int(headers["content-length"]))
            assert "no API key" in json.loads(body)["error"]["message"]
            assert r.closed()
    finally:
        for s in socks:
            s.close()
    assert up.requests == []


def test_a_wrong_key_is_refused_on_the_head_too(gw: ServedGateway) -> None:
    status = refused_without_100(gw.port, {"authorization": "Bearer sk-not-a-key"})
    assert status == 401


def test_a_key_not_allowed_the_model_in_the_path_is_refused_on_the_head(gw: ServedGateway) -> None:
    key = gw.new_key(models=[GROUPS["openai"]])
    path, _ = chat_request("gemini", GROUPS["gemini"])
    status = refused_without_100(gw.port, {"x-goog-api-key": key}, path)
    assert status == 403


def test_a_keyed_upload_gets_100_continue_then_its_answer(gw: ServedGateway, up: FakeUpstream) -> None:
    body = chat_body()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(
            head(
                "/v1/chat/completions",
                {
                    "authorization": f"Bearer {MASTER_KEY}",
                    "content-type": "application/json",
                    "expect": "100-continue",
                    "content-length": str(len(body)),
                },
            )
        )
        r = Reader(s)
        raw, _, _ = r.head()
        assert raw == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(body)
        a = r.answer()
    assert a.status == 200, a.body
    assert json.loads(a.body)["choices"][0]["message"]["content"]
    assert len(up.requests) == 1


def test_a_key_sent_only_as_a_trailer_does_not_authenticate(gw: ServedGateway, up: FakeUpstream) -> None:
    body = chat_body()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(
            head("/v1/chat/completions", {"content-type": "application/json", "transfer-encoding": "chunked"})
            + b"%x\r\n%b\r\n0\r\nAuthorization: Bearer %b\r\n\r\n" % (len(body), body, MASTER_KEY.encode())
        )
        a = Reader(s).answer()
    assert a.status == 401
    assert up.requests == []


# ---------------------------------------------------------------- the same under uvicorn


@pytest.fixture
def uvicorn_gateway(up: FakeUpstream, tmp_path: Path) -> Iterator[int]:
    check = parse_config(gateway_config(up, str(tmp_path / "keys.db")))
    assert check.config is not None
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_gateway(check.config), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)


def test_under_uvicorn_a_keyless_upload_gets_401_without_100(uvicorn_gateway: int, up: FakeUpstream) -> None:
    with socket.create_connection(("127.0.0.1", uvicorn_gateway), timeout=5) as s:
        s.sendall(head("/v1/chat/completions", {"expect": "100-continue", "content-length": str(HUGE)}))
        raw, status, _ = Reader(s).head()
    assert status == 401 and not raw.startswith(b"HTTP/1.1 100")
    assert up.requests == []


# ---------------------------------------------------------------- a client that stops reading a stream


def test_a_client_that_stops_reading_a_stream_is_dropped_and_the_upstream_call_cancelled(
    up: FakeUpstream, tmp_path: Path
) -> None:
    check = parse_config(gateway_config(up, str(tmp_path / "keys.db")))
    assert check.config is not None
    port = free_port()
    server = Server(build_gateway(check.config), host="127.0.0.1", port=port, limits=ServerLimits(write_timeout=0.5))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    # a long stream (about 12 MB) the upstream writes slowly: far more than the sockets' buffers hold
    up.script(Reply(text="word " * 2_400_000, chunk_size=20_000, chunk_delay=0.002))
    path, body = chat_request("openai", GROUPS["openai"], stream=True)
    data = json.dumps(body).encode()
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(
                head(
                    path,
                    {
                        "authorization": f"Bearer {MASTER_KEY}",
                        "content-type": "application/json",
                        "content-length": str(len(data)),
                    },
                )
                + data
            )
            # the client reads nothing: the gateway drops it after the write timeout and cancels the upstream call
            assert up.wait_for_disconnects(1, timeout=20)
    finally:
        server.should_exit = True
        thread.join(15)
