"""What a budget reserves before the call bounds what concurrent requests can spend past it.

A budget admits while ``spent + reserved < max_budget``, so the overshoot is at most one request's
reservation (docs/spend.md), as long as each reservation bounds its request's cost: for a model with no
known maximum output and a client that sends no ``max_tokens`` (the default output bound), and for a
request that falls back to a dearer model group (the dearest deployment it may reach).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from gateway_harness import ServedGateway
from money_harness import served
from multi_harness import fire_together, priced_config

from llmswitch.server.pricing import DEFAULT_MAX_OUTPUT_TOKENS
from llmswitch.testing import FakeUpstream, Reply

# per-token prices written in the config, for models the price table does not know: no maximum output
HOUSE_IN, HOUSE_OUT = 1e-6, 4e-6
CHEAP_IN, CHEAP_OUT = 1e-8, 1e-8
DEAR_IN, DEAR_OUT = 2e-6, 1e-5


def _row(group: str, model: str, base: str, inp: float, out: float) -> str:
    return f"""  - model_name: {group}
    litellm_params:
      model: openai/{model}
      api_base: "{base}"
      api_key: sk-up-openai-2c91
      input_cost_per_token: {inp}
      output_cost_per_token: {out}
"""


def reservation_config(up: FakeUpstream, store: str) -> str:
    rows = (
        _row("m-house", "house-model", up.openai_base, HOUSE_IN, HOUSE_OUT)
        + _row("m-cheap", "cheap-model", up.openai_base, CHEAP_IN, CHEAP_OUT)
        + _row("m-dear", "dear-model", up.openai_base, DEAR_IN, DEAR_OUT)
    )
    text = priced_config(up, store).replace("model_list:\n", "model_list:\n" + rows, 1)
    return text + '  fallbacks: [{"m-cheap": ["m-dear"]}]\n'


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    d = tmp_path_factory.mktemp("reserve")
    with served(reservation_config(upstream, str(d / "keys.db")), d / "journal") as gateway:
        yield gateway


def _ask(gw: ServedGateway, key: str, model: str, **extra: Any) -> tuple[int, float]:
    """(status, cost charged) of one chat request through the openai SDK."""
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0) as client:
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "hello"}], **extra
            )
        except openai.APIStatusError as exc:
            return exc.status_code, 0.0
        return raw.status_code, float(raw.headers["x-llmswitch-cost"])


def test_concurrent_requests_without_max_tokens_overshoot_a_budget_by_one_reservation_at_most(
    gw: ServedGateway, up: FakeUpstream
) -> None:
    budget = 0.01
    key = gw.new_key(max_budget=budget, key_alias=f"default-bound-{uuid.uuid4().hex[:8]}")
    # each answer costs 100 x $1/M + 1,000 x $4/M = $0.0041, and takes long enough for all to overlap
    up.script(*[Reply(usage=(100, 1000), latency=0.3)] * 30)
    results = fire_together([lambda: _ask(gw, key, "m-house") for _ in range(30)])
    spent = sum(cost for status, cost in results if status == 200)
    assert all(status in (200, 400) for status, _ in results), results
    # the reservation of one request: its prompt (a few tokens) and the default output bound
    one_reservation = 10 * HOUSE_IN + DEFAULT_MAX_OUTPUT_TOKENS * HOUSE_OUT
    assert 0 < spent <= budget + one_reservation, (spent, results)


def test_a_request_that_may_fall_back_to_a_dearer_group_reserves_for_it(gw: ServedGateway, up: FakeUpstream) -> None:
    budget = 0.01
    key = gw.new_key(max_budget=budget, key_alias=f"fallback-{uuid.uuid4().hex[:8]}")

    def answer(rec: Any) -> Reply:
        # the cheap group is down: every request is served by the dear one, after a while
        if rec.model == "cheap-model":
            return Reply(status=500, message="down")
        return Reply(usage=(100, 800), latency=0.3)

    up.responder = answer
    # $0.0082 each when served by the dear group; the cheap one would reserve about $0.00001
    results = fire_together([lambda: _ask(gw, key, "m-cheap", max_tokens=1000) for _ in range(10)])
    spent = sum(cost for status, cost in results if status == 200)
    assert all(status in (200, 400) for status, _ in results), results
    one_reservation = 10 * DEAR_IN + 1000 * DEAR_OUT
    assert 0 < spent <= budget + one_reservation, (spent, results)
