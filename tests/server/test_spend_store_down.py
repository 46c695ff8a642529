"""The database going away: a budgeted key whose spend cannot be read gets a 503 in the caller's dialect
with a generic message; what was wrong (the database's host and port) goes to the log only.

PostgreSQL is real, behind a TCP proxy that the test cuts mid-run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_harness import POSTGRES_URL, ServedGateway, chat_request, dialect_error, gateway_config
from money_harness import TcpProxy, served

from llmswitch.testing import FakeUpstream

PG_HOST_PORT = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0]


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    host, port = PG_HOST_PORT.rsplit(":", 1)
    p = TcpProxy((host, int(port)))
    yield p
    p.cut()


@pytest.mark.parametrize("face", ["openai", "anthropic", "gemini"])
def test_a_budgeted_key_gets_a_generic_503_while_the_database_is_down(
    up: FakeUpstream, postgres_url: str, proxy: TcpProxy, tmp_path: Path, face: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgres_url.replace(PG_HOST_PORT, f"127.0.0.1:{proxy.port}")
    with served(gateway_config(up, url, num_retries=0), tmp_path / "journal") as gw:
        key = gw.new_key(max_budget=5.0, key_alias=f"db-down-{face}")
        proxy.cut()
        with caplog.at_level(logging.ERROR, logger="llmswitch.accounting"):
            path, body = chat_request(face, "m-openai")
            r = gw.call("POST", path, body, key=key)
        assert r.status == 503, r.body
        kind, message = dialect_error(face, r)
        for detail in (str(proxy.port), "127.0.0.1", "postgres", "5432"):
            assert detail not in r.body.decode(), r.body
        assert "retry" in message
        assert kind != "invalid_request_error"
        assert up.requests == []  # never sent upstream
        # the log says what was wrong, for the operator
        assert any(str(proxy.port) in rec.getMessage() for rec in caplog.records), caplog.records
        _stop_quickly(gw)


def _stop_quickly(gw: ServedGateway) -> None:
    # the store is gone: the shutdown's drain of the journal gives up at once rather than retrying
    gw.server.graceful_timeout = 0.5
