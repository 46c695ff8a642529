"""LiteLLM's file and batch calls against the fake upstream's batch APIs: OpenAI's straight through, and
Anthropic's and Gemini's through the native drivers with the file and the batch's record kept locally."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import llmswitch
from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture
def up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUpstream]:
    monkeypatch.setenv("LLMSWITCH_SDK_BATCH_DIR", str(tmp_path / "book"))
    with FakeUpstream() as fake:
        fake.batches.polls_to_finish = 1
        yield fake


def _jsonl(model: str, n: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": model, "max_tokens": 30, "messages": [{"role": "user", "content": f"say {i}"}]},
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


def _finish(batch_id: str, provider: str, **kw: object) -> llmswitch.sdk_batches.BatchResult:  # type: ignore[name-defined]
    for _ in range(50):
        batch = llmswitch.retrieve_batch(batch_id, custom_llm_provider=provider, **kw)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
    raise AssertionError(f"batch {batch_id} did not end: {batch}")


def test_openai_batches_go_straight_to_the_provider(up: FakeUpstream) -> None:
    kw = {"api_base": up.openai_base, "api_key": "sk-test"}
    f = llmswitch.create_file(
        file=io.BytesIO(_jsonl("gpt-4o-mini", 3)), purpose="batch", custom_llm_provider="openai", **kw
    )
    assert f.purpose == "batch" and f.id
    b = llmswitch.create_batch(
        completion_window="24h",
        endpoint="/v1/chat/completions",
        input_file_id=f.id,
        custom_llm_provider="openai",
        metadata={"k": "v"},
        **kw,
    )
    assert b.status in ("validating", "in_progress")
    done = _finish(b.id, "openai", **kw)
    assert done.status == "completed" and done.request_counts.completed == 3
    out = [
        json.loads(x)
        for x in llmswitch.file_content(done.output_file_id, custom_llm_provider="openai", **kw).content.splitlines()
    ]
    assert sorted(o["custom_id"] for o in out) == ["r0", "r1", "r2"]
    assert up.calls_for("/v1/files") and up.calls_for("/v1/batches")


@pytest.mark.parametrize(
    ("provider", "model"), [("anthropic", "claude-sonnet-4-20250514"), ("gemini", "gemini-2.5-flash")]
)
def test_anthropic_and_gemini_batches_run_natively_from_a_local_file(
    up: FakeUpstream, provider: str, model: str
) -> None:
    base = up.anthropic_base if provider == "anthropic" else up.gemini_base
    kw = {"api_base": base, "api_key": "sk-test"}

    async def flow() -> list[dict[str, object]]:
        f = await llmswitch.acreate_file(
            file=("in.jsonl", _jsonl(f"{provider}/{model}", 4)), custom_llm_provider=provider
        )
        b = await llmswitch.acreate_batch(input_file_id=f.id, custom_llm_provider=provider, **kw)
        listed = await llmswitch.alist_batches(custom_llm_provider=provider)
        assert [x["id"] for x in listed.data] == [b.id]
        for _ in range(50):
            b = await llmswitch.aretrieve_batch(b.id, custom_llm_provider=provider, **kw)
            if b.status == "completed":
                break
        assert b.status == "completed" and b.request_counts.completed == 4
        content = await llmswitch.afile_content(b.output_file_id, custom_llm_provider=provider)
        return [json.loads(x) for x in content.text.splitlines()]

    out = asyncio.run(flow())
    assert sorted(o["custom_id"] for o in out) == ["r0", "r1", "r2", "r3"]  # type: ignore[type-var]
    for o in out:
        body = o["response"]["body"]  # type: ignore[index]
        assert body["choices"][0]["message"]["content"] == f"say {o['custom_id'][1:]}"  # type: ignore[index]


def test_cancel_and_providers_without_a_batch_api(up: FakeUpstream) -> None:
    up.batches.polls_to_finish = 100
    kw = {"api_base": up.anthropic_base, "api_key": "sk-test"}
    f = llmswitch.create_file(file=_jsonl("claude-sonnet-4-20250514", 2), custom_llm_provider="anthropic")
    b = llmswitch.create_batch(input_file_id=f.id, custom_llm_provider="anthropic", **kw)
    assert llmswitch.cancel_batch(b.id, custom_llm_provider="anthropic", **kw).status == "cancelling"
    done = _finish(b.id, "anthropic", **kw)
    assert done.status == "cancelled" and done.error_file_id
    errors = [
        json.loads(x)
        for x in llmswitch.file_content(done.error_file_id, custom_llm_provider="anthropic").content.splitlines()
    ]
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    with pytest.raises(llmswitch.BadRequestError, match="no batch API"):
        llmswitch.create_file(file=b"{}", custom_llm_provider="groq")
    with pytest.raises(llmswitch.NotFoundError):
        llmswitch.retrieve_batch("batch_nope", custom_llm_provider="anthropic")
    up.default = Reply()
