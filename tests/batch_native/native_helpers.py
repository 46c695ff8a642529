"""Shared pieces of the native batch driver tests: deployments aimed at the fake upstream, and a job run
to its end the way the batch core runs it (submit, poll until terminal, read every result)."""

from __future__ import annotations

from typing import Any

from llmswitch.batch.native import BatchLine, LineResult, NativeBatches, NativeJob, NativeStatus, native_for
from llmswitch.router.deployments import Target, build_targets

CHAT = "/v1/chat/completions"


def deployment(model: str, api_base: str, *, api_key: str = "test-key", **params: Any) -> Target:
    row = {
        "model_name": "batch",
        "litellm_params": {"model": model, "api_base": api_base, "api_key": api_key, **params},
    }
    return build_targets([row])[0]


def driver(model: str, api_base: str, **kwargs: Any) -> NativeBatches:
    native = native_for(deployment(model, api_base, **kwargs))
    assert native is not None
    return native


def chat_line(custom_id: str, text: str, model: str, **body: Any) -> BatchLine:
    return BatchLine(custom_id, CHAT, {"model": model, "messages": [{"role": "user", "content": text}], **body})


async def poll_until_done(native: NativeBatches, job: NativeJob, *, limit: int = 10) -> list[NativeStatus]:
    seen = []
    for _ in range(limit):
        status = await native.poll(job)
        seen.append(status)
        if status.terminal:
            return seen
    raise AssertionError(f"the job did not end in {limit} polls: {seen}")


async def collect(native: NativeBatches, job: NativeJob) -> dict[str, LineResult]:
    out: dict[str, LineResult] = {}
    async for result in native.results(job):
        assert result.custom_id not in out, f"{result.custom_id} answered twice"
        out[result.custom_id] = result
    return out
