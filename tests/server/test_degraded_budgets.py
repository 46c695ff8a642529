"""Two gateway processes sharing PostgreSQL and a Redis of the test's own, while that Redis is away and after it
comes back (with its state, or empty).

- A spent budget stays spent through an outage on both gateways, whichever of them saw it spent (by default
  budgeted requests are refused with a 503 until Redis answers).
- With ``LLMSWITCH_DEGRADED_BUDGETS=share`` a partly spent budget is spent during the outage by at most what
  docs/budgets.md states: each gateway its share of what was left, plus one request each.
- A Redis restarted empty is loaded from the store once: what is left is ``max_budget`` less the store's spend,
  exactly, the outage's spend counted once.

The redis-server is started on a spare port (``--save ""``: a restart keeps nothing), frozen with SIGSTOP (it
keeps its state but never answers) or stopped and started again.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gateway_harness import Response, dialect_error, free_port
from multi_harness import (
    REDIS_PORT,
    GatewayProcess,
    key_info,
    poll,
    price,
    priced_config,
    start_together,
    wait_logged,
)

from llmswitch import ir
from llmswitch.dialects.openai_chat import decode_request
from llmswitch.server.accounting import estimate_prompt_tokens
from llmswitch.testing import FakeUpstream, Reply

COOLDOWN_S = 5.0  # the limiter's circuit: Redis is tried again this long after it failed
OUTAGE_S = 10.0  # how long Redis is away in the test under load
BODY = {"model": "m-openai", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 1000}


class OwnRedis:
    """redis-server on a spare loopback port, to freeze, thaw, stop and start again (empty)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.thaw()
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@dataclass
class Pair:
    a: GatewayProcess
    b: GatewayProcess
    redis: OwnRedis


def chat(gw: GatewayProcess, key: str) -> Response:
    return gw.call("POST", "/v1/chat/completions", BODY, key=key)


def one_request_cost() -> tuple[float, ir.Usage]:
    usage = ir.Usage(input_tokens=estimate_prompt_tokens(decode_request(dict(BODY))), output_tokens=1000)
    return price("m-openai", usage), usage


@contextlib.contextmanager
def gateways(upstream: FakeUpstream, postgres_url: str, d: Path, env: dict[str, str] | None = None) -> Iterator[Pair]:
    redis = OwnRedis()
    redis.start()
    config = d / "config.yaml"
    text = priced_config(upstream, postgres_url, redis=True)
    config.write_text(text.replace(f"redis_port: {REDIS_PORT}", f"redis_port: {redis.port}"))

    def gateway(name: str) -> GatewayProcess:
        return GatewayProcess(config, d / f"{name}.log", {"LLMSWITCH_JOURNAL_DIR": str(d / f"j-{name}"), **(env or {})})

    try:
        a, b = start_together(lambda: gateway("a"), lambda: gateway("b"))
        try:
            yield Pair(a, b, redis)
        finally:
            a.stop()
            b.stop()
    finally:
        redis.stop()


@pytest.fixture
def priced(up: FakeUpstream) -> Iterator[float]:
    cost, usage = one_request_cost()
    up.responder = lambda _: Reply(usage=usage)  # the upstream answers what the gateway reserves
    try:
        yield cost
    finally:
        up.responder = None


def until_refused(gws: list[GatewayProcess], key: str, *, most: int) -> list[Response]:
    """Requests one at a time, taking turns across ``gws``, until one is refused; the answered ones."""
    answered = []
    for i in range(most):
        r = chat(gws[i % len(gws)], key)
        if r.status != 200:
            return answered
        answered.append(r)
    return answered


def wait_degraded(*gws: GatewayProcess) -> None:
    for gw in gws:
        deadline = time.monotonic() + 5
        while "enforcing rate limits and budgets in this process only" not in gw.output():
            assert time.monotonic() < deadline, gw.output()
            time.sleep(0.05)


