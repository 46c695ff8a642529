"""A client that hangs up while a whole (non-stream) answer is still being made upstream: the upstream call is
cancelled, and the request is recorded and charged for the prompt the provider read, marked estimated.

The provider never says its usage (its answer never came), so the prompt is counted locally, as the
stream path and the reservation count it. On the fast path (an OpenAI client and upstream, bytes relayed)
and the full path (re-encoded between dialects).
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from gateway_harness import ServedGateway, chat_request, raw_post
from money_harness import served
from multi_harness import key_info, poll, price, priced_config, wait_logged

from llmswitch import ir
from llmswitch.server.accounting import estimate_prompt_tokens
from llmswitch.testing import FakeUpstream, Reply

PROMPT = "summarise the history of the lighthouse keepers of the northern coast " * 30
ROUTES = [("openai", "m-openai"), ("anthropic", "m-openai"), ("openai", "m-anthropic")]
IDS = ["fast-openai", "full-anthropic-to-openai", "full-openai-to-anthropic"]


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    d = tmp_path_factory.mktemp("hangup")
    with served(priced_config(upstream, str(d / "keys.db")), d / "journal") as gateway:
        yield gateway


@pytest.mark.parametrize(("face", "group"), ROUTES, ids=IDS)
def test_a_hang_up_during_a_whole_answer_charges_the_prompt_estimated(
    gw: ServedGateway, up: FakeUpstream, face: str, group: str
) -> None:
    key = gw.new_key(key_alias=f"hangup-{uuid.uuid4().hex[:8]}", max_budget=50.0)
    up.script(Reply(text="a long considered answer", latency=3.0, usage=(500, 50)))
    path, body = chat_request(face, group, PROMPT)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(raw_post(path, body, key))
        poll(lambda: up.requests, timeout=5, what="the upstream call")
        time.sleep(0.2)  # well inside the upstream's 3 s
    # the gateway cancelled its upstream call when the client left, long before the answer was due
    assert up.wait_for_disconnects(1, timeout=2.5), "the upstream call was not cancelled"
    [row] = wait_logged(gw.port, key, 1, timeout=5)
    assert time.monotonic() - started < 3.0
    assert row["status"] == 499 and row["stream"] is False and row["error_class"] is not None, row
    assert row["estimated"] is True, row
    prompt = estimate_prompt_tokens(
        ir.Request(model=group, messages=[ir.Message(role="user", content=[ir.TextPart(text=PROMPT)])])
    )
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, 0), row
    assert row["spend"] > 0
    assert row["spend"] == pytest.approx(price(group, ir.Usage(input_tokens=prompt)), rel=1e-9)
    # the key is charged it too
    assert key_info(gw.port, key)["spend"] == pytest.approx(row["spend"], rel=1e-9)
