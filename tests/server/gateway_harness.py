"""The gateway under test: served by our HTTP server on loopback, and the config that points it at a fake upstream.

The gateway runs in a background thread (``llmswitch.server.h1serve.Server``, lifespan on), built from LiteLLM-format
config text whose model groups reach the fake upstream in each provider's own dialect:

    m-openai     openai/gpt-4o-mini                   key sk-up-openai     (Authorization: Bearer)
    m-anthropic  anthropic/claude-sonnet-4-20250514   key sk-up-anthropic  (x-api-key)
    m-gemini     gemini/gemini-2.5-flash              key sk-up-gemini     (x-goog-api-key)

Clients are the official SDKs, or :func:`call` for raw HTTP (stdlib ``http.client``: exact bytes, no retries).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from llmswitch.config import GatewayConfig, parse_config
from llmswitch.server.app import Gateway
from llmswitch.server.h1serve import Server
from llmswitch.server.serve import build_gateway
from llmswitch.testing import FakeUpstream

MASTER_KEY = "sk-master-test-7c1e9a"
UPSTREAM_KEYS = {"openai": "sk-up-openai-41d2", "anthropic": "sk-up-anthropic-93bf", "gemini": "sk-up-gemini-5a7e"}
GROUPS = {"openai": "m-openai", "anthropic": "m-anthropic", "gemini": "m-gemini"}
UPSTREAM_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-20250514", "gemini": "gemini-2.5-flash"}
POSTGRES_URL = os.environ.get("LLMSWITCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


T = TypeVar("T")


class Closing:
    """SDK clients a test opens, closed when it ends: ``oc = closing(openai.OpenAI(...))``."""

    def __init__(self) -> None:
        self.opened: list[Any] = []

    def __call__(self, client: T) -> T:
        self.opened.append(client)
        return client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def model_list(up: FakeUpstream) -> str:
    """The ``model_list`` section reaching ``up`` in the three provider dialects."""
    bases = {"openai": up.openai_base, "anthropic": up.anthropic_base, "gemini": up.gemini_base}
    rows = [
        f"""  - model_name: {GROUPS[p]}
    litellm_params:
      model: {p}/{UPSTREAM_MODELS[p]}
      api_base: "{bases[p]}"
      api_key: {UPSTREAM_KEYS[p]}"""
        for p in ("openai", "anthropic", "gemini")
    ]
    return "model_list:\n" + "\n".join(rows) + "\n"


def gateway_config(up: FakeUpstream, store: str, **general: Any) -> str:
    """LiteLLM config text: the three groups, the master key, ``store`` as store_path or database_url,
    plus any other ``general_settings`` (and ``num_retries`` under ``router_settings`` when given)."""
    retries = general.pop("num_retries", None)
    settings = {"master_key": MASTER_KEY, **general}
    settings["database_url" if store.startswith("postgresql://") else "store_path"] = store
    text = model_list(up) + "general_settings:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in settings.items())
    if retries is not None:
        text += f"router_settings:\n  num_retries: {retries}\n"
    return text


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ServedGateway:
    """A gateway built from LiteLLM config text (or a loaded config), served on a free loopback port in a thread."""

    def __init__(self, config: str | GatewayConfig) -> None:
        if isinstance(config, str):
            check = parse_config(config)
            assert check.problems == [], check.problems
            assert check.config is not None
            config = check.config
        self.config = config
        self.gateway: Gateway = build_gateway(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = Server(self.gateway, host="127.0.0.1", port=self.port)
        self._thread = threading.Thread(target=self.server.run, name="gateway-under-test", daemon=True)

    def __enter__(self) -> ServedGateway:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self._thread.is_alive(), "the gateway's server thread died while starting"
            assert time.monotonic() < deadline, "the gateway did not start within 15 s"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "the gateway did not stop within 15 s"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = MASTER_KEY,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Response:
        return call(self.port, method, path, body, key=key, headers=headers, raw=raw)

    def new_key(self, **fields: Any) -> str:
        """A virtual key made through ``POST /key/generate`` with the master key."""
        r = self.call("POST", "/key/generate", fields)
        assert r.status == 200, r.body
        key: str = r.json()["key"]
        return key


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = MASTER_KEY,
    headers: Mapping[str, str] | None = None,
    raw: bytes | None = None,
    timeout: float = 30,
) -> Response:
    """One HTTP request to 127.0.0.1:``port``: ``body`` as JSON (or ``raw`` bytes), ``key`` as a Bearer token."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"content-type": "application/json"}
        if key is not None:
            h["authorization"] = f"Bearer {key}"
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


# ---------------------------------------------------------------- requests and errors in each client dialect

FACES = ("openai", "anthropic", "gemini")


def chat_request(face: str, group: str, text: str = "hello", *, stream: bool = False) -> tuple[str, dict[str, Any]]:
    """(path, body) of a minimal valid chat request for ``group`` in a client dialect."""
    if face == "openai":
        body: dict[str, Any] = {"model": group, "messages": [{"role": "user", "content": text}]}
        if stream:
            body["stream"] = True
        return "/v1/chat/completions", body
    if face == "anthropic":
        body = {"model": group, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
        if stream:
            body["stream"] = True
        return "/v1/messages", body
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{group}:{method}", {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def raw_post(path: str, body: dict[str, Any], key: str) -> bytes:
    """The bytes of an HTTP/1.1 POST of ``body`` as JSON, with ``key`` as every dialect sends it: for a
    test that writes to the gateway's socket itself (to hang up at a chosen moment)."""
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {key}\r\nx-api-key: {key}\r\ncontent-length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def dialect_error(face: str, resp: Response) -> tuple[str, str]:
    """(type or status, message) of an error answer, asserting it has exactly the client dialect's envelope."""
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    if face == "openai":
        assert set(body) == {"error"}, body
        err = body["error"]
        assert set(err) == {"message", "type", "param", "code"}, body
        return err["type"], err["message"]
    if face == "anthropic":
        assert set(body) == {"type", "error"} and body["type"] == "error", body
        err = body["error"]
        assert {"type", "message"} <= set(err), body
        return err["type"], err["message"]
    assert set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == resp.status, body
    assert isinstance(err["status"], str) and err["status"].isupper(), body
    return err["status"], err["message"]


def sent_upstream(up: FakeUpstream) -> str:
    """Everything the fake upstream received (paths, queries, headers, bodies) as one text, to grep for keys."""
    return "\n".join(
        f"{r.path} {json.dumps(r.query)} {json.dumps(r.headers)} {r.body.decode(errors='replace')}" for r in up.requests
    )


LLMSWITCH = Path(sys.executable).with_name("llmswitch")


@contextlib.contextmanager
def served_example(config: Path, tmp_path: Path, env: Mapping[str, str], *, timeout: float = 60) -> Iterator[int]:
    """``llmswitch serve --config <config>`` as a process, the way a user runs an example: this environment
    plus ``env`` (and the spend journal under ``tmp_path``), on a free loopback port; yields the port once
    ``/health/readiness`` answers, and stops it with SIGTERM. Its output is in ``tmp_path / "out.log"``."""
    port = free_port()
    full = dict(os.environ, LLMSWITCH_JOURNAL_DIR=str(tmp_path / "journal"), **env)
    argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    out = tmp_path / "out.log"
    with out.open("wb") as log:
        proc = subprocess.Popen(argv, env=full, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                assert proc.poll() is None, out.read_text()
                try:
                    if call(port, "GET", "/health/readiness", key=None, timeout=2).status == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, out.read_text()
                time.sleep(0.05)
            yield port
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
