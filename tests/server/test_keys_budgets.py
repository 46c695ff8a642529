"""A key's budget through the gateway, counted exactly: Redis shared limits, the embedded SQLite store, the
official OpenAI SDK as the client, and the fake upstream scripted with each answer's usage."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openai
import pytest
from gateway_harness import ServedGateway, dialect_error
from multi_harness import key_info, poll, price, priced_config, wait_logged

from llmswitch import ir
from llmswitch.server.budget_resets import BudgetResets
from llmswitch.store import KeyRecord, generate_key, hash_key, open_store
from llmswitch.testing import FakeUpstream, Reply

# gpt-4o at $2.50 / $10 per million tokens: 1,000 in and 250 out cost exactly $0.005
HALF_CENT = ir.Usage(input_tokens=1000, output_tokens=250)


@contextlib.contextmanager
def served(config: str, journal: Path) -> Iterator[ServedGateway]:
    old = os.environ.get("LLMSWITCH_JOURNAL_DIR")
    os.environ["LLMSWITCH_JOURNAL_DIR"] = str(journal)
    try:
        gateway = ServedGateway(config)
    finally:
        if old is None:
            os.environ.pop("LLMSWITCH_JOURNAL_DIR", None)
        else:
            os.environ["LLMSWITCH_JOURNAL_DIR"] = old
    with gateway:
        yield gateway


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    d = tmp_path_factory.mktemp("budgets")
    with served(priced_config(upstream, str(d / "keys.db"), redis=True), d / "journal") as gateway:
        assert gateway.gateway.accounting.limiter is not None
        assert gateway.gateway.accounting.limiter.name == "fallback"  # Redis, as deployments run it
        yield gateway


def client(gw: ServedGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)


def test_a_budget_for_ten_requests_answers_ten(gw: ServedGateway, up: FakeUpstream) -> None:
    assert price("m-openai", HALF_CENT) == 0.005
    key = gw.new_key(max_budget=0.05, key_alias=f"exact-{uuid.uuid4().hex[:8]}")
    up.responder = lambda request: Reply(usage=HALF_CENT)
    sdk = client(gw, key)
    answered = 0
    for _ in range(12):
        try:
            sdk.chat.completions.create(model="m-openai", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
        except openai.BadRequestError as exc:
            assert "Budget has been exceeded" in str(exc) and "current cost 0.05," in str(exc), exc
            break
        answered += 1
    assert answered == 10  # binary floats made 10 x 0.005 < 0.05 and answered an eleventh
    assert len(up.requests) == 10


def chat(gw: ServedGateway, key: str) -> int:
    r = gw.call(
        "POST", "/v1/chat/completions", {"model": "m-openai", "messages": [{"role": "user", "content": "hi"}]}, key=key
    )
    return r.status


def test_key_info_shows_the_current_periods_spend_and_next_reset(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(max_budget=1.0, budget_duration="2s", key_alias=f"period-{uuid.uuid4().hex[:8]}")
    first_reset = datetime.fromisoformat(key_info(gw.port, key)["budget_reset_at"])
    up.responder = lambda request: Reply(usage=HALF_CENT)
    assert chat(gw, key) == 200
    wait_logged(gw.port, key, 1)
    assert key_info(gw.port, key)["spend"] == 0.005

    def next_period() -> dict[str, Any] | None:
        info = key_info(gw.port, key)
        return info if datetime.now(UTC) > first_reset + timedelta(milliseconds=100) else None

    info = poll(next_period, timeout=5, what="the first period to end")
    # LiteLLM's semantics: spend is the period's, and the reset date moves on
    assert info["spend"] == 0.0, info
    moved = datetime.fromisoformat(info["budget_reset_at"])
    assert moved > datetime.now(UTC) - timedelta(milliseconds=100), info
    assert (moved - first_reset).total_seconds() % 2 == 0  # the same windows the limiter uses


def test_key_update_spend_resets_the_limiter_at_once(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(max_budget=0.005, key_alias=f"reset-{uuid.uuid4().hex[:8]}")
    up.responder = lambda request: Reply(usage=HALF_CENT)
    assert chat(gw, key) == 200
    assert chat(gw, key) == 400  # spent
    r = gw.call("POST", "/key/update", {"key": key, "spend": 0})
    assert r.status == 200, r.body
    assert r.json()["spend"] == 0
    assert chat(gw, key) == 200  # at once: no refresh, no restart
    assert chat(gw, key) == 400


def test_key_update_refuses_a_bad_spend(gw: ServedGateway) -> None:
    key = gw.new_key(key_alias=f"bad-spend-{uuid.uuid4().hex[:8]}")
    for bad in (-1, "0", None, True):
        r = gw.call("POST", "/key/update", {"key": key, "spend": bad})
        assert r.status == 400, r.body
        kind, message = dialect_error("openai", r)
        assert kind == "invalid_request_error" and "spend" in message, message


@pytest.mark.parametrize("kind", ["team", "user"])
def test_team_and_user_update_spend_reach_the_limiter(gw: ServedGateway, up: FakeUpstream, kind: str) -> None:
    sid = f"{kind}-{uuid.uuid4().hex[:8]}"
    r = gw.call("POST", f"/{kind}/new", {f"{kind}_id": sid, "max_budget": 0.005, "auto_create_key": False})
    assert r.status == 200, r.body
    key = gw.new_key(**{f"{kind}_id": sid})
    up.responder = lambda request: Reply(usage=HALF_CENT)
    assert chat(gw, key) == 200
    assert chat(gw, key) == 400  # the team's (user's) budget is spent
    r = gw.call("POST", f"/{kind}/update", {f"{kind}_id": sid, "spend": 0})
    assert r.status == 200, r.body
    assert chat(gw, key) == 200


def test_an_admin_reset_holds_without_redis_and_across_a_restart(upstream: FakeUpstream, tmp_path: Path) -> None:
    config = priced_config(upstream, str(tmp_path / "keys.db"))  # no Redis: the limiter is in memory
    upstream.reset()
    upstream.responder = lambda request: Reply(usage=HALF_CENT)
    try:
        with served(config, tmp_path / "journal") as gw:
            assert gw.gateway.accounting.limiter is not None and gw.gateway.accounting.limiter.name == "memory"
            key = gw.new_key(max_budget=0.005, budget_duration="1h", key_alias=f"mem-{uuid.uuid4().hex[:8]}")
            assert chat(gw, key) == 200
            assert chat(gw, key) == 400
            assert gw.call("POST", "/key/update", {"key": key, "spend": 0}).status == 200
            assert chat(gw, key) == 200
            assert chat(gw, key) == 400
            wait_logged(gw.port, key, 2)
            assert gw.call("POST", "/key/update", {"key": key, "spend": 0}).status == 200
            assert key_info(gw.port, key)["spend"] == 0
        with served(config, tmp_path / "journal") as gw:
            # the restarted gateway loads the period's spend from the store: the admin's reset, not
            # the sum of the period's spend logs
            assert chat(gw, key) == 200
            assert chat(gw, key) == 400
    finally:
        upstream.responder = None


def test_team_info_shows_the_current_period(gw: ServedGateway) -> None:
    tid = f"team-{uuid.uuid4().hex[:8]}"
    r = gw.call("POST", "/team/new", {"team_id": tid, "max_budget": 1.0, "budget_duration": "1s", "spend": 0.25})
    assert r.status == 200, r.body
    first_reset = datetime.fromisoformat(r.json()["budget_reset_at"])

    def info() -> dict[str, Any] | None:
        out = gw.call("GET", f"/team/info?team_id={tid}").json()["team_info"]
        return out if datetime.now(UTC) > first_reset + timedelta(milliseconds=100) else None

    shown = poll(info, timeout=5, what="the team's first period to end")
    assert shown["spend"] == 0.0 and datetime.fromisoformat(shown["budget_reset_at"]) > first_reset, shown


def test_the_background_reset_starts_ended_periods_over(tmp_path: Path) -> None:
    async def main() -> None:
        async with open_store(f"sqlite:///{tmp_path / 'keys.db'}") as store:
            key = generate_key()
            past = datetime.now(UTC) - timedelta(hours=1, minutes=30)
            await store.create_key(KeyRecord.for_key(key, budget_duration="1h", budget_reset_at=past, spend=3.0))
            resets = BudgetResets(store, interval=0.02)
            await resets.start()  # the first run is part of starting
            try:
                rec = await store.get_key(hash_key(key))
                assert rec is not None and rec.spend == 0.0 and rec.budget_reset_at == past + timedelta(hours=2)
                later = generate_key()
                await store.create_key(KeyRecord.for_key(later, budget_duration="1h", budget_reset_at=past, spend=1.0))
                for _ in range(500):  # then every interval, in the background
                    rec = await store.get_key(hash_key(later))
                    if rec is not None and rec.spend == 0.0:
                        break
                    await asyncio.sleep(0.01)
                assert rec is not None and rec.spend == 0.0 and rec.budget_reset_at == past + timedelta(hours=2)
            finally:
                await resets.stop()

    asyncio.run(main())
