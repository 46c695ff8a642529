"""The Batch API through the gateway with the official openai SDK, run by the gateway (no native driver).

The flow is the one users write: ``files.create(purpose="batch")`` → ``batches.create`` → poll
``batches.retrieve`` → ``files.content(output_file_id)``. The fake upstream answers every line.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from gateway_harness import MASTER_KEY, Closing, ServedGateway, gateway_config
from multi_harness import spend_logs

from llmswitch import ir
from llmswitch.cost import cost_of, price_for
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


def _client(gw: ServedGateway, closing: Closing, key: str = MASTER_KEY) -> openai.OpenAI:
    return closing(openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0))


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def _chat_line(i: int, group: str = "m-openai") -> dict[str, Any]:
    return {
        "custom_id": f"req-{i}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": group, "messages": [{"role": "user", "content": f"line {i}"}], "max_tokens": 20},
    }


def _wait_done(client: openai.OpenAI, batch_id: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status} after {timeout} s: {batch}"
        time.sleep(0.1)


def _output(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in client.files.content(file_id).content.splitlines()]


def test_the_openai_sdk_batch_flow_runs_every_line_once(
    served: ServedGateway, upstream: FakeUpstream, closing: Closing
) -> None:
    key = served.new_key(max_budget=5.0)
    client = _client(served, closing, key)
    lines = [_chat_line(i) for i in range(25)]
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(lines))), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(_jsonl(lines)) and uploaded.filename == "in.jsonl"
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"job": "nightly"},
    )
    assert batch.status in ("validating", "in_progress") and batch.request_counts.total == 25
    assert batch.metadata == {"job": "nightly"}
    done = _wait_done(client, batch.id)
    assert done.status == "completed", done
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (25, 25, 0)
    assert done.completed_at and done.in_progress_at and done.finalizing_at and done.error_file_id is None
    out = _output(client, done.output_file_id)
    assert sorted(o["custom_id"] for o in out) == sorted(f"req-{i}" for i in range(25))
    for o in out:
        assert o["error"] is None and o["response"]["status_code"] == 200
        body = o["response"]["body"]
        assert body["object"] == "chat.completion"
        # the fake echoes the prompt: each answer is its own line's
        assert body["choices"][0]["message"]["content"] == f"line {o['custom_id'].split('-')[1]}"
    assert len(upstream.calls_for("/chat/completions")) == 25
    # the batch's usage sums its answers'
    prompt = sum(o["response"]["body"]["usage"]["prompt_tokens"] for o in out)
    completion = sum(o["response"]["body"]["usage"]["completion_tokens"] for o in out)
    assert done.usage is not None and prompt > 0
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.total_tokens) == (
        prompt,
        completion,
        prompt + completion,
    )
    # the output file is a file of the key's, listed with purpose batch_output
    listed = client.files.list(purpose="batch_output")
    assert [f.id for f in listed.data] == [done.output_file_id]
    assert client.batches.list().data[0].id == batch.id

    # every line is a spend record priced at the batch rate (half of gpt-4o-mini's)
    price = price_for("gpt-4o-mini", "openai")
    assert price is not None
    deadline = time.monotonic() + 20
    while True:
        rows = [r for r in spend_logs(served.port, key) if str(r["request_id"]).startswith(batch.id)]
        if len(rows) == 25 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(rows) == 25
    for row in rows:
        usage = ir.Usage(input_tokens=row["prompt_tokens"], output_tokens=row["completion_tokens"])
        assert row["spend"] == pytest.approx(cost_of(usage, price, batch=True))
        assert row["spend"] < cost_of(usage, price)


def test_a_bad_line_is_refused_before_the_batch_is_accepted(served: ServedGateway, closing: Closing) -> None:
    client = _client(served, closing)
    lines = [_chat_line(1), _chat_line(2), _chat_line(3)]
    lines[2]["body"]["messages"] = [{"role": "wizard", "content": "x"}]
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(lines))), purpose="batch")
    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert "line 3" in str(err.value) and "messages" in str(err.value)

    dup = [_chat_line(1), _chat_line(1)]
    uploaded = client.files.create(file=("dup.jsonl", io.BytesIO(_jsonl(dup))), purpose="batch")
    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert "line 2" in str(err.value) and "custom_id" in str(err.value)

    broken = _jsonl([_chat_line(1)]) + b"{not json\n"
    uploaded = client.files.create(file=("broken.jsonl", io.BytesIO(broken)), purpose="batch")
    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert "line 2" in str(err.value)

    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    assert "input_file_id" in str(err.value)
    with pytest.raises(openai.BadRequestError) as err:
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/completions", completion_window="24h")  # type: ignore[arg-type]
    assert "endpoint" in str(err.value)
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("x.jsonl", io.BytesIO(b"{}")), purpose="fine-tune")
    assert "purpose" in str(err.value)
    assert client.batches.list().data == []


def test_failed_lines_go_to_the_error_file_and_embeddings_run(
    served: ServedGateway, upstream: FakeUpstream, closing: Closing
) -> None:
    client = _client(served, closing)
    upstream.script(Reply(status=400, message="this line is wrong upstream"))
    lines = [_chat_line(0)]
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(lines))), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    done = _wait_done(client, batch.id)
    assert done.status == "completed" and done.request_counts.failed == 1 and done.request_counts.completed == 0
    errors = _output(client, done.error_file_id)
    assert errors[0]["custom_id"] == "req-0" and errors[0]["response"]["status_code"] == 400
    assert "this line is wrong upstream" in errors[0]["response"]["body"]["error"]["message"]

    emb = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "m-openai", "input": f"t{i}"},
        }
        for i in range(3)
    ]
    uploaded = client.files.create(file=("emb.jsonl", io.BytesIO(_jsonl(emb))), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    done = _wait_done(client, batch.id)
    assert done.status == "completed" and done.request_counts.completed == 3
    out = _output(client, done.output_file_id)
    assert {o["custom_id"] for o in out} == {"e0", "e1", "e2"}
    assert all(o["response"]["body"]["data"][0]["object"] == "embedding" for o in out)


def test_cancel_stops_a_batch_and_keys_see_only_their_own(
    served: ServedGateway, upstream: FakeUpstream, closing: Closing
) -> None:
    upstream.default = Reply(latency=0.3)
    try:
        key_a, key_b = served.new_key(), served.new_key()
        a, b = _client(served, closing, key_a), _client(served, closing, key_b)
        lines = [_chat_line(i) for i in range(200)]
        uploaded = a.files.create(file=("in.jsonl", io.BytesIO(_jsonl(lines))), purpose="batch")
        with pytest.raises(openai.NotFoundError):
            b.files.retrieve(uploaded.id)
        with pytest.raises(openai.BadRequestError):
            b.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        batch = a.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        with pytest.raises(openai.NotFoundError):
            b.batches.retrieve(batch.id)
        assert b.batches.list().data == []
        time.sleep(0.5)
        cancelling = a.batches.cancel(batch.id)
        assert cancelling.status in ("cancelling", "cancelled")
        done = _wait_done(a, batch.id)
        assert done.status == "cancelled" and done.cancelled_at and done.cancelling_at
        answered = done.request_counts.completed
        assert 0 < answered < 200
        out = _output(a, done.output_file_id) if answered else []
        errors = _output(a, done.error_file_id)
        assert len(out) == answered and len(out) + len(errors) == 200
        assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
        assert len({o["custom_id"] for o in out + errors}) == 200
    finally:
        upstream.default = Reply()


def test_llmswitch_sdk_batch_calls_through_the_gateway(served: ServedGateway) -> None:
    import llmswitch

    kw = {"api_base": served.url + "/v1", "api_key": MASTER_KEY}
    f = llmswitch.create_file(file=_jsonl([_chat_line(i) for i in range(3)]), purpose="batch", **kw)
    b = llmswitch.create_batch(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h", **kw)
    deadline = time.monotonic() + 60
    while (b := llmswitch.retrieve_batch(b.id, **kw)).status != "completed":
        assert time.monotonic() < deadline, b
        time.sleep(0.1)
    out = llmswitch.file_content(b.output_file_id, **kw).text.splitlines()
    assert sorted(json.loads(x)["custom_id"] for x in out) == ["req-0", "req-1", "req-2"]
    page = llmswitch.list_batches(limit=1, **kw)
    assert [x["id"] for x in page.data] == [b.id] and page.has_more is False


def test_hostile_uploads_and_ids_get_clear_4xx(served: ServedGateway, closing: Closing) -> None:
    client = _client(served, closing)
    # not multipart, no boundary, no file part, a body past the limit's envelope, ids that are not ours
    r = served.call("POST", "/v1/files", {"purpose": "batch"})
    assert r.status == 400 and "multipart" in r.json()["error"]["message"]
    r = served.call("POST", "/v1/files", raw=b"x", headers={"content-type": "multipart/form-data"})
    assert r.status == 400 and "boundary" in r.json()["error"]["message"]
    form = b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--b--\r\n'
    r = served.call("POST", "/v1/files", raw=form, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status == 400 and r.json()["error"]["param"] == "file"
    for path in ("/v1/files/..%2f..%2fetc%2fpasswd/content", "/v1/files/file-nope", "/v1/batches/batch_nope"):
        r = served.call("GET", path)
        assert r.status == 404, (path, r.body)
    r = served.call("GET", "/v1/batches?limit=0")
    assert r.status == 400 and r.json()["error"]["param"] == "limit"
    r = served.call(
        "POST", "/v1/batches", {"input_file_id": 7, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    )
    assert r.status == 400 and r.json()["error"]["param"] == "input_file_id"
    r = served.call("POST", "/v1/batches", {"endpoint": "/v1/chat/completions", "completion_window": "1h"})
    assert r.status == 400 and r.json()["error"]["param"] == "completion_window"
    assert served.call("GET", "/v1/batches", key="sk-wrong").status == 401
    # a batch that has ended cannot be cancelled
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(_jsonl([_chat_line(0)]))), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    _wait_done(client, batch.id)
    with pytest.raises(openai.BadRequestError, match="cannot be cancelled"):
        client.batches.cancel(batch.id)
    # deleting a file: gone from retrieve, list and content
    deleted = client.files.delete(uploaded.id)
    assert deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.content(uploaded.id)


def test_a_recorded_multipart_upload_from_another_client_is_read(served: ServedGateway) -> None:
    """ruby-openai's upload (recorded from the real API): part headers we do not send ourselves."""
    recorded = json.loads(
        (Path(__file__).resolve().parents[3] / "shared/fixtures/recorded/openai/batch_file_upload.json").read_text()
    )
    req = recorded["request"]
    r = served.call(
        "POST", "/v1/files", raw=req["body"].encode(), headers={"content-type": req["headers"]["content-type"]}
    )
    assert r.status == 200, r.body
    want = json.loads(recorded["response"]["body_text"])
    got = r.json()
    assert set(got) == set(want)
    assert (got["purpose"], got["filename"], got["bytes"], got["status"]) == ("batch", "batch.jsonl", 468, "processed")


