"""A stream that ends before its usage event is charged for what it used, and its record says it was estimated.

The endings: the upstream cuts the connection (the fake's ``cut_after``), the client hangs up mid-stream, and
the gateway shuts down with the stream still running. Each on the fast path (an OpenAI client and an OpenAI
upstream, bytes relayed) and the full path (re-encoded between dialects), for OpenAI and Anthropic clients.
The prompt is counted locally when the provider has not said (as the reservation counts it), the output
from the text relayed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import ServedGateway, chat_request, raw_post
from money_harness import served
from multi_harness import PRICED, price, priced_config, wait_logged

from llmswitch import ir
from llmswitch.server.accounting import estimate_prompt_tokens, tokens_of_chars
from llmswitch.store import open_store
from llmswitch.testing import FakeUpstream, Reply

PROMPT = "tell me a story about " + "the sea and the ships on it " * 40
ANSWER = "Once upon a time there was a sailor who loved the sea. " * 20
# (client dialect, group): which path the answer takes
ROUTES = [
    ("openai", "m-openai"),  # fast path
    ("openai", "m-anthropic"),  # full path, Anthropic upstream (it reports the prompt's tokens at the start)
    ("anthropic", "m-openai"),  # full path, OpenAI upstream (it reports nothing before the end)
    ("anthropic", "m-anthropic"),
]
IDS = ["fast-openai", "full-openai-to-anthropic", "full-anthropic-to-openai", "full-anthropic"]


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    d = tmp_path_factory.mktemp("streams")
    with served(priced_config(upstream, str(d / "keys.db")), d / "journal") as gateway:
        yield gateway


def local_prompt_estimate() -> int:
    return estimate_prompt_tokens(
        ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart(text=PROMPT)])])
    )


def streamed_text(face: str, body: bytes) -> str:
    """The answer text in a client-dialect SSE body (whatever of it arrived)."""
    out = []
    for block in body.decode(errors="replace").split("\n\n"):
        for line in block.splitlines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            try:
                event = json.loads(line[6:])
            except json.JSONDecodeError:
                continue  # cut short
            if face == "openai":
                for choice in event.get("choices") or []:
                    out.append((choice.get("delta") or {}).get("content") or "")
            elif event.get("type") == "content_block_delta":
                out.append(event["delta"].get("text", ""))
    return "".join(out)


def check_estimated(row: dict[str, Any], group: str, upstream_prompt: int | None, delivered: tuple[int, int]) -> None:
    """``row`` charges the prompt (the upstream's count if it gave one, else the local estimate) and the
    output relayed (between ``delivered`` characters, as the client saw them and the whole answer)."""
    assert row["estimated"] is True, row
    provider = PRICED[group][0]
    if provider == "openai":
        assert row["prompt_tokens"] == local_prompt_estimate(), row
    else:
        assert row["prompt_tokens"] == upstream_prompt, row
    low, high = delivered
    assert tokens_of_chars(low) <= row["completion_tokens"] <= tokens_of_chars(high), (row, delivered)
    assert row["completion_tokens"] > 0
    usage = ir.Usage(input_tokens=row["prompt_tokens"], output_tokens=row["completion_tokens"])
    assert row["spend"] == pytest.approx(price(group, usage), rel=1e-9)
    assert row["spend"] > 0


# what the fake upstream reports when the answer is whole; an Anthropic upstream says the prompt's part at
# the start (message_start), the output's at the end
UPSTREAM_USAGE = (777, 999)


@pytest.mark.parametrize(("face", "group"), ROUTES, ids=IDS)
def test_an_upstream_cut_is_charged_for_the_prompt_and_the_text_relayed(
    gw: ServedGateway, up: FakeUpstream, face: str, group: str
) -> None:
    key = gw.new_key(key_alias=f"cut-{uuid.uuid4().hex[:8]}")
    up.script(Reply(text=ANSWER, chunk_size=8, cut_after=12, usage=UPSTREAM_USAGE))
    path, body = chat_request(face, group, PROMPT, stream=True)
    r = gw.call("POST", path, body, key=key)
    assert r.status == 200 and b"error" in r.body.split(b"\n\n")[-2], r.body[-300:]
    text = streamed_text(face, r.body)
    assert 0 < len(text) < len(ANSWER)
    [row] = wait_logged(gw.port, key, 1)
    assert row["status"] >= 500 and row["stream"] is True
    check_estimated(row, group, UPSTREAM_USAGE[0], (len(text), len(text)))


def _hang_up_after(port: int, path: str, body: dict[str, Any], key: str, *, events: int) -> bytes:
    """Send a streaming request, read until ``events`` stream events have arrived, and close the socket."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw_post(path, body, key))
        while got.count(b"data: ") < events:
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
    return got


@pytest.mark.parametrize(("face", "group"), ROUTES, ids=IDS)
def test_a_client_hang_up_mid_stream_is_recorded_and_charged_for_what_was_used(
    gw: ServedGateway, up: FakeUpstream, face: str, group: str
) -> None:
    key = gw.new_key(key_alias=f"hangup-{uuid.uuid4().hex[:8]}")
    up.script(Reply(text=ANSWER, chunk_size=8, chunk_delay=0.02, usage=UPSTREAM_USAGE))
    path, body = chat_request(face, group, PROMPT, stream=True)
    got = _hang_up_after(gw.port, path, body, key, events=8)
    seen = streamed_text(face, got.split(b"\r\n\r\n", 1)[1])
    [row] = wait_logged(gw.port, key, 1, timeout=10)
    assert row["status"] == 499 and row["stream"] is True and row["error_class"] is not None
    check_estimated(row, group, UPSTREAM_USAGE[0], (len(seen), len(ANSWER) - 1))


@pytest.mark.parametrize(("face", "group"), [ROUTES[0], ROUTES[3]], ids=[IDS[0], IDS[3]])
def test_a_stream_cancelled_by_shutdown_is_recorded_and_charged(
    up: FakeUpstream, tmp_path: Path, face: str, group: str
) -> None:
    db = tmp_path / "keys.db"
    with served(priced_config(up, str(db)), tmp_path / "journal") as gw:
        gw.server.graceful_timeout = 0.2  # then the requests still running are cancelled
        key = gw.new_key(key_alias="shutdown")
        up.script(Reply(text=ANSWER * 4, chunk_size=8, chunk_delay=0.02, usage=UPSTREAM_USAGE))
        path, body = chat_request(face, group, PROMPT, stream=True)
        data = json.dumps(body).encode()
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        s.sendall(
            f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer {key}\r\n"
            f"x-api-key: {key}\r\ncontent-length: {len(data)}\r\n\r\n".encode()
            + data
        )
        got = b""
        while got.count(b"data: ") < 5:
            got += s.recv(65536)
        gw.server.should_exit = True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
    seen = streamed_text(face, got.split(b"\r\n\r\n", 1)[1])

    async def stored() -> list[Any]:
        store = open_store(f"sqlite:///{db}")
        await store.open()
        try:
            return list(await store.list_spend_logs(limit=10))
        finally:
            await store.close()

    rows = [r for r in asyncio.run(stored()) if r.stream]
    assert len(rows) == 1, rows
    [rec] = rows
    assert rec.estimated and rec.status in (499, 500) and rec.cost is not None and rec.cost > 0
    row = {
        "estimated": rec.estimated,
        "prompt_tokens": rec.input_tokens,
        "completion_tokens": rec.output_tokens,
        "spend": rec.cost,
    }
    check_estimated(row, group, UPSTREAM_USAGE[0], (len(seen), len(ANSWER) * 4 - 1))


def _openai_event(content: str) -> bytes:
    chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": content}}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def test_the_fast_paths_text_count_reads_its_sample_and_scales_it_to_what_was_relayed() -> None:
    from llmswitch.server.fastpath import relayed_chars

    events = [_openai_event("abcd" * 5) for _ in range(10)]
    tool = {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": '{"a":1}'}}]}}
    events.append(b"data: " + json.dumps({"choices": [tool]}).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    whole = b"".join(events)
    assert relayed_chars([whole], len(whole)) == 10 * 20 + 1 + 7
    # a sample of the first half, of a stream twice as long: scaled, rounded up
    half = b"".join(events[:5])
    assert relayed_chars([half], 2 * len(half)) == 200
    assert relayed_chars([], 0) == 0
    assert relayed_chars([b"data: {not json"], 15) == 0