def test_a_spent_budget_stays_spent_on_both_gateways_while_redis_is_away(
    upstream: FakeUpstream, up: FakeUpstream, priced: float, postgres_url: str, tmp_path: Path
) -> None:
    cost = priced
    with gateways(upstream, postgres_url, tmp_path) as pair:
        key = pair.a.new_key(max_budget=2.5 * cost, key_alias=f"spent-{uuid.uuid4().hex[:6]}")
        assert chat(pair.b, key).status == 200  # B last saw the budget with one request's spend in it
        answered = until_refused([pair.a], key, most=10)
        assert len(answered) == 2  # 1, 2, 3 requests' spend: the third reaches 2.5
        wait_logged(pair.a.port, key, 3, timeout=5)  # the store has it all
        sent = len(up.requests)

        pair.redis.freeze()
        outage = [chat(gw, key) for gw in (pair.b, pair.a, pair.b, pair.a)]
        wait_degraded(pair.a, pair.b)
        outage += [chat(gw, key) for gw in (pair.b, pair.a)]
        for r in outage:
            assert r.status in (400, 503), r.body  # never admitted: a 400 while Redis answered, then 503
            kind, message = dialect_error("openai", r)
            if r.status == 400:
                assert kind == "budget_exceeded", message
            else:  # in OpenAI's words for a 503, not a spent budget: the client may retry
                assert kind == "server_error" and "retry shortly" in message, (kind, message)
                assert "127.0.0.1" not in message and str(pair.redis.port) not in message, message
        assert [r.status for r in outage[-2:]] == [503, 503]
        assert int(outage[-1].headers["retry-after"]) >= 1
        assert len(up.requests) == sent  # nothing reached the upstream

        pair.redis.thaw()
        time.sleep(COOLDOWN_S)
        for gw in (pair.a, pair.b):
            r = chat(gw, key)
            assert r.status == 400 and dialect_error("openai", r)[0] == "budget_exceeded", r.body
        assert len(up.requests) == sent
        assert key_info(pair.b.port, key)["spend"] == pytest.approx(3 * cost, rel=1e-9)


def test_a_shared_budget_is_spent_within_the_documented_overshoot_while_redis_is_away(
    upstream: FakeUpstream, up: FakeUpstream, priced: float, postgres_url: str, tmp_path: Path
) -> None:
    cost = priced
    share = 0.5
    env = {"LLMSWITCH_DEGRADED_BUDGETS": "share", "LLMSWITCH_DEGRADED_SHARE": str(share)}
    with gateways(upstream, postgres_url, tmp_path, env) as pair:
        max_budget = 10.5 * cost
        key = pair.a.new_key(max_budget=max_budget, key_alias=f"share-{uuid.uuid4().hex[:6]}")
        assert [chat(gw, key).status for gw in (pair.a, pair.b)] == [200, 200]
        wait_logged(pair.a.port, key, 2, timeout=5)
        before = key_info(pair.a.port, key)["spend"]
        assert before == pytest.approx(2 * cost, rel=1e-9)

        pair.redis.freeze()
        outage = [chat(gw, key) for gw in [pair.a, pair.b] * 15]
        answered = [r for r in outage if r.status == 200]
        for r in outage:
            assert r.status in (200, 400), r.body
        rows = wait_logged(pair.a.port, key, 2 + len(answered), timeout=5)
        assert len(rows) == 2 + len(answered)
        spent_in_outage = key_info(pair.a.port, key)["spend"] - before
        left = max_budget - before
        # docs/budgets.md: each of N gateways spends at most its share of what was left, plus one request
        bound = 2 * (share * left + cost)
        print(f"outage: {len(answered)} answered, {spent_in_outage:.6f} USD of {left:.6f} left (bound {bound:.6f})")
        assert 0 < spent_in_outage <= bound * (1 + 1e-9)
        assert spent_in_outage == pytest.approx(sum(float(r.headers["x-llmswitch-cost"]) for r in answered))
        # both gateways served their share, neither more
        by_a = sum(1 for i, r in enumerate(outage) if r.status == 200 and i % 2 == 0)
        assert 0 < by_a < len(answered)
        assert by_a * cost <= share * left + cost * (1 + 1e-9)


