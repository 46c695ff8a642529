"""The seed's batch flow through the gateway (official openai SDK) on deployments whose provider has a batch
API: the gateway sends one native job (OpenAI Files + Batch, Anthropic Message Batches, Gemini
batchGenerateContent) to the fake upstream, tracks it, and writes the output file from its results,
each line priced at the provider's batch rates."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from gateway_harness import Closing, ServedGateway, gateway_config
from multi_harness import poll, spend_logs

from llmswitch import ir
from llmswitch.cost import cost_of, price_for
from llmswitch.testing import FakeUpstream, Reply

NATIVE_PATHS = {"m-openai": "/v1/batches", "m-anthropic": "/v1/messages/batches", "m-gemini": ":batchGenerateContent"}
LINE_PATHS = {"m-openai": "/v1/chat/completions", "m-anthropic": "/v1/messages", "m-gemini": ":generateContent"}
MODELS = {"m-openai": ("openai", "gpt-4o-mini"), "m-anthropic": ("anthropic", "claude-sonnet-4-20250514"),
          "m-gemini": ("gemini", "gemini-2.5-flash")}  # fmt: skip


@pytest.fixture
def served(upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServedGateway]:
    monkeypatch.setenv("LLMSWITCH_BATCH_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("LLMSWITCH_BATCH_POLL_SECONDS", "0.1")
    monkeypatch.setenv("LLMSWITCH_BATCH_NATIVE_POLL_SECONDS", "0.1")
    upstream.reset()
    upstream.batches.polls_to_finish = 2
    with ServedGateway(gateway_config(upstream, str(tmp_path / "gw.db"), num_retries=0)) as gw:
        yield gw
    upstream.reset()
    upstream.default = Reply()
    upstream.batches.polls_to_finish = 1


def _upload(client: openai.OpenAI, group: str, n: int) -> str:
    lines = [
        {
            "custom_id": f"c{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": group, "max_tokens": 40, "messages": [{"role": "user", "content": f"ask {i}"}]},
        }
        for i in range(n)
    ]
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    return client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch").id


def _done(client: openai.OpenAI, batch_id: str) -> Any:
    return poll(
        lambda: (
            (b := client.batches.retrieve(batch_id)).status in ("completed", "failed", "expired", "cancelled") and b
        ),
        timeout=60,
        what="the batch to end",
    )


@pytest.mark.parametrize("group", ["m-openai", "m-anthropic", "m-gemini"])
def test_a_batch_runs_at_the_provider_and_is_priced_at_batch_rates(
    served: ServedGateway, upstream: FakeUpstream, closing: Closing, group: str
) -> None:
    upstream.default = Reply(usage=(1000, 50))
    key = served.new_key(max_budget=10.0)
    client = closing(openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0))
    batch = client.batches.create(
        input_file_id=_upload(client, group, 8),
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": "native"},
    )
    done = _done(client, batch.id)
    assert done.status == "completed", done
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (8, 8, 0)
    out = [json.loads(x) for x in client.files.content(done.output_file_id).content.splitlines()]
    assert sorted(o["custom_id"] for o in out) == [f"c{i}" for i in range(8)]
    for o in out:
        body = o["response"]["body"]
        assert o["response"]["status_code"] == 200 and body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"] == f"ask {o['custom_id'][1:]}"
    # one native job, no line sent on its own
    assert upstream.calls_for(NATIVE_PATHS[group])
    assert not [r for r in upstream.requests if r.path.endswith(LINE_PATHS[group])]
    provider, model = MODELS[group]
    price = price_for(model, provider)
    assert price is not None
    rows: list[dict[str, Any]] = []

    def logged() -> bool:
        rows[:] = [r for r in spend_logs(served.port, key) if str(r["request_id"]).startswith(batch.id)]
        return len(rows) == 8

    poll(logged, timeout=20, what="8 spend records")
    for row in rows:
        usage = ir.Usage(input_tokens=row["prompt_tokens"], output_tokens=row["completion_tokens"])
        assert usage.input_tokens > 0
        assert row["spend"] == pytest.approx(cost_of(usage, price, batch=True))


def test_a_line_the_provider_rejects_and_a_cancelled_native_batch(
    served: ServedGateway, upstream: FakeUpstream, closing: Closing
) -> None:
    client = closing(openai.OpenAI(base_url=served.url + "/v1", api_key="sk-master-test-7c1e9a", max_retries=0))
    upstream.script(Reply(status=400, message="no such thing"))
    batch = client.batches.create(
        input_file_id=_upload(client, "m-anthropic", 3), endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = _done(client, batch.id)
    assert done.status == "completed" and done.request_counts.completed == 2 and done.request_counts.failed == 1
    (err,) = [json.loads(x) for x in client.files.content(done.error_file_id).content.splitlines()]
    assert err["response"]["status_code"] == 400 and "no such thing" in err["response"]["body"]["error"]["message"]

    upstream.batches.polls_to_finish = 1000
    batch = client.batches.create(
        input_file_id=_upload(client, "m-openai", 4), endpoint="/v1/chat/completions", completion_window="24h"
    )
    time.sleep(0.3)
    assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
    done = _done(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at
    errors = [json.loads(x) for x in client.files.content(done.error_file_id).content.splitlines()]
    assert len(errors) == 4 and {e["error"]["code"] for e in errors} == {"batch_cancelled"}
