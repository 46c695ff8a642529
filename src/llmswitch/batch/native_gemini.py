"""Gemini's batch mode as a native driver: OpenAI chat lines run on Gemini at batch prices.

Lines are translated OpenAI -> IR -> ``GenerateContentRequest`` and sent inlined in one
``models/{model}:batchGenerateContent`` call (Gemini takes up to 20 MB that way; a larger batch is
refused with a clear error rather than half-sent). The batch (``batches/…``) is polled by its
``state`` and ``batchStats``; when it is done its ``inlinedResponses`` are translated back, matched to
lines by the ``custom_id`` sent in each request's metadata (by position when the metadata is missing).
Embedding lines are refused (``asyncBatchEmbedContent`` is not driven here): the core runs them itself.

State (JSON): ``{"name": "batches/…", "custom_ids": [...], "status"}``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from llmswitch.batch.native import BatchLine, LineResult, NativeJob, NativeStatus
from llmswitch.batch.native_http import TRANSFER_TIMEOUT, ProviderAPI
from llmswitch.batch.native_lines import (
    as_result,
    check_lines,
    not_ended,
    on_line,
    single_model,
    translated,
    unanswered,
    why_unanswered,
    with_params,
)
from llmswitch.dialects import batch_gemini
from llmswitch.dialects._json import dumps
from llmswitch.dialects.batch_openai import BatchState
from llmswitch.errors import APIResponseValidationError, APIStatusError, BadRequestError
from llmswitch.providers.gemini import GeminiProvider
from llmswitch.providers.paths import path_segment

if TYPE_CHECKING:
    from llmswitch.router.deployments import Target


class GeminiBatches:
    """``gemini/…`` deployments: Gemini's batch mode at the deployment's base (AI Studio's API)."""

    def __init__(self, deployment: Target) -> None:
        self.deployment = deployment
        self.api = ProviderAPI(deployment)
        provider = deployment.provider
        assert isinstance(provider, GeminiProvider)
        self.provider = provider

    def _headers(self) -> dict[str, str]:
        return self.provider.headers(self.api.endpoint)

    def _batch_url(self, job: NativeJob, method: str = "") -> str:
        name = str(job.state.get("name") or f"batches/{job.job_id}")
        collection, _, batch_id = name.partition("/")
        if collection != "batches" or not batch_id:
            raise APIResponseValidationError(f"gemini: unexpected batch name {name!r}", provider="gemini")
        # the version root the provider's model URLs hang from (``{base}/v1beta``)
        root = self.provider.url(self.api.endpoint, "m", "m").rsplit("/models/", 1)[0]
        return f"{root}/batches/{path_segment(batch_id, provider='gemini', what='batch name')}{method}"

    async def submit(
        self, lines: list[BatchLine], *, completion_window: str, metadata: dict[str, str] | None
    ) -> NativeJob:
        check_lines(lines, provider="gemini", chat_only=True)
        model = single_model(lines)
        requests: list[dict[str, Any]] = []
        for i, line in enumerate(lines):
            try:
                req = translated(batch_gemini.decode_line(with_params(line, self.deployment)), self.deployment)
                requests.append(batch_gemini.encode_request(line.custom_id, req, model=model))
            except APIStatusError as exc:
                raise on_line(i, line, exc) from exc
        name = (metadata or {}).get("display_name") or (metadata or {}).get("name") or "llmswitch-batch"
        body = dumps(batch_gemini.encode_create(requests, display_name=name))
        if len(body) > batch_gemini.MAX_INLINED_BYTES:
            raise BadRequestError(
                f"the batch is {len(body)} bytes once translated, more than the 20 MB Gemini takes inlined: "
                "split it into smaller batches",
                status_code=400,
                provider="llmswitch",
                error_type="invalid_request_error",
            )
        url = self.provider.url(self.api.endpoint, model, "batchGenerateContent")
        raw = await self.api.send("POST", url, self._headers(), body, timeout=TRANSFER_TIMEOUT)
        op = self.api.parse(raw)
        name_out = batch_gemini.batch_of(op).get("name") or op.get("name")
        if not isinstance(name_out, str) or not name_out.startswith("batches/"):
            raise APIResponseValidationError("gemini: the created batch has no name", provider="gemini")
        state: dict[str, Any] = {"name": name_out, "custom_ids": [line.custom_id for line in lines]}
        state["status"] = batch_gemini.decode_batch(op).status
        return NativeJob("gemini", name_out.partition("/")[2], state)

    async def _get(self, job: NativeJob) -> tuple[dict[str, Any], BatchState]:
        op = await self.api.json("GET", self._batch_url(job), self._headers(), timeout=TRANSFER_TIMEOUT)
        state = batch_gemini.decode_batch(op)
        job.state["status"] = state.status
        return op, state

    async def poll(self, job: NativeJob) -> NativeStatus:
        _, s = await self._get(job)
        return NativeStatus(s.status, s.completed, s.failed, s.total or len(job.state["custom_ids"]), s.error)

    async def results(self, job: NativeJob) -> AsyncIterator[LineResult]:
        op, state = await self._get(job)
        if state.status == "in_progress":
            raise not_ended("gemini", job.job_id, "still running")
        custom_ids: list[str] = job.state["custom_ids"]
        expected = set(custom_ids)
        seen: set[str] = set()
        created = int(time.time())
        for i, item in enumerate(batch_gemini.inlined_responses(op)):
            custom_id = batch_gemini.custom_id_of(item)
            if custom_id is None and i < len(custom_ids):
                custom_id = custom_ids[i]  # inlined responses come in the order of the requests
            if custom_id is None or custom_id not in expected or custom_id in seen:
                continue
            seen.add(custom_id)
            answer = batch_gemini.decode_inlined_response(item, custom_id=custom_id, created=created)
            yield as_result(answer)
        async for result in unanswered(custom_ids, seen, why_unanswered(state.status), state.error):
            yield result

    async def cancel(self, job: NativeJob) -> None:
        await self.api.json("POST", self._batch_url(job, ":cancel"), self._headers())
