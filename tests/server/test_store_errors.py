"""The database going away under the key API and key lookups: a 503 in the caller's dialect with a generic
message, never a 400 naming the database; what was wrong goes to the log only.

PostgreSQL is real, behind a TCP proxy that the test cuts mid-run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_harness import MASTER_KEY, POSTGRES_URL, ServedGateway, chat_request, dialect_error, gateway_config
from money_harness import TcpProxy, served

from llmswitch.testing import FakeUpstream

PG_HOST_PORT = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0]


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    host, port = PG_HOST_PORT.rsplit(":", 1)
    p = TcpProxy((host, int(port)))
    yield p
    p.cut()


def _names_nothing_inside(body: bytes, proxy: TcpProxy) -> None:
    text = body.decode()
    for detail in (str(proxy.port), "127.0.0.1", "postgres", "5432", "schema"):
        assert detail not in text, text


def test_the_key_api_answers_503_without_the_database_url(
    up: FakeUpstream, postgres_url: str, proxy: TcpProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgres_url.replace(PG_HOST_PORT, f"127.0.0.1:{proxy.port}")
    with served(gateway_config(up, url, num_retries=0), tmp_path / "journal") as gw:
        key = gw.new_key(key_alias="store-errors")
        assert gw.call("GET", f"/key/info?key={key}", key=MASTER_KEY).status == 200
        proxy.cut()
        with caplog.at_level(logging.ERROR, logger="llmswitch.server"):
            r = gw.call("GET", f"/key/info?key={key}", key=MASTER_KEY)
            again = gw.call("GET", f"/key/info?key={key}", key=MASTER_KEY)
            made = gw.call("POST", "/key/generate", {"key_alias": "while-down"}, key=MASTER_KEY)
        assert r.status == 503, r.body
        kind, message = dialect_error("openai", r)
        assert kind != "invalid_request_error" and "retry" in message
        _names_nothing_inside(r.body, proxy)
        assert again.status == 503
        assert made.status == 503, made.body
        _names_nothing_inside(made.body, proxy)
        # the operator learns what was wrong, once (not once per request)
        said = [rec for rec in caplog.records if str(proxy.port) in rec.getMessage()]
        assert len(said) == 1, caplog.records
        _stop_quickly(gw)


@pytest.mark.parametrize("face", ["openai", "anthropic", "gemini"])
def test_an_unknown_key_is_503_not_401_while_the_database_is_down(
    up: FakeUpstream, postgres_url: str, proxy: TcpProxy, tmp_path: Path, face: str
) -> None:
    url = postgres_url.replace(PG_HOST_PORT, f"127.0.0.1:{proxy.port}")
    with served(gateway_config(up, url, num_retries=0), tmp_path / "journal") as gw:
        proxy.cut()
        path, body = chat_request(face, "m-openai")
        # perhaps made on another instance a moment ago: whether it exists cannot be known now
        r = gw.call("POST", path, body, key=f"sk-made-elsewhere-{face}-0c5e")
        assert r.status == 503, r.body
        kind, message = dialect_error(face, r)
        assert kind not in ("invalid_request_error", "authentication_error") and "retry" in message
        _names_nothing_inside(r.body, proxy)
        assert up.requests == []
        _stop_quickly(gw)


def _stop_quickly(gw: ServedGateway) -> None:
    # the store is gone: the shutdown's drain of the journal gives up at once rather than retrying
    gw.server.graceful_timeout = 0.5
