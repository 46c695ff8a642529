"""What a request holds in the limiter is given back when it ends, however it ends, and held while it runs.

A client that hangs up while the gateway awaits Redis to settle its answer must not cancel the settlement
(the parallel slot would stay taken until its lease expired) nor lose the spend record; Redis is real,
behind a small TCP proxy that can hold its replies back. A request that runs longer than the lease TTL keeps
its slot: the gateway renews the leases of requests in flight.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from gateway_harness import ServedGateway, chat_request
from money_harness import TcpProxy, journal_env
from multi_harness import REDIS_HOST, REDIS_PORT, poll, priced_config, wait_logged

from llmswitch.limits import Limiter, open_limiter
from llmswitch.limits.memory import MemoryLimiter
from llmswitch.server.accounting import Accounting, spend_loader_for
from llmswitch.testing import FakeUpstream, Reply


@contextlib.contextmanager
def gateway_with(config: str, journal: Path, make_limiter: Any, **accounting: Any) -> Iterator[ServedGateway]:
    """A gateway on a thread whose limits are ``make_limiter(store)`` (built before it starts)."""
    with journal_env(journal):
        gw = ServedGateway(config)
    g = gw.gateway
    limiter: Limiter = make_limiter(g.store)
    g.accounting = Accounting(
        limiter=limiter, store=g.store, journal_dir=str(journal), subjects=g.subjects, **accounting
    )
    with gw:
        yield gw


def _send(port: int, path: str, body: dict[str, Any], key: str) -> socket.socket:
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer {key}\r\n"
        f"content-length: {len(data)}\r\n\r\n".encode()
        + data
    )
    return s


def test_a_hang_up_while_the_settlement_awaits_redis_keeps_the_record_and_frees_the_slot(
    up: FakeUpstream, tmp_path: Path
) -> None:
    proxy = TcpProxy((REDIS_HOST, REDIS_PORT))
    prefix = f"llmswitch-test:{uuid.uuid4().hex[:12]}"

    def limiter(store: Any) -> Limiter:
        # generous timeouts: the held reply must be awaited, not given up on
        return open_limiter(
            redis_url=f"redis://127.0.0.1:{proxy.port}/0",
            prefix=prefix,
            timeout_s=10.0,
            deadline_s=20.0,
            spend_loader=spend_loader_for(store),
        )

    try:
        with gateway_with(priced_config(up, str(tmp_path / "keys.db")), tmp_path / "journal", limiter) as gw:
            key = gw.new_key(max_parallel_requests=1, max_budget=100.0, key_alias="held")
            up.script(Reply(usage=(1000, 100), latency=0.3))
            path, body = chat_request("openai", "m-openai")
            client = _send(gw.port, path, body, key)
            poll(lambda: len(up.requests) == 1, timeout=5, what="the request upstream")
            proxy.hold()  # the answer's settlement in Redis will wait ...
            poll(lambda: proxy.held >= 1, timeout=5, what="the settlement waiting on Redis")
            client.close()  # ... while the client hangs up
            time.sleep(0.5)  # the gateway sees the hang-up at once and cancels the request's task
            proxy.release()
            [row] = wait_logged(gw.port, key, 1, timeout=5)
            assert row["status"] == 200 and row["spend"] > 0
            # the slot was given back: the next request is admitted, not refused for max_parallel_requests
            up.script(Reply(usage=(10, 10)))
            nxt = gw.call("POST", path, body, key=key)
            assert nxt.status == 200, nxt.body
    finally:
        proxy.close()
        r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
        keys = list(r.scan_iter(match=f"{prefix}:*"))
        if keys:
            r.delete(*keys)
        r.close()


def test_a_request_longer_than_the_lease_ttl_keeps_its_slot_to_its_end(up: FakeUpstream, tmp_path: Path) -> None:
    def limiter(store: Any) -> Limiter:
        return MemoryLimiter(lease_ttl_s=1.5, spend_loader=spend_loader_for(store))

    config = priced_config(up, str(tmp_path / "keys.db"))
    with gateway_with(config, tmp_path / "journal", limiter, renew_every_s=0.3) as gw:
        key = gw.new_key(max_parallel_requests=1, key_alias="long")
        # a stream of about 4 s, well past the 1.5 s lease
        up.script(Reply(text="word " * 200, chunk_size=5, chunk_delay=0.02))
        path, body = chat_request("openai", "m-openai", stream=True)
        long = _send(gw.port, path, body, key)
        poll(lambda: len(up.requests) == 1, timeout=5, what="the stream upstream")
        time.sleep(2.5)  # past the lease TTL, and the stream still runs
        during = gw.call("POST", *chat_request("openai", "m-openai"), key=key)
        assert during.status == 429, during.body
        assert b"max_parallel_requests" in during.body
        got = b""
        while b"[DONE]" not in got:
            chunk = long.recv(65536)
            assert chunk, got[-200:]
            got += chunk
        long.close()
        up.script(Reply(usage=(10, 10)))
        after = poll(
            lambda: (r := gw.call("POST", *chat_request("openai", "m-openai"), key=key)).status == 200 and r,
            timeout=5,
            what="the slot back after the stream",
        )
        assert after
