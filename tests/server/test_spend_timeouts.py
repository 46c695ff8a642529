"""An attempt that timed out after it was sent is recorded once, as work the provider may bill.

The upstream read the prompt of a call that timed out at the gateway; the retry (or the client's error)
follows. Each timed-out attempt gets a spend record of its own (``<request id>~t<attempt>``, status 408,
the prompt estimated, marked ``estimated``) beside the request's own record, and its cost is charged to
the key with the answer's. Through the fast path, the full path and a stream that timed out before its
first byte.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from gateway_harness import Closing, ServedGateway
from money_harness import served
from multi_harness import key_info, price, priced_config, spend_logs, wait_logged

from llmswitch import ir
from llmswitch.server.accounting import estimate_prompt_tokens
from llmswitch.testing import FakeUpstream, Reply

PROMPT = "list the lighthouses of the northern coast with the years they were first lit " * 20
SLOW, FAST = 3.0, 0.0


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    d = tmp_path_factory.mktemp("timeouts")
    config = priced_config(upstream, str(d / "keys.db"))
    # each attempt may take 0.6 s, and one retry follows a timeout
    config = config.replace("      api_key:", "      timeout: 0.6\n      stream_timeout: 0.6\n      api_key:")
    config = config.replace("num_retries: 0", "num_retries: 1")
    with served(config, d / "journal") as gateway:
        yield gateway


def prompt_tokens(group: str) -> int:
    msg = ir.Message(role="user", content=[ir.TextPart(text=PROMPT)])
    return estimate_prompt_tokens(ir.Request(model=group, messages=[msg]))


def client(closing: Closing, gw: ServedGateway, key: str) -> openai.OpenAI:
    return closing(openai.OpenAI(base_url=f"http://127.0.0.1:{gw.port}/v1", api_key=key, max_retries=0, timeout=15))


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["request_id"]: r for r in rows}


@pytest.mark.parametrize("group", ["m-openai", "m-anthropic"], ids=["fast-path", "full-path"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_timed_out_attempt_then_an_answer_is_recorded_once_beside_the_answer(
    gw: ServedGateway, up: FakeUpstream, group: str, stream: bool, closing: Closing
) -> None:
    key = gw.new_key(key_alias=f"timeout-{uuid.uuid4().hex[:8]}", max_budget=50.0)
    up.script(Reply(text="too late", latency=SLOW, usage=(500, 5)), Reply(text="on time", usage=(400, 7)))
    c = client(closing, gw, key)
    messages: Any = [{"role": "user", "content": PROMPT}]
    if stream:
        raw = c.chat.completions.with_raw_response.create(model=group, messages=messages, stream=True)
        rid = raw.headers["x-llmswitch-request-id"]
        assert raw.headers["x-llmswitch-attempts"] == "2"
        text = "".join(ch.choices[0].delta.content or "" for ch in raw.parse() if ch.choices)
    else:
        raw = c.chat.completions.with_raw_response.create(model=group, messages=messages)
        rid = raw.headers["x-llmswitch-request-id"]
        assert raw.headers["x-llmswitch-attempts"] == "2"
        text = raw.parse().choices[0].message.content or ""
    assert text == "on time"
    rows = by_id(wait_logged(gw.port, key, 2, timeout=5))
    assert set(rows) == {rid, f"{rid}~t1"}, rows
    answer, lost = rows[rid], rows[f"{rid}~t1"]
    assert answer["status"] == 200 and answer["estimated"] is False
    assert (answer["prompt_tokens"], answer["completion_tokens"]) == (400, 7)
    tokens = prompt_tokens(group)
    assert lost["status"] == 408 and lost["estimated"] is True and lost["error_class"] == "APITimeoutError", lost
    assert (lost["prompt_tokens"], lost["completion_tokens"]) == (tokens, 0), lost
    assert lost["model_group"] == group and lost["stream"] is stream
    assert lost["spend"] == pytest.approx(price(group, ir.Usage(input_tokens=tokens)), rel=1e-9)
    # the key pays for both calls the provider worked on
    expected = answer["spend"] + lost["spend"]
    assert key_info(gw.port, key)["spend"] == pytest.approx(expected, rel=1e-9)


def test_every_timed_out_attempt_of_a_failed_request_is_recorded_once(
    gw: ServedGateway, up: FakeUpstream, closing: Closing
) -> None:
    key = gw.new_key(key_alias=f"timeout-{uuid.uuid4().hex[:8]}", max_budget=50.0)
    up.script(Reply(text="late", latency=SLOW, usage=(500, 5)), Reply(text="later", latency=SLOW, usage=(500, 5)))
    c = client(closing, gw, key)
    with pytest.raises(openai.APIStatusError) as failed:
        c.chat.completions.create(model="m-openai", messages=[{"role": "user", "content": PROMPT}])
    assert "timed out" in str(failed.value), failed.value
    rid = failed.value.response.headers["x-llmswitch-request-id"]
    rows = by_id(wait_logged(gw.port, key, 3, timeout=5))
    assert set(rows) == {rid, f"{rid}~t1", f"{rid}~t2"}, rows
    # the request's own record says how it ended and charges nothing itself: the attempts carry the cost
    assert rows[rid]["status"] == failed.value.status_code and not rows[rid]["spend"]
    tokens = prompt_tokens("m-openai")
    for n in (1, 2):
        lost = rows[f"{rid}~t{n}"]
        assert (lost["status"], lost["prompt_tokens"], lost["estimated"]) == (408, tokens, True), lost
    total = sum(r["spend"] or 0 for r in rows.values())
    assert total == pytest.approx(2 * price("m-openai", ir.Usage(input_tokens=tokens)), rel=1e-9)
    assert key_info(gw.port, key)["spend"] == pytest.approx(total, rel=1e-9)
    # and nothing more arrives later (each attempt once)
    assert len(spend_logs(gw.port, key)) == 3


def test_an_answer_without_a_timeout_has_one_record(gw: ServedGateway, up: FakeUpstream, closing: Closing) -> None:
    key = gw.new_key(key_alias=f"timeout-{uuid.uuid4().hex[:8]}", max_budget=50.0)
    up.script(Reply(text="quick", usage=(10, 2)))
    client(closing, gw, key).chat.completions.create(model="m-openai", messages=[{"role": "user", "content": "hi"}])
    [row] = wait_logged(gw.port, key, 1, timeout=5)
    assert "~t" not in row["request_id"] and row["status"] == 200
