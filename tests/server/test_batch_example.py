"""examples/batch.yaml, run as written: ``llmswitch serve`` with the environment it names, in front of the
fake upstream, and the seed's batch flow with the official openai SDK on both model groups, plus the
anthropic SDK's message batches."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import anthropic
import openai
from gateway_harness import served_example
from multi_harness import poll

from llmswitch.testing import FakeUpstream

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "batch.yaml"
MASTER = "sk-admin-batch-example-0b7d"


def _seed_flow(client: openai.OpenAI, model: str, n: int) -> list[dict[str, Any]]:
    """The seed's batch section: a JSONL file, files.create, batches.create, poll, files.content."""
    lines = [
        {
            "custom_id": f"task-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": f"Summarize #{i}"}]},
        }
        for i in range(n)
    ]
    jsonl = "\n".join(json.dumps(line) for line in lines).encode()
    batch_file = client.files.create(file=io.BytesIO(jsonl), purpose="batch")
    batch = client.batches.create(input_file_id=batch_file.id, endpoint="/v1/chat/completions", completion_window="24h")
    while (batch := client.batches.retrieve(batch.id)).status not in ("completed", "failed", "expired", "cancelled"):
        time.sleep(0.2)
    assert batch.status == "completed", batch
    assert batch.request_counts is not None and batch.request_counts.completed == n
    assert batch.output_file_id is not None
    content = client.files.content(batch.output_file_id).text
    return [json.loads(line) for line in content.splitlines()]


def test_the_example_runs_as_written(tmp_path: Path) -> None:
    with FakeUpstream() as up:
        env = {
            "UPSTREAM_API_BASE": up.openai_base,
            "UPSTREAM_API_KEY": "sk-upstream-example",
            "ANTHROPIC_UPSTREAM_BASE": up.anthropic_base,
            "ANTHROPIC_API_KEY": "sk-ant-example",
            "LLMSWITCH_MASTER_KEY": MASTER,
            "LLMSWITCH_BATCH_POLL_SECONDS": "0.2",
            "LLMSWITCH_BATCH_NATIVE_POLL_SECONDS": "0.2",
        }
        with served_example(EXAMPLE, tmp_path, env, timeout=30) as port:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=MASTER, max_retries=0)
            for model in ("gpt-4o", "claude"):
                out = _seed_flow(client, model, 5)
                assert sorted(o["custom_id"] for o in out) == [f"task-{i}" for i in range(5)]
                for o in out:
                    body = o["response"]["body"]
                    assert body["object"] == "chat.completion"
                    assert body["choices"][0]["message"]["content"] == f"Summarize #{o['custom_id'][5:]}"
            # gpt-4o's lines went to the OpenAI upstream one by one (batch_mode: gateway); claude's as one
            # native Message Batch, never as single Messages calls
            assert len(up.calls_for("/v1/chat/completions")) == 5
            assert len([r for r in up.requests if r.method == "POST" and r.path == "/v1/messages/batches"]) == 1
            assert not [r for r in up.requests if r.path == "/v1/messages"]
            with anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key=MASTER, max_retries=0) as ac:
                created = ac.messages.batches.create(
                    requests=[
                        {
                            "custom_id": f"m{i}",
                            "params": {
                                "model": "claude",
                                "max_tokens": 50,
                                "messages": [{"role": "user", "content": "hi"}],
                            },
                        }
                        for i in range(3)
                    ]
                )
                poll(
                    lambda: ac.messages.batches.retrieve(created.id).processing_status == "ended",
                    timeout=60,
                    what="the message batch to end",
                )
                results = list(ac.messages.batches.results(created.id))
                assert sorted(r.custom_id for r in results) == ["m0", "m1", "m2"]
                assert all(r.result.type == "succeeded" for r in results)
        assert MASTER not in (tmp_path / "out.log").read_text()
