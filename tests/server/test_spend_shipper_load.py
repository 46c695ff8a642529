"""The load the spend shipper reads: the requests the gateway process is answering, counted by the app.

It rises with requests in flight and falls back to zero whatever ended them: an answer, a refusal, an
upstream error, a client that hung up mid-call. A count that leaked would leave the shipper batching as if
under load for ever; one that missed requests would never batch more.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import openai
import pytest
from gateway_harness import ServedGateway, chat_request, raw_post
from money_harness import served
from multi_harness import poll, priced_config, wait_logged

from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    d = tmp_path_factory.mktemp("shipper-load")
    with served(priced_config(upstream, str(d / "keys.db")), d / "journal") as gateway:
        yield gateway


def in_flight(gw: ServedGateway) -> int:
    acc = gw.gateway.accounting
    assert acc.shipper is not None and acc.shipper.load is not None
    return acc.shipper.load()


def test_requests_in_flight_are_counted_and_every_ending_gives_its_count_back(
    gw: ServedGateway, up: FakeUpstream
) -> None:
    key = gw.new_key(key_alias=f"load-{uuid.uuid4().hex[:8]}")
    poll(lambda: in_flight(gw) == 0, timeout=5, what="no request in flight")
    slow = 12
    up.script(*[Reply(text="slow", latency=1.0) for _ in range(slow)])
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{gw.port}/v1", api_key=key, max_retries=0, timeout=15)
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            client.chat.completions.create(model="m-openai", messages=[{"role": "user", "content": "hi"}])
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(slow)]
    for t in threads:
        t.start()
    poll(lambda: in_flight(gw) >= slow, timeout=5, what=lambda: f"{slow} in flight (have {in_flight(gw)})")
    for t in threads:
        t.join(15)
    client.close()
    assert errors == []
    poll(lambda: in_flight(gw) == 0, timeout=5, what=lambda: f"none in flight (have {in_flight(gw)})")

    # a refused key, an upstream error and a client that hangs up mid-call each give the count back too
    bad = openai.OpenAI(base_url=f"http://127.0.0.1:{gw.port}/v1", api_key="sk-nobody", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="m-openai", messages=[{"role": "user", "content": "hi"}])
    bad.close()
    up.script(Reply(status=500, message="upstream broke"), Reply(text="never read", latency=3.0))
    with (
        openai.OpenAI(base_url=f"http://127.0.0.1:{gw.port}/v1", api_key=key, max_retries=0) as c,
        pytest.raises(openai.InternalServerError),
    ):
        c.chat.completions.create(model="m-openai", messages=[{"role": "user", "content": "hi"}])
    path, body = chat_request("openai", "m-openai", "hang up on me")
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(raw_post(path, body, key))
        poll(lambda: in_flight(gw) == 1, timeout=5, what="the hung-up request in flight")
    poll(lambda: in_flight(gw) == 0, timeout=5, what=lambda: f"none in flight (have {in_flight(gw)})")
    wait_logged(gw.port, key, slow + 2, timeout=5)  # the answers, the upstream error and the hang-up