def test_a_redis_restarted_empty_is_loaded_from_the_store_once(
    upstream: FakeUpstream, up: FakeUpstream, priced: float, postgres_url: str, tmp_path: Path
) -> None:
    cost = priced
    env = {"LLMSWITCH_DEGRADED_BUDGETS": "share", "LLMSWITCH_DEGRADED_SHARE": "0.5"}
    with gateways(upstream, postgres_url, tmp_path, env) as pair:
        max_budget = 20.5 * cost
        key = pair.a.new_key(max_budget=max_budget, key_alias=f"flushed-{uuid.uuid4().hex[:6]}")
        assert [chat(gw, key).status for gw in (pair.a, pair.b)] == [200, 200]
        wait_logged(pair.a.port, key, 2, timeout=5)

        pair.redis.stop()
        outage = [chat(gw, key) for gw in [pair.a, pair.b] * 3]
        assert [r.status for r in outage] == [200] * 6  # well within each gateway's share
        wait_logged(pair.a.port, key, 8, timeout=5)  # journaled and shipped while Redis was away
        stored = key_info(pair.a.port, key)["spend"]
        assert stored == pytest.approx(8 * cost, rel=1e-9)

        pair.redis.start()  # empty
        time.sleep(COOLDOWN_S)
        # what is left is max_budget - store spend, exactly: 12.5 requests' worth, so 13 more are answered
        # (the last one ends past the budget by half a request, as with Redis up all along)
        answered = until_refused([pair.a, pair.b], key, most=30)
        assert len(answered) == 13, f"{len(answered)} answered after the restart, 13 expected"
        rows = wait_logged(pair.a.port, key, 21, timeout=5)
        assert len(rows) == 21
        for gw in (pair.a, pair.b):
            assert "answers again" in gw.output()


def test_under_load_a_redis_cut_and_restored_empty_keeps_the_budget_and_every_record(
    upstream: FakeUpstream, up: FakeUpstream, priced: float, postgres_url: str, tmp_path: Path
) -> None:
    cost = priced
    _, usage = one_request_cost()
    up.responder = lambda _: Reply(usage=usage, latency=0.02)  # answers overlap: reservations in flight
    # a share of 0.2 for each of two gateways leaves most of the budget for after Redis is back
    env = {"LLMSWITCH_DEGRADED_BUDGETS": "share", "LLMSWITCH_DEGRADED_SHARE": "0.2"}
    per_gateway = 3  # clients each gateway serves at once
    with gateways(upstream, postgres_url, tmp_path, env) as pair:
        max_budget = 80.5 * cost
        key = pair.a.new_key(max_budget=max_budget, key_alias=f"load-{uuid.uuid4().hex[:6]}")
        results: list[Response] = []
        phases: list[str] = []
        phase = ["before"]
        lock = threading.Lock()
        stop = threading.Event()

        def client(gw: GatewayProcess) -> None:
            while not stop.is_set():
                now = phase[0]
                r = chat(gw, key)
                with lock:
                    results.append(r)
                    phases.append(now)
                time.sleep(0.01)

        threads = [threading.Thread(target=client, args=(gw,), daemon=True) for gw in [pair.a, pair.b] * per_gateway]
        for t in threads:
            t.start()
        try:
            poll(lambda: sum(r.status == 200 for r in list(results)) >= 10, timeout=10, what="10 answers")
            pair.redis.stop()
            phase[0] = "outage"
            time.sleep(OUTAGE_S)
            pair.redis.start()  # empty
            phase[0] = "after"
            time.sleep(COOLDOWN_S + 2.0)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        answered = [r for r in results if r.status == 200]
        for r in results:
            assert r.status in (200, 400, 503), r.body
        rows = wait_logged(pair.a.port, key, len(answered), timeout=10)
        # the spend logs are exactly the answers
        assert sorted(row["request_id"] for row in rows) == sorted(r.headers["x-request-id"] for r in answered)
        spent = sum(row["spend"] for row in rows)
        assert spent == pytest.approx(sum(float(r.headers["x-llmswitch-cost"]) for r in answered))
        # docs/budgets.md: one request per gateway over the share of what was left during the outage, the
        # requests in flight when Redis went away (at most one per client), and one request after it is back
        bound = max_budget + (2 + 2 * per_gateway + 1) * cost
        counts = Counter(p for p, r in zip(phases, results, strict=True) if r.status == 200)
        print(
            f"answered {len(answered)} ({dict(counts)}), spent {spent / cost:.2f} requests of a "
            f"{max_budget / cost:.2f} budget"
        )
        assert counts["outage"] > 0 and counts["after"] > 0
        assert spent <= bound * (1 + 1e-9)
        assert spent >= max_budget  # the budget was used up, not refused early (nothing counted twice)
