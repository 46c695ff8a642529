"""Anthropic's Message Batches as a native driver: OpenAI chat lines run on Claude at batch prices.

Each line is translated OpenAI -> IR -> Messages request (the router's parameter policy applies, as
for a single call), submitted in one ``POST /v1/messages/batches``, polled by ``processing_status`` and
``request_counts``, and its results read as JSONL from ``results_url`` and translated back. Embedding
lines are refused: Anthropic has no embeddings. Anthropic keeps no metadata on a batch, so
``metadata`` stays with the core.

State (JSON): ``{"custom_ids": [...], "native_ids": {anthropic id: custom_id} (only ids Anthropic could
not take as they were), "results_url", "status"}``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from llmswitch.batch.native import BatchLine, LineResult, NativeJob, NativeStatus
from llmswitch.batch.native_http import TRANSFER_TIMEOUT, ProviderAPI
from llmswitch.batch.native_lines import (
    as_result,
    check_lines,
    not_ended,
    on_line,
    too_large,
    translated,
    unanswered,
    why_unanswered,
    with_params,
)
from llmswitch.dialects import batch_anthropic
from llmswitch.dialects._json import dumps
from llmswitch.dialects.batch_openai import BatchState
from llmswitch.errors import APIResponseValidationError, APIStatusError
from llmswitch.providers.anthropic import AnthropicProvider
from llmswitch.providers.paths import path_segment

if TYPE_CHECKING:
    from llmswitch.router.deployments import Target


class AnthropicBatches:
    """``anthropic/…`` deployments: the Message Batches API at the deployment's base."""

    def __init__(self, deployment: Target) -> None:
        self.deployment = deployment
        self.api = ProviderAPI(deployment)
        provider = deployment.provider
        assert isinstance(provider, AnthropicProvider)
        self.provider = provider

    def _root(self) -> str:
        base = self.api.endpoint.api_base
        for suffix in ("/v1/messages", "/v1"):
            if base.endswith(suffix):
                return base[: -len(suffix)]
        return base

    def _url(self, path: str = "") -> str:
        return f"{self._root()}/v1/messages/batches{path}"

    def _headers(self, betas: list[str] | None = None) -> dict[str, str]:
        return self.provider.headers(self.api.endpoint, betas or [])

    async def submit(
        self, lines: list[BatchLine], *, completion_window: str, metadata: dict[str, str] | None
    ) -> NativeJob:
        check_lines(lines, provider="anthropic", chat_only=True)
        if len(lines) > batch_anthropic.MAX_REQUESTS:
            raise too_large("anthropic", f"{batch_anthropic.MAX_REQUESTS} requests")
        custom_ids = [line.custom_id for line in lines]
        ids = batch_anthropic.native_ids(custom_ids)
        requests: list[dict[str, Any]] = []
        for i, (line, native_id) in enumerate(zip(lines, ids, strict=True)):
            try:
                req = translated(batch_anthropic.decode_line(with_params(line, self.deployment)), self.deployment)
                requests.append(batch_anthropic.encode_request(native_id, req, model=str(line.body["model"])))
            except APIStatusError as exc:
                raise on_line(i, line, exc) from exc
        body = dumps({"requests": requests})
        if len(body) > batch_anthropic.MAX_BYTES:
            raise too_large("anthropic", "256 MB")
        headers = self._headers(batch_anthropic.required_betas(requests))
        batch = self.api.parse(await self.api.send("POST", self._url(), headers, body, timeout=TRANSFER_TIMEOUT))
        batch_id = batch.get("id")
        if not isinstance(batch_id, str) or not batch_id:
            raise APIResponseValidationError("anthropic: the created batch has no id", provider="anthropic")
        state: dict[str, Any] = {"custom_ids": custom_ids}
        renamed = {n: c for n, c in zip(ids, custom_ids, strict=True) if n != c}
        if renamed:
            state["native_ids"] = renamed
        self._note(state, batch)
        return NativeJob("anthropic", batch_id, state)

    def _note(self, state: dict[str, Any], batch: dict[str, Any]) -> BatchState:
        decoded = batch_anthropic.decode_batch(batch)
        state["status"] = decoded.status
        if isinstance(batch.get("results_url"), str):
            state["results_url"] = batch["results_url"]
        return decoded

    def _batch_url(self, job: NativeJob, path: str = "") -> str:
        return self._url(f"/{path_segment(job.job_id, provider='anthropic', what='batch id')}{path}")

    async def poll(self, job: NativeJob) -> NativeStatus:
        batch = await self.api.json("GET", self._batch_url(job), self._headers())
        s = self._note(job.state, batch)
        return NativeStatus(s.status, s.completed, s.failed, s.total or len(job.state["custom_ids"]), s.error)

    def _results_url(self, job: NativeJob) -> str:
        """``results_url`` when it is on the deployment's own host (the key is sent there), else the
        documented path under the deployment's base."""
        given = job.state.get("results_url")
        own = self._batch_url(job, "/results")
        if isinstance(given, str) and _origin(given) == _origin(own):
            return given
        return own

    async def results(self, job: NativeJob) -> AsyncIterator[LineResult]:
        if job.state.get("status") in (None, "in_progress") and not (await self.poll(job)).terminal:
            raise not_ended("anthropic", job.job_id, "still processing")
        renamed: dict[str, str] = job.state.get("native_ids") or {}
        expected = set(job.state["custom_ids"])
        seen: set[str] = set()
        created = int(time.time())
        async for line in self.api.jsonl(self._results_url(job), self._headers()):
            answer = batch_anthropic.decode_result_line(line, created=created)
            custom_id = renamed.get(answer.custom_id, answer.custom_id)
            if custom_id in expected and custom_id not in seen:
                seen.add(custom_id)
                yield as_result(answer, custom_id)
        async for result in unanswered(job.state["custom_ids"], seen, why_unanswered(str(job.state.get("status")))):
            yield result

    async def cancel(self, job: NativeJob) -> None:
        batch = await self.api.json("POST", self._batch_url(job, "/cancel"), self._headers())
        self._note(job.state, batch)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()
