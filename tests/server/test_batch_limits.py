"""Budgets, model permissions, the completion window and restarts for gateway-run batches (SQLite store)."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from gateway_harness import MASTER_KEY, Closing, ServedGateway, gateway_config
from multi_harness import GatewayProcess, key_info, poll, priced_config

from llmswitch import ir
from llmswitch.cost import cost_of, price_for
from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture
def served(upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServedGateway]:
    monkeypatch.setenv("LLMSWITCH_BATCH_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("LLMSWITCH_BATCH_POLL_SECONDS", "0.1")
    monkeypatch.setenv("LLMSWITCH_BATCH_NATIVE", "off")  # run by the gateway (test_batch_native.py: at the provider)
    monkeypatch.setenv("LLMSWITCH_BATCH_CONCURRENCY", "1")  # one line at a time: a budget's overshoot is one line
    upstream.reset()
    with ServedGateway(gateway_config(upstream, str(tmp_path / "gw.db"), num_retries=0)) as gw:
        gw.db = tmp_path / "gw.db"  # type: ignore[attr-defined]
        yield gw
    upstream.reset()
    upstream.default = Reply()


def _upload(client: openai.OpenAI, n: int, group: str = "m-openai", max_tokens: int = 20) -> str:
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": group, "messages": [{"role": "user", "content": f"q{i}"}], "max_tokens": max_tokens},
        }
        for i in range(n)
    ]
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    return client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch").id


def _wait(client: openai.OpenAI, batch_id: str, timeout: float = 60) -> Any:
    return poll(
        lambda: (
            (b := client.batches.retrieve(batch_id)).status in ("completed", "expired", "cancelled", "failed") and b
        ),
        timeout=timeout,
        what=f"batch {batch_id} to end",
    )


def test_a_batch_whose_estimate_does_not_fit_the_budget_is_refused(served: ServedGateway, closing: Closing) -> None:
    key = served.new_key(max_budget=0.0001)
    client = closing(openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0))
    file_id = _upload(client, 50, max_tokens=4000)
    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert "budget" in str(err.value) and "batch prices" in str(err.value)
    assert client.batches.list().data == []


def test_lines_are_admitted_one_by_one_so_the_budget_holds(
    served: ServedGateway, upstream: FakeUpstream, closing: Closing
) -> None:
    # each answer is far dearer than the batch's estimate: the budget runs out after a few lines
    upstream.default = Reply(usage=(1_000_000, 100))
    price = price_for("gpt-4o-mini", "openai")
    assert price is not None
    line_cost = cost_of(ir.Usage(input_tokens=1_000_000, output_tokens=100), price, batch=True)
    budget = 2.5 * line_cost
    key = served.new_key(max_budget=budget)
    client = closing(openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0))
    batch = client.batches.create(
        input_file_id=_upload(client, 10), endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = _wait(client, batch.id)
    assert done.status == "completed"
    answered = done.request_counts.completed
    assert 3 <= answered <= 4 and done.request_counts.failed == 10 - answered
    errors = [json.loads(x) for x in client.files.content(done.error_file_id).content.splitlines()]
    assert all("budget" in e["response"]["body"]["error"]["message"] for e in errors)
    # the key is charged each answered line at the batch price: over its budget by at most one line
    spend = poll(lambda: key_info(served.port, key)["spend"] or None, timeout=20, what="the key's spend")
    assert spend == pytest.approx(answered * line_cost, rel=1e-6)
    assert spend <= budget + line_cost
    assert len(upstream.calls_for("/chat/completions")) == answered


def test_a_key_cannot_batch_a_model_it_may_not_use(served: ServedGateway, closing: Closing) -> None:
    key = served.new_key(models=["m-anthropic"])
    client = closing(openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0))
    file_id = _upload(client, 2, group="m-openai")
    with pytest.raises(openai.PermissionDeniedError) as err:
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert "m-openai" in str(err.value)
    other = _upload(client, 2, group="no-such-group")
    with pytest.raises(openai.APIStatusError) as err2:
        client.batches.create(input_file_id=other, endpoint="/v1/chat/completions", completion_window="24h")
    assert err2.value.status_code in (400, 403)


def test_a_batch_past_its_completion_window_expires(
    served: ServedGateway, upstream: FakeUpstream, closing: Closing
) -> None:
    upstream.default = Reply(latency=0.3)
    client = closing(openai.OpenAI(base_url=served.url + "/v1", api_key=MASTER_KEY, max_retries=0))
    batch = client.batches.create(
        input_file_id=_upload(client, 100), endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.expires_at == batch.created_at + 24 * 3600
    poll(lambda: client.batches.retrieve(batch.id).request_counts.completed >= 1, timeout=30, what="a first answer")
    with sqlite3.connect(served.db) as db:  # type: ignore[attr-defined]
        db.execute("UPDATE llmswitch_batches SET expires_at = ? WHERE id = ?", (int(time.time()) - 1, batch.id))
    done = _wait(client, batch.id)
    assert done.status == "expired" and done.expired_at is not None
    answered = done.request_counts.completed
    assert 1 <= answered < 100
    errors = [json.loads(x) for x in client.files.content(done.error_file_id).content.splitlines()]
    assert {e["error"]["code"] for e in errors} == {"batch_expired"} and len(errors) == 100 - answered


def test_a_killed_sqlite_gateway_resumes_its_batch_on_restart(upstream: FakeUpstream, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(priced_config(upstream, str(tmp_path / "gw.db")))
    env = {
        "LLMSWITCH_JOURNAL_DIR": str(tmp_path / "journal"),
        "LLMSWITCH_BATCH_FILES_DIR": str(tmp_path / "files"),
        "LLMSWITCH_BATCH_CONCURRENCY": "4",
        "LLMSWITCH_BATCH_LEASE_SECONDS": "2",
        "LLMSWITCH_BATCH_POLL_SECONDS": "0.2",
        "LLMSWITCH_BATCH_NATIVE": "off",
    }
    upstream.reset()
    upstream.default = Reply(latency=0.1)
    first = GatewayProcess(config, tmp_path / "first.log", env).wait_ready()
    again: GatewayProcess | None = None
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{first.port}/v1", api_key=MASTER_KEY, max_retries=2)
        batch = client.batches.create(
            input_file_id=_upload(client, 80), endpoint="/v1/chat/completions", completion_window="24h"
        )
        poll(lambda: client.batches.retrieve(batch.id).request_counts.completed >= 20, timeout=60, what="20 lines")
        first.kill()
        again = GatewayProcess(config, tmp_path / "again.log", env).wait_ready()
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{again.port}/v1", api_key=MASTER_KEY, max_retries=2)
        done = _wait(client, batch.id, timeout=120)
        assert done.status == "completed" and done.request_counts.completed == 80
        out = [json.loads(x) for x in client.files.content(done.output_file_id).content.splitlines()]
        assert sorted(o["custom_id"] for o in out) == sorted(f"r{i}" for i in range(80))
    finally:
        upstream.default = Reply()
        first.stop()
        if again is not None:
            again.stop()


def test_gateway_run_lines_can_be_priced_as_the_provider_bills_them(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closing: Closing
) -> None:
    monkeypatch.setenv("LLMSWITCH_BATCH_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("LLMSWITCH_BATCH_POLL_SECONDS", "0.1")
    monkeypatch.setenv("LLMSWITCH_BATCH_NATIVE", "off")
    monkeypatch.setenv("LLMSWITCH_BATCH_GATEWAY_PRICING", "normal")
    upstream.reset()
    upstream.default = Reply(usage=(1000, 100))
    try:
        with ServedGateway(gateway_config(upstream, str(tmp_path / "gw.db"), num_retries=0)) as served:
            key = served.new_key(max_budget=5.0)
            client = closing(openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0))
            batch = client.batches.create(
                input_file_id=_upload(client, 2), endpoint="/v1/chat/completions", completion_window="24h"
            )
            assert _wait(client, batch.id).request_counts.completed == 2
            price = price_for("gpt-4o-mini", "openai")
            assert price is not None
            full = cost_of(ir.Usage(input_tokens=1000, output_tokens=100), price)
            spend = poll(lambda: key_info(served.port, key)["spend"] or None, timeout=20, what="the key's spend")
            assert spend == pytest.approx(2 * full, rel=1e-6)
    finally:
        upstream.default = Reply()


def test_a_stopping_gateway_gives_its_claimed_lines_back(upstream: FakeUpstream, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(priced_config(upstream, str(tmp_path / "gw.db")))
    env = {
        "LLMSWITCH_JOURNAL_DIR": str(tmp_path / "journal"),
        "LLMSWITCH_BATCH_FILES_DIR": str(tmp_path / "files"),
        "LLMSWITCH_BATCH_CONCURRENCY": "8",
        "LLMSWITCH_BATCH_LEASE_SECONDS": "600",  # only a release, never an expiry, can free them in this test
        "LLMSWITCH_BATCH_POLL_SECONDS": "0.2",
        "LLMSWITCH_BATCH_NATIVE": "off",
    }
    upstream.reset()
    upstream.default = Reply(latency=0.5)
    gw = GatewayProcess(config, tmp_path / "gw.log", env).wait_ready()
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{gw.port}/v1", api_key=MASTER_KEY, max_retries=2)
        batch = client.batches.create(
            input_file_id=_upload(client, 100), endpoint="/v1/chat/completions", completion_window="24h"
        )
        poll(lambda: client.batches.retrieve(batch.id).request_counts.completed >= 8, timeout=60, what="8 lines")
    finally:
        gw.stop()  # SIGTERM: a clean stop
        upstream.default = Reply()
    with sqlite3.connect(tmp_path / "gw.db") as db:
        states = dict(
            db.execute(
                "SELECT state, count(*) FROM llmswitch_batch_lines WHERE batch_id = ? GROUP BY state", (batch.id,)
            ).fetchall()
        )
    assert states.get("leased", 0) == 0, states
    assert states.get("pending", 0) > 0 and states.get("done", 0) >= 8


def test_workers_on_one_sqlite_file_share_a_batch_each_line_once(upstream: FakeUpstream, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(priced_config(upstream, str(tmp_path / "gw.db")))
    env = {
        "LLMSWITCH_JOURNAL_DIR": str(tmp_path / "journal"),
        "LLMSWITCH_BATCH_FILES_DIR": str(tmp_path / "files"),
        "LLMSWITCH_BATCH_CONCURRENCY": "4",
        "LLMSWITCH_BATCH_POLL_SECONDS": "0.2",
        "LLMSWITCH_BATCH_NATIVE": "off",
    }
    upstream.reset()
    upstream.default = Reply(latency=0.05)
    gw = GatewayProcess(config, tmp_path / "gw.log", env, "--workers", "2").wait_ready()
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{gw.port}/v1", api_key=MASTER_KEY, max_retries=2)
        batch = client.batches.create(
            input_file_id=_upload(client, 120), endpoint="/v1/chat/completions", completion_window="24h"
        )
        done = _wait(client, batch.id, timeout=120)
        assert done.status == "completed" and done.request_counts.completed == 120
        out = [json.loads(x) for x in client.files.content(done.output_file_id).content.splitlines()]
        assert sorted(o["custom_id"] for o in out) == sorted(f"r{i}" for i in range(120))
        asked = [r.json["messages"][0]["content"] for r in upstream.calls_for("/chat/completions")]
        assert sorted(asked) == sorted(f"q{i}" for i in range(120))  # no line asked twice
    finally:
        upstream.default = Reply()
        gw.stop()
