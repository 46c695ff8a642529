"""OpenAI's and Azure OpenAI's Batch API as a native driver: upload the JSONL, create the batch, poll it,
read the output and error files back.

OpenAI runs one endpoint per batch, so a job with both chat and embedding lines is two provider
batches (``state["parts"]``), polled and read as one. Azure differs only in its URLs (the resource's
``/openai/...`` paths with ``api-version``, or an ``/openai/v1`` base), its ``api-key`` header, and line
URLs without the ``/v1`` prefix; ``body.model`` is the Azure deployment's name.

State (JSON): ``{"parts": [{"url", "batch_id", "input_file_id", "status", "output_file_id",
"error_file_id", "custom_ids"}]}``; :meth:`poll` updates it, so store it again after each poll.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from llmswitch.batch.native import CHAT_URL, EMBEDDINGS_URL, BatchLine, JobStatus, LineResult, NativeJob, NativeStatus
from llmswitch.batch.native_http import TRANSFER_TIMEOUT, ProviderAPI
from llmswitch.batch.native_lines import (
    as_result,
    check_lines,
    not_ended,
    single_model,
    too_large,
    unanswered,
    why_unanswered,
    with_params,
)
from llmswitch.dialects import batch_openai
from llmswitch.errors import APIError, APIResponseValidationError
from llmswitch.providers.azure import DEFAULT_API_VERSION
from llmswitch.providers.base import merge_headers
from llmswitch.providers.openai import OpenAIProvider
from llmswitch.providers.paths import path_segment

if TYPE_CHECKING:
    from llmswitch.router.deployments import Target

_TERMINAL = ("completed", "failed", "cancelled", "expired")


class OpenAIBatches:
    """``openai/…`` and ``azure/…`` deployments: OpenAI's Files and Batch APIs at the deployment's base."""

    def __init__(self, deployment: Target) -> None:
        self.api = ProviderAPI(deployment)
        provider = deployment.provider
        assert isinstance(provider, OpenAIProvider)
        self.provider = provider
        self.azure = provider.name == "azure"

    # ------------------------------------------------------------ where

    def _root(self) -> tuple[str, str]:
        """The base the files and batches paths hang from, and the query every call carries."""
        endpoint = self.api.endpoint
        base = endpoint.api_base
        if not self.azure:
            return base, ""
        version = endpoint.api_version or os.environ.get("AZURE_API_VERSION") or DEFAULT_API_VERSION
        query = f"?api-version={version}"
        if base.endswith("/openai/v1"):
            return base, query
        if "/openai/deployments/" in base:
            return base.split("/openai/deployments/", 1)[0] + "/openai", query
        if base.endswith("/models"):
            return base[: -len("/models")] + "/openai", query
        return f"{base}/openai", query

    def _url(self, path: str) -> str:
        root, query = self._root()
        return f"{root}/{path}{query}"

    def _line_url(self, url: str) -> str:
        # Azure's deployment APIs name endpoints without the /v1 prefix
        if self.azure and not self._root()[0].endswith("/openai/v1"):
            return url.removeprefix("/v1")
        return url

    def _headers(self, content_type: str | None = "application/json") -> dict[str, str]:
        headers = merge_headers(self.provider.auth_headers(self.api.endpoint), self.api.endpoint.extra_headers)
        if content_type is None:
            headers.pop("content-type", None)
        else:
            headers["content-type"] = content_type
        return headers

    @staticmethod
    def _id(value: Any, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise APIResponseValidationError(f"the provider's answer has no {what}")
        return path_segment(value, provider="openai", what=what)

    # ------------------------------------------------------------ the interface

    async def submit(
        self, lines: list[BatchLine], *, completion_window: str, metadata: dict[str, str] | None
    ) -> NativeJob:
        check_lines(lines, provider=self.api.provider.name)
        if len(lines) > batch_openai.MAX_LINES:
            raise too_large(self.api.provider.name, f"{batch_openai.MAX_LINES} lines")
        single_model(lines)
        by_url: dict[str, list[BatchLine]] = {}
        for line in lines:
            by_url.setdefault(line.url, []).append(line)
        parts: list[dict[str, Any]] = []
        try:
            for url in (CHAT_URL, EMBEDDINGS_URL):
                group = by_url.get(url)
                if group:
                    parts.append(await self._submit_part(url, group, completion_window, metadata))
        except BaseException:
            # a job is all its parts or nothing: stop the parts already running
            for part in parts:
                try:
                    await self._cancel_part(part)
                except APIError:
                    pass
            raise
        return NativeJob(self.api.provider.name, parts[0]["batch_id"], {"parts": parts})

    async def _submit_part(
        self, url: str, lines: list[BatchLine], completion_window: str, metadata: dict[str, str] | None
    ) -> dict[str, Any]:
        line_url = self._line_url(url)
        content = batch_openai.encode_input_file(
            batch_openai.encode_input_line(line.custom_id, line_url, with_params(line, self.api.deployment))
            for line in lines
        )
        if len(content) > batch_openai.MAX_FILE_BYTES:
            raise too_large(self.api.provider.name, "a 200 MB input file")
        content_type, body = batch_openai.encode_multipart(
            {"purpose": "batch"}, filename="batch.jsonl", content=content, boundary=secrets.token_hex(16)
        )
        raw = await self.api.send(
            "POST", self._url("files"), self._headers(content_type), body, timeout=TRANSFER_TIMEOUT
        )
        uploaded = self.api.parse(raw)
        file_id = self._id(uploaded.get("id"), "file id")
        create = batch_openai.encode_create(file_id, line_url, completion_window, metadata)
        batch = await self.api.json("POST", self._url("batches"), self._headers(), create)
        state = batch_openai.decode_batch(batch)
        return {
            "url": url,
            "batch_id": self._id(batch.get("id"), "batch id"),
            "input_file_id": file_id,
            "status": state.status,
            "output_file_id": batch.get("output_file_id"),
            "error_file_id": batch.get("error_file_id"),
            "custom_ids": [line.custom_id for line in lines],
        }

    async def poll(self, job: NativeJob) -> NativeStatus:
        completed = failed = total = 0
        statuses: list[str] = []
        errors: list[str] = []
        for part in job.state["parts"]:
            state = await self._poll_part(part)
            statuses.append(state.status)
            completed += state.completed
            failed += state.failed
            total += state.total or len(part["custom_ids"])
            if state.error:
                errors.append(state.error)
        return NativeStatus(_overall(statuses), completed, failed, total, "; ".join(errors) or None)

    async def _poll_part(self, part: dict[str, Any]) -> batch_openai.BatchState:
        batch = await self.api.json("GET", self._url(f"batches/{part['batch_id']}"), self._headers(None))
        state = batch_openai.decode_batch(batch)
        part["status"] = state.status
        part["output_file_id"] = batch.get("output_file_id")
        part["error_file_id"] = batch.get("error_file_id")
        part["error"] = state.error
        return state

    async def results(self, job: NativeJob) -> AsyncIterator[LineResult]:
        for part in job.state["parts"]:
            if part.get("status") not in _TERMINAL and (await self._poll_part(part)).status not in _TERMINAL:
                raise not_ended("openai", part["batch_id"], "still running")
            seen: set[str] = set()
            expected = set(part["custom_ids"])
            for key in ("output_file_id", "error_file_id"):
                file_id = part.get(key)
                if not file_id:
                    continue
                url = self._url(f"files/{self._id(file_id, 'file id')}/content")
                async for line in self.api.jsonl(url, self._headers(None)):
                    answer = batch_openai.decode_output_line(line, url=part["url"])
                    # a line is answered once, and only lines we sent are answered
                    if answer.custom_id in expected and answer.custom_id not in seen:
                        seen.add(answer.custom_id)
                        yield as_result(answer)
            why = why_unanswered(str(part.get("status")))
            async for result in unanswered(part["custom_ids"], seen, why, part.get("error")):
                yield result

    async def cancel(self, job: NativeJob) -> None:
        for part in job.state["parts"]:
            if part.get("status") not in _TERMINAL:
                await self._cancel_part(part)

    async def _cancel_part(self, part: dict[str, Any]) -> None:
        batch = await self.api.json("POST", self._url(f"batches/{part['batch_id']}/cancel"), self._headers(None))
        part["status"] = batch_openai.decode_batch(batch).status


def _overall(statuses: list[str]) -> JobStatus:
    """One status for a job of several provider batches: running while any runs, else the worst outcome."""
    if "in_progress" in statuses:
        return "in_progress"
    if "failed" in statuses:
        return "failed"
    if "expired" in statuses:
        return "expired"
    if "cancelled" in statuses:
        return "cancelled"
    return "completed"