def test_size_and_line_limits_are_named(
    upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closing: Closing
) -> None:
    monkeypatch.setenv("LLMSWITCH_BATCH_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("LLMSWITCH_BATCH_MAX_LINES", "3")
    monkeypatch.setenv("LLMSWITCH_BATCH_MAX_FILE_BYTES", "2000")
    with ServedGateway(gateway_config(upstream, str(tmp_path / "gw.db"), num_retries=0)) as gw:
        client = _client(gw, closing)
        four = _jsonl([_chat_line(i) for i in range(4)])
        uploaded = client.files.create(file=("four.jsonl", io.BytesIO(four)), purpose="batch")
        with pytest.raises(openai.BadRequestError, match="line 4") as err:
            client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        assert "at most 3" in str(err.value)
        with pytest.raises(openai.APIStatusError) as big:
            client.files.create(file=("big.jsonl", io.BytesIO(b"x" * 70_000)), purpose="batch")
        assert big.value.status_code == 413
        with pytest.raises(openai.BadRequestError, match="2000 byte"):
            client.files.create(file=("big.jsonl", io.BytesIO(b"x" * 3000)), purpose="batch")
        latin = client.files.create(file=("latin.jsonl", io.BytesIO(b'{"custom_id": "caf\xe9"}\n')), purpose="batch")
        with pytest.raises(openai.BadRequestError, match=r"line 1.*UTF-8"):
            client.batches.create(input_file_id=latin.id, endpoint="/v1/chat/completions", completion_window="24h")
        empty = client.files.create(file=("empty.jsonl", io.BytesIO(b"\n\n")), purpose="batch")
        with pytest.raises(openai.BadRequestError, match="no requests"):
            client.batches.create(input_file_id=empty.id, endpoint="/v1/chat/completions", completion_window="24h")
