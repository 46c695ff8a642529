"""What the gateway journals and logs per request, and the key cache behind authentication, without a server.

The gateway builds its own spend records' journal lines straight from their values (the fast path);
they must be the very lines the checked path (``SpendRecord`` and ``encode_line``) makes, and a value
that is not plainly of its type must go the checked way, and fail as loudly as it always has.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from msgspec import structs

from llmswitch import ir
from llmswitch.cost import cost_of, estimate_cost, load_table
from llmswitch.errors import AuthenticationError, ConfigError, RateLimitError
from llmswitch.limits.memory import MemoryLimiter
from llmswitch.router.outcomes import Route
from llmswitch.router.router import Router
from llmswitch.server import auth, http
from llmswitch.server.accesslog import AccessLog
from llmswitch.server.accounting import Accounting
from llmswitch.server.auth import KeyCache, Principal
from llmswitch.server.pricing import DEFAULT_MAX_OUTPUT_TOKENS, deployment_of, reserve_estimate
from llmswitch.server.spend_records import spend_record
from llmswitch.spend import Journal
from llmswitch.spend.framing import decode_line, encode_line
from llmswitch.store import KeyRecord, generate_key

DEPLOYMENTS = [{"model_name": "g", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "sk-upstream"}}]


def _route() -> Route:
    router = Router(DEPLOYMENTS)
    return Route(router.deployments("g")[0], "g", 1, "g")


def _request(spend_id: str, principal: Principal, **state: Any) -> http.Request:
    request = http.Request({"method": "POST", "path": "/v1/chat/completions", "headers": []}, _no_receive)
    request.state.update({"request_id": spend_id, "spend_id": spend_id, "principal": principal, "model": "g", **state})
    return request


async def _no_receive() -> dict[str, Any]:
    raise AssertionError("not read")


def _with_accounting(tmp_path: Path, body: Callable[[Accounting], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        acc = Accounting(limiter=MemoryLimiter(), store=None, journal_dir=None)
        acc.journal = Journal(tmp_path / "journal", fsync="os")
        await acc.journal.open()
        try:
            await body(acc)
        finally:
            await acc.journal.close()

    asyncio.run(main())


def _journaled(tmp_path: Path) -> list[bytes]:
    return [line for f in sorted((tmp_path / "journal").glob("*.journal")) for line in f.read_bytes().splitlines()]


CASES: list[dict[str, Any]] = [
    {"usage": ir.Usage(input_tokens=9, output_tokens=9)},
    {"usage": ir.Usage(input_tokens=1200, output_tokens=340, cache_read_tokens=1024, reasoning_tokens=128)},
    {"usage": ir.Usage(input_tokens=12, output_tokens=3), "stream": True, "state": {"ttft_ms": 12.5}},
    {"usage": None, "error": TimeoutError("upstream"), "status": 504},
    {"usage": ir.Usage(input_tokens=5, output_tokens=1), "error": ConnectionError("cut"), "status": 502},
    {"usage": ir.Usage(input_tokens=5), "state": {"request_id": "client-chosen"}},
    {"usage": ir.Usage(input_tokens=5), "route": None},
    {"usage": None, "error": ValueError("no such model"), "status": 404, "state": {"model": "g\x00x"}},
]


@pytest.mark.parametrize("case", CASES)
def test_the_journaled_line_is_the_checked_records_line(tmp_path: Path, case: dict[str, Any]) -> None:
    rec = KeyRecord.for_key(generate_key(), key_alias="ci", user_id="alice", rpm_limit=10, max_budget=5.0)
    principal = Principal(rec.token_hash, False, rec)
    route = case.get("route", _route())
    request = _request("spend-1", principal, **case.get("state", {}))
    usage, error, status, stream = case["usage"], case.get("error"), case.get("status", 200), case.get("stream", False)

    async def body(acc: Accounting) -> None:
        await acc.finish(
            request, None, status=status, route=route, usage=usage, error=error, stream=stream, started=0.0
        )

    _with_accounting(tmp_path, body)
    [line] = _journaled(tmp_path)
    got = decode_line(line)
    assert got is not None
    cost = None
    if usage is not None and route is not None:
        price = deployment_of(route).price
        assert price is not None
        cost = cost_of(usage, price)
    expected = spend_record(request, status, route, usage, cost, error, stream, 0.0)
    # time and latency are when each was made; everything else is the checked record's, to the byte
    same = structs.replace(expected, time=got.time, latency_ms=got.latency_ms)
    assert encode_line(same) == line + b"\n"
    assert abs(got.time - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_nul_in_the_clients_model_is_journaled_as_u_fffd(tmp_path: Path) -> None:
    """The client's model is its own text in the record: PostgreSQL's text cannot hold a NUL, and a batch
    holding one would go again as an INSERT (tests/store/test_postgres_spend_copy.py)."""
    rec = KeyRecord.for_key(generate_key())
    principal = Principal(rec.token_hash, False, rec)

    async def body(acc: Accounting) -> None:
        for model in ("g\x00x", "\x00"):
            request = _request(f"nul-{len(model)}", principal, model=model)
            await acc.finish(request, None, status=404, route=None, usage=None, error=ValueError("?"), started=0.0)

    _with_accounting(tmp_path, body)
    got = [decode_line(line) for line in _journaled(tmp_path)]
    assert [r.model_group for r in got if r is not None] == ["g\ufffdx", "\ufffd"]


def test_a_value_of_the_wrong_kind_goes_the_checked_way_and_is_refused_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = KeyRecord.for_key(generate_key())
    principal = Principal(rec.token_hash, False, rec)
    bad = ir.Usage(input_tokens=-3, output_tokens=2)  # an upstream that reports nonsense

    async def body(acc: Accounting) -> None:
        await acc.finish(_request("bad", principal), None, status=200, route=_route(), usage=bad, started=0.0)
        await acc.finish(
            _request("good", principal), None, status=200, route=_route(), usage=ir.Usage(input_tokens=3), started=0.0
        )

    with caplog.at_level(logging.ERROR, logger="llmswitch.accounting"):
        _with_accounting(tmp_path, body)
    assert [decode_line(line).request_id for line in _journaled(tmp_path)] == ["good"]  # type: ignore[union-attr]
    assert "could not journal spend record bad" in caplog.text


def test_admission_refuses_with_the_limit_named_and_settles_to_the_real_cost(tmp_path: Path) -> None:
    rec = KeyRecord.for_key(generate_key(), key_alias="ci", rpm_limit=2, max_budget=1.0)
    principal = Principal(rec.token_hash, False, rec)
    req = ir.Request(model="g", messages=[ir.Message(role="user", content=[ir.TextPart(text="hello")])])

    async def body(acc: Accounting) -> None:
        assert acc.limiter is not None
        first = await acc.admit(principal, req, _request("a", principal))
        await acc.admit(principal, req, _request("b", principal))
        with pytest.raises(RateLimitError, match="key 'ci'") as refused:
            await acc.admit(principal, req, _request("c", principal))
        assert refused.value.headers["x-ratelimit-remaining-requests"] == "0"  # type: ignore[attr-defined]
        assert first is not None
        usage = ir.Usage(input_tokens=1000, output_tokens=1000)
        cost = await acc.finish(_request("a", principal), first, status=200, route=_route(), usage=usage, started=0.0)
        assert cost is not None and cost > 0
        state = await acc.limiter.budget(f"key:{rec.token_hash}")
        assert state is not None and state.spent == cost

    _with_accounting(tmp_path, body)


# ---------------------------------------------------------------- the key cache


class _Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_known_key_skips_hashing_yet_sees_every_change_at_once() -> None:
    clock = _Clock()
    cache = KeyCache(None, "sk-master-key-for-tests", clock=clock)
    cache.auth_required = True
    key = generate_key()
    rec = KeyRecord.for_key(key, expires=datetime.fromtimestamp(clock.now + 60, UTC))
    cache.put(rec)
    first = cache.authenticate(key)
    assert cache.authenticate(key) is first  # remembered: no hash, no new principal
    assert cache.authenticate("sk-master-key-for-tests").is_master

    changed = KeyRecord.for_key(key, key_alias="renamed", expires=rec.expires)
    cache.put(changed)  # a refresh or an admin call replaced the record
    assert cache.authenticate(key).record is changed

    cache.put(KeyRecord.for_key(key, blocked=True))
    with pytest.raises(AuthenticationError, match="blocked"):
        cache.authenticate(key)

    cache.put(changed)
    assert cache.authenticate(key).record is changed
    clock.now += 61  # past its expiry, with the principal remembered
    with pytest.raises(AuthenticationError, match="expired"):
        cache.authenticate(key)

    clock.now -= 61
    assert cache.authenticate(key).record is changed
    cache.remove(changed.token_hash)  # deleted
    with pytest.raises(AuthenticationError, match="invalid"):
        cache.authenticate(key)


def test_remembered_keys_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = KeyCache(None, None)
    cache.auth_required = True
    keys = [generate_key() for _ in range(3)]
    for key in keys:
        cache.put(KeyRecord.for_key(key))
    monkeypatch.setattr(auth, "_MAX_REMEMBERED", 2)
    for key in keys:
        cache.authenticate(key)
    assert len(cache._remembered) <= 2
    assert all(cache.authenticate(key).record is not None for key in keys)


def test_the_reservation_estimate_is_estimate_cost_to_the_bit() -> None:
    # the gateway keeps the output's part of each price's estimate: the sum must not change. A price
    # that bounds no output, for a request that does not either, is reserved for the default output
    rng = random.Random(2)
    for price in load_table().models.values():
        for _ in range(40):
            tokens = rng.randint(0, 10 ** rng.randint(0, 9))
            max_tokens = rng.choice([None, 0, 1, rng.randint(1, 10**6)])
            try:
                expected = estimate_cost(price, tokens, max_tokens)
            except ConfigError:
                expected = estimate_cost(price, tokens, DEFAULT_MAX_OUTPUT_TOKENS)
            assert (
                reserve_estimate(price, tokens, max_tokens) == expected == reserve_estimate(price, tokens, max_tokens)
            )


# ---------------------------------------------------------------- the access log


def test_access_records_are_encoded_together_and_an_odd_one_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    access = AccessLog(stream=out)
    rec = KeyRecord.for_key(generate_key(), key_alias="ci")
    good = _request("r1", Principal(rec.token_hash, False, rec), usage=ir.Usage(input_tokens=3, output_tokens=4))
    odd = _request("r2", Principal(rec.token_hash, False, rec))
    odd.state["model"] = object()  # nothing JSON can hold

    async def serve() -> None:
        access.record(good, 200, 0.0123456)
        access.record(odd, 200, 0.001)
        access.record(good, 201, 0.001)
        assert out.getvalue() == ""  # kept until the batch is written
        access.flush()

    with caplog.at_level(logging.INFO, logger="llmswitch.access"):
        asyncio.run(serve())
        access.record(good, 202, 0.001)
        access.flush()  # as the gateway's shutdown does
    [line, after, sync] = [json.loads(text) for text in out.getvalue().splitlines()]
    assert line["request_id"] == "r1" and line["status"] == 200 and line["key"] == "ci"
    assert line["latency_ms"] == 12.346 and line["tokens"] == {"input": 3, "output": 4}
    assert "error" not in line and "ttft_ms" not in line  # what a request did not have is left out
    assert (after["status"], sync["status"]) == (201, 202)
