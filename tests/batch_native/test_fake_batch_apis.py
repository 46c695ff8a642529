"""The fake upstream's batch APIs as the providers' own SDKs see them: the official openai and anthropic
clients run their batch calls against it unchanged, so the fake plays the APIs the drivers are tested on."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from llmswitch.testing import FakeUpstream, Reply
from llmswitch.testing._batches import batches_of


def test_openai_sdk_files_and_batches() -> None:
    with FakeUpstream() as up, openai.OpenAI(base_url=up.openai_base, api_key="k", max_retries=0) as client:
        lines = [
            {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}]}}
            for i in range(2)
        ]  # fmt: skip
        content = "".join(json.dumps(line) + "\n" for line in lines).encode()
        f = client.files.create(file=("in.jsonl", content), purpose="batch")
        assert f.purpose == "batch" and f.bytes == len(content)
        assert client.files.content(f.id).read() == content
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
        assert batch.status == "validating"
        for _ in range(3):
            batch = client.batches.retrieve(batch.id)
        assert batch.status == "completed" and batch.request_counts is not None
        assert (batch.request_counts.total, batch.request_counts.completed) == (2, 2)
        assert batch.output_file_id is not None
        out = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
        assert sorted(o["custom_id"] for o in out) == ["r0", "r1"]
        assert all(o["response"]["body"]["object"] == "chat.completion" for o in out)
        cancelled = client.batches.cancel(client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                                                completion_window="24h").id)  # fmt: skip
        assert cancelled.status == "cancelling"
        assert client.batches.retrieve(cancelled.id).status == "cancelled"


def test_anthropic_sdk_message_batches(request: pytest.FixtureRequest) -> None:
    with FakeUpstream() as up:
        up.script(Reply(text="4"), Reply(status=400, message="bad request", error_type="invalid_request_error"))
        client = anthropic.Anthropic(base_url=up.anthropic_base, api_key="k", max_retries=0)
        request.addfinalizer(client.close)
        params = {"model": "claude-haiku-4-5", "max_tokens": 10}
        batch = client.messages.batches.create(requests=[
            {"custom_id": "a", "params": {**params, "messages": [{"role": "user", "content": "2+2?"}]}},
            {"custom_id": "b", "params": {**params, "messages": [{"role": "user", "content": "x"}]}},
        ])  # fmt: skip
        assert batch.processing_status == "in_progress" and batch.request_counts.processing == 2
        for _ in range(2):
            batch = client.messages.batches.retrieve(batch.id)
        assert batch.processing_status == "ended" and batch.results_url is not None
        results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
        assert results["a"].type == "succeeded" and results["a"].message.content[0].text == "4"
        assert results["b"].type == "errored" and results["b"].error.error.type == "invalid_request_error"
        batches_of(up).polls_to_finish = 9
        other = client.messages.batches.create(
            requests=[{"custom_id": "c", "params": {**params, "messages": [{"role": "user", "content": "x"}]}}]
        )
        assert client.messages.batches.cancel(other.id).processing_status == "canceling"
        ended = client.messages.batches.retrieve(other.id)
        assert ended.processing_status == "ended" and ended.request_counts.canceled == 1


def test_google_genai_sdk_batches(request: pytest.FixtureRequest) -> None:
    from google import genai
    from google.genai import types

    with FakeUpstream() as up:
        up.script(Reply(text="fine"), Reply(status=400, message="nope"))
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=up.gemini_base))
        request.addfinalizer(client.close)
        src: list[types.InlinedRequestDict] = [
            {"contents": [{"parts": [{"text": "hi"}], "role": "user"}]},
            {"contents": [{"parts": [{"text": "x"}], "role": "user"}]},
        ]
        job = client.batches.create(model="gemini-2.5-flash", src=src, config={"display_name": "nightly"})
        assert job.name is not None and job.state == types.JobState.JOB_STATE_PENDING
        for _ in range(2):
            job = client.batches.get(name=job.name)
        assert job.state == types.JobState.JOB_STATE_SUCCEEDED
        assert job.dest is not None and job.dest.inlined_responses is not None
        ok, bad = job.dest.inlined_responses
        assert ok.response is not None and ok.response.text == "fine"
        assert bad.error is not None and bad.error.code == 3 and bad.error.message == "nope"
        other = client.batches.create(model="gemini-2.5-flash", src=src[:1])
        assert other.name is not None
        client.batches.cancel(name=other.name)
        assert client.batches.get(name=other.name).state == types.JobState.JOB_STATE_CANCELLED
