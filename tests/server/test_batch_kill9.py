"""A gateway-run batch survives ``kill -9``: two ``llmswitch serve`` processes on one PostgreSQL share its
lines; one is killed mid-batch and started again; the output file has every line exactly once.

The fake upstream is slow (each answer takes a while), so the killed process has lines in flight: those
are the only ones that may reach the upstream twice (the new owner of their lease asks again). The test
prints how many did.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import openai
from multi_harness import GatewayProcess, poll, priced_config, spend_logs

from llmswitch.testing import FakeUpstream, Reply

LINES = 400
CONCURRENCY = 6


def _jsonl(n: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": f"line-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "m-openai", "messages": [{"role": "user", "content": f"question {i}"}]},
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


def test_kill9_mid_batch_loses_no_line_and_writes_each_once(
    upstream: FakeUpstream, postgres_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(priced_config(upstream, postgres_url))
    env = {
        "LLMSWITCH_JOURNAL_DIR": str(tmp_path / "journal"),
        "LLMSWITCH_BATCH_CONCURRENCY": str(CONCURRENCY),
        "LLMSWITCH_BATCH_LEASE_SECONDS": "3",
        "LLMSWITCH_BATCH_POLL_SECONDS": "0.2",
        "LLMSWITCH_BATCH_NATIVE": "off",  # run by the gateway: its instances share the lines
    }
    upstream.reset()
    upstream.default = Reply(latency=0.25)
    first = GatewayProcess(config, tmp_path / "first.log", env).wait_ready()
    second: GatewayProcess | None = None
    again: GatewayProcess | None = None
    try:
        key = first.new_key(key_alias="batch-kill9")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{first.port}/v1", api_key=key, max_retries=2)
        uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(LINES))), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        # a second instance joins: both claim lines of the same batch
        second = GatewayProcess(config, tmp_path / "second.log", env).wait_ready()
        poll(
            lambda: client.batches.retrieve(batch.id).request_counts.completed >= LINES // 4,
            timeout=120,
            what="a quarter of the lines answered",
        )
        first.kill()  # mid-batch, lines in flight
        killed_at = client_for(second, key).batches.retrieve(batch.id).request_counts.completed
        assert killed_at < LINES
        # started again on the same store: it claims again too
        again = GatewayProcess(config, tmp_path / "again.log", env).wait_ready()
        reader = client_for(again, key)
        done = poll(
            lambda: (b := reader.batches.retrieve(batch.id)).status in ("completed", "failed") and b,
            timeout=300,
            what="the batch to complete",
        )
        assert done.status == "completed", done
        assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (
            LINES,
            LINES,
            0,
        )
        assert done.error_file_id is None
        # the output file, read through either live instance (contents live in the store)
        for instance in (second, again):
            out = [
                json.loads(x) for x in client_for(instance, key).files.content(done.output_file_id).content.splitlines()
            ]
            ids = Counter(o["custom_id"] for o in out)
            assert set(ids) == {f"line-{i}" for i in range(LINES)}
            assert ids.most_common(1)[0][1] == 1
            for o in out:
                answer = o["response"]["body"]["choices"][0]["message"]["content"]
                assert answer == f"question {o['custom_id'].split('-')[1]}"
        asked = Counter(r.json["messages"][0]["content"] for r in upstream.calls_for("/chat/completions"))
        twice = sum(1 for n in asked.values() if n > 1)
        print(
            f"kill -9 mid-batch: {killed_at} of {LINES} lines written at the kill; {twice} lines asked upstream twice"
        )
        assert set(asked) == {f"question {i}" for i in range(LINES)}
        # only what the killed process had in flight (CONCURRENCY lines), or had answered during its last
        # write to the store (whose slots new lines then took), can have been asked again
        assert twice <= 2 * CONCURRENCY
        # each line is one spend record, whichever instance answered it
        rows: list[dict[str, Any]] = []

        def all_logged() -> bool:
            rows[:] = [r for r in spend_logs(again.port, key) if str(r["request_id"]).startswith(batch.id)]
            return len(rows) >= LINES

        poll(all_logged, timeout=60, what="a spend record per line")
        assert len({r["request_id"] for r in rows}) == LINES == len(rows)
    finally:
        upstream.default = Reply()
        for proc in (first, second, again):
            if proc is not None:
                proc.stop()


def client_for(proc: GatewayProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"http://127.0.0.1:{proc.port}/v1", api_key=key, max_retries=2)
