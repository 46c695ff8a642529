"""What the drivers send and what the fake answers, checked against the providers' published OpenAPI
documents (``../shared/specs``): OpenAI's Batch and Files objects, Anthropic's Message Batches."""

from __future__ import annotations

import asyncio
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from native_helpers import chat_line, collect, driver, poll_until_done

from llmswitch.testing import FakeUpstream, Reply
from llmswitch.testing._batches import _file_object, _openai_batch, batches_of
from llmswitch.testing._batches_anthropic import _anthropic_batch

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SPECS = SHARED / "specs"
RECORDED_OPENAI = SHARED / "fixtures" / "recorded" / "openai"


@cache
def _validator(spec: str, schema: str) -> Draft202012Validator:
    doc = json.loads((SPECS / spec).read_text())
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]})


def problems(spec: str, schema: str, body: Any) -> list[str]:
    return [f"{schema}: {e.json_path}: {e.message[:160]}" for e in _validator(spec, schema).iter_errors(body)]


def test_openai_batch_requests_fit_the_spec_and_the_fakes_objects_the_recorded_ones() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            native = driver("openai/gpt-4o-mini", up.openai_base)
            job = await native.submit([chat_line("a", "hi", "gpt-4o-mini", temperature=0.2)], completion_window="24h",
                                      metadata={"team": "a"})  # fmt: skip
            await poll_until_done(native, job)
            await collect(native, job)
            created = [r.json for r in up.requests if r.path == "/v1/batches" and r.method == "POST"]
            found = [p for body in created for p in problems("openai-openapi.json", "CreateBatchRequest", body)]
            assert created and not found, found
            # the spec leaves out that OpenAI sends null for what has not happened yet (the recorded objects
            # show it), so the fake's objects are held to the recorded ones: every field, in its type or null
            store = batches_of(up)
            recorded_batch = json.loads(RECORDED_OPENAI.joinpath("batch_create.json").read_text())["response"][
                "body_text"
            ]
            recorded_file = json.loads(RECORDED_OPENAI.joinpath("batch_file_upload.json").read_text())["response"][
                "body_text"
            ]
            for j in store.jobs.values():
                _same_shape(json.loads(recorded_batch), _openai_batch(store, j))
            for file_id, f in store.files.items():
                _same_shape(json.loads(recorded_file), _file_object(file_id, f))

    asyncio.run(main())


def _same_shape(recorded: dict[str, Any], ours: dict[str, Any]) -> None:
    assert set(recorded) <= set(ours), set(recorded) - set(ours)
    for key, value in recorded.items():
        if value is not None and ours[key] is not None:
            assert type(ours[key]) is type(value), (key, ours[key], value)


def test_anthropic_batch_requests_and_answers_fit_the_spec() -> None:
    async def main() -> None:
        async with FakeUpstream() as up:
            up.script(Reply(text="ok"), Reply(status=400, message="bad", error_type="invalid_request_error"))
            native = driver("anthropic/claude-haiku-4-5", up.anthropic_base)
            lines = [
                chat_line("a", "hi", "claude-haiku-4-5", max_tokens=20, stop=["x"]),
                chat_line("b c", "yo", "claude-haiku-4-5"),
            ]
            job = await native.submit(lines, completion_window="24h", metadata=None)
            await poll_until_done(native, job)
            await collect(native, job)
            found = problems("anthropic-openapi.json", "CreateMessageBatchParams", up.requests[0].json)
            for j in batches_of(up).jobs.values():
                found += problems("anthropic-openapi.json", "MessageBatch", _anthropic_batch(j, up.url))
        assert not found, found

    asyncio.run(main())


def test_anthropic_results_lines_fit_the_spec() -> None:
    async def main() -> list[dict[str, Any]]:
        async with FakeUpstream() as up:
            up.script(Reply(text="ok"), Reply(status=400, message="bad", error_type="invalid_request_error"))
            import anthropic

            async with anthropic.AsyncAnthropic(base_url=up.anthropic_base, api_key="k", max_retries=0) as client:
                params = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
                batch = await client.messages.batches.create(
                    requests=[{"custom_id": c, "params": params} for c in "abc"]
                )
                await client.messages.batches.cancel(batch.id)
                for _ in range(2):
                    await client.messages.batches.retrieve(batch.id)
                raw = await client.get(f"/v1/messages/batches/{batch.id}/results", cast_to=bytes)
                return [json.loads(x) for x in raw.splitlines() if x.strip()]

    lines = asyncio.run(main())
    assert {line["result"]["type"] for line in lines} == {"canceled"}
    found = [p for line in lines for p in problems("anthropic-openapi.json", "MessageBatchIndividualResponse", line)]
    assert not found, found
