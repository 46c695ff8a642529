"""A key's budget through the gateway, counted exactly: Redis shared limits, the embedded SQLite store, the
official OpenAI SDK as the client, and the fake upstream scripted with each answer's usage."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from gateway_harness import ServedGateway
from multi_harness import price, priced_config

from llmswitch import ir
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
