"""The gateway is a plain ASGI application: uvicorn serves it as well as our own server does."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import uvicorn
from gateway_harness import GROUPS, call, chat_request, free_port, gateway_config

from llmswitch.config import parse_config
from llmswitch.server.serve import build_gateway
from llmswitch.testing import FakeUpstream


def test_uvicorn_serves_the_gateway(up: FakeUpstream, tmp_path: Path) -> None:
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
        assert call(port, "GET", "/health/readiness", key=None).status == 200
        answer = call(port, "POST", *chat_request("openai", GROUPS["openai"]))
        assert answer.status == 200, answer.body
        assert answer.json()["choices"][0]["message"]["content"]
        stream = call(port, "POST", *chat_request("anthropic", GROUPS["gemini"], stream=True))
        assert stream.status == 200 and b"event: message_stop" in stream.body
    finally:
        server.should_exit = True
        thread.join(15)
    assert not thread.is_alive()
