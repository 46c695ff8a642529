"""Anthropic's Message Batches through the gateway with the official anthropic SDK, on any provider.

The batch's requests are Messages API params; each runs on whatever the model group maps to (here an
OpenAI and a Gemini deployment of the fake upstream) and comes back in Anthropic's result shape.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from gateway_harness import MASTER_KEY, ServedGateway, gateway_config

from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture
def served(upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServedGateway]:
    monkeypatch.setenv("LLMSWITCH_BATCH_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("LLMSWITCH_BATCH_POLL_SECONDS", "0.1")
    monkeypatch.setenv("LLMSWITCH_BATCH_NATIVE", "off")  # run by the gateway (test_batch_native.py: at the provider)
    upstream.reset()
    with ServedGateway(gateway_config(upstream, str(tmp_path / "gw.db"), num_retries=0)) as gw:
        yield gw
    upstream.reset()
    upstream.default = Reply()


def _request(i: int, group: str) -> dict[str, Any]:
    return {
        "custom_id": f"q{i}",
        "params": {"model": group, "max_tokens": 50, "messages": [{"role": "user", "content": f"question {i}"}]},
    }


def _wait_ended(client: anthropic.Anthropic, batch_id: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        assert time.monotonic() < deadline, f"still {batch.processing_status}: {batch}"
        time.sleep(0.1)


@pytest.mark.parametrize("group", ["m-openai", "m-gemini", "m-anthropic"])
def test_message_batches_run_on_any_provider(served: ServedGateway, upstream: FakeUpstream, group: str) -> None:
    with anthropic.Anthropic(base_url=served.url, api_key=MASTER_KEY, max_retries=0) as client:
        created = client.messages.batches.create(requests=[_request(i, group) for i in range(6)])  # type: ignore[misc]
        assert created.type == "message_batch" and created.id.startswith("msgbatch_")
        assert created.processing_status == "in_progress"
        ended = _wait_ended(client, created.id)
        assert ended.request_counts.succeeded == 6 and ended.request_counts.errored == 0
        assert ended.results_url and ended.ended_at is not None
        results = list(client.messages.batches.results(created.id))
        assert sorted(r.custom_id for r in results) == [f"q{i}" for i in range(6)]
        for r in results:
            assert r.result.type == "succeeded"
            message = r.result.message
            assert message.type == "message" and message.role == "assistant"
            assert message.content[0].text == f"question {r.custom_id[1:]}"  # type: ignore[union-attr]
        listed = client.messages.batches.list()
        assert created.id in [b.id for b in listed.data]
    assert len(upstream.requests) == 6


def test_message_batch_errors_cancel_and_validation(served: ServedGateway, upstream: FakeUpstream) -> None:
    with anthropic.Anthropic(base_url=served.url, api_key=MASTER_KEY, max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError) as err:
            client.messages.batches.create(
                requests=[
                    _request(0, "m-openai"),
                    {"custom_id": "bad", "params": {"model": "m-openai", "messages": []}},
                ]  # type: ignore[list-item]
            )
        assert "requests.1.params.max_tokens" in str(err.value)
        upstream.script(Reply(status=400, message="refused upstream"))
        created = client.messages.batches.create(requests=[_request(0, "m-openai")])  # type: ignore[list-item]
        ended = _wait_ended(client, created.id)
        assert ended.request_counts.errored == 1
        (result,) = list(client.messages.batches.results(created.id))
        assert result.result.type == "errored"
        assert "refused upstream" in result.result.error.error.message  # type: ignore[union-attr]

        upstream.default = Reply(latency=0.3)
        created = client.messages.batches.create(requests=[_request(i, "m-openai") for i in range(200)])  # type: ignore[misc]
        time.sleep(0.5)
        cancelling = client.messages.batches.cancel(created.id)
        assert cancelling.processing_status in ("canceling", "ended")
        ended = _wait_ended(client, created.id)
        counts = ended.request_counts
        assert counts.canceled > 0 and counts.succeeded > 0 and counts.succeeded + counts.canceled == 200
        types = [r.result.type for r in client.messages.batches.results(created.id)]
        assert types.count("canceled") == counts.canceled and len(types) == 200
