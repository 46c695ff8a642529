"""Batch jobs run at the provider: OpenAI's and Azure's Batch API, Anthropic's Message Batches, Gemini's
batch mode, behind one small interface the batch core drives.

Lines go in and come out in OpenAI's batch form whatever the provider; each driver translates them
(pure translation in ``llmswitch.dialects.batch_*``) and tracks the provider's job in
:attr:`NativeJob.state`, which is plain JSON the core stores, so a job survives a restart of the gateway
and can be followed by any instance.

    >>> native = native_for(deployment)  # doctest: +SKIP
    >>> if native is None: ...  # no batch API at this provider: the gateway runs the lines itself
    >>> job = await native.submit(lines, completion_window="24h", metadata=None)  # doctest: +SKIP
    >>> status = await native.poll(job)  # doctest: +SKIP   (call again until status.status is terminal)
    >>> async for result in native.results(job): ...  # doctest: +SKIP

Every line submitted is answered exactly once by :meth:`NativeBatches.results` once the job is terminal:
a line the provider never answered (a batch cancelled, expired or failed before reaching it) comes back
as an error line (``code`` ``batch_cancelled``, ``batch_expired`` or ``batch_failed``).
Errors of the provider's API itself (401, 429, a batch refused with 400) are raised, classified as
:mod:`llmswitch.errors` classifies every provider error.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from llmswitch import ir
from llmswitch.errors import LLMSwitchError

if TYPE_CHECKING:
    from llmswitch.router.deployments import Target

CHAT_URL = "/v1/chat/completions"
EMBEDDINGS_URL = "/v1/embeddings"

JobStatus = Literal["in_progress", "completed", "failed", "cancelled", "expired"]
# the drivers by provider name, imported on first use
DRIVERS: dict[str, str] = {
    "openai": "llmswitch.batch.native_openai:OpenAIBatches",
    "azure": "llmswitch.batch.native_openai:OpenAIBatches",
    "anthropic": "llmswitch.batch.native_anthropic:AnthropicBatches",
    "gemini": "llmswitch.batch.native_gemini:GeminiBatches",
}
TERMINAL: frozenset[str] = frozenset(("completed", "failed", "cancelled", "expired"))


class JobNotEnded(LLMSwitchError, RuntimeError):
    """:meth:`NativeBatches.results` was asked for before the job reached a terminal status."""


@dataclass(frozen=True)
class BatchLine:
    """One input line, always in OpenAI batch-line form; ``body["model"]`` is the provider's model id."""

    custom_id: str
    url: str  # CHAT_URL or EMBEDDINGS_URL
    body: dict[str, Any]


@dataclass(frozen=True)
class LineResult:
    """One answered line in OpenAI batch-output form.

    ``status_code`` 200: ``body`` is an OpenAI ``chat.completion`` or embedding list. Otherwise ``body`` is
    ``{"error": {"message", "type", "param", "code"}}``: the provider's refusal of that line (its status),
    or a line never run (408 with code ``batch_expired``, 499 ``batch_cancelled``, 500 ``batch_failed``).
    ``usage`` is what the provider counted (for spend, at batch prices); None when nothing was used.
    """

    custom_id: str
    status_code: int
    body: dict[str, Any]
    usage: ir.Usage | None


@dataclass
class NativeJob:
    """A job at the provider. ``state`` is JSON-serializable: the core stores it and hands it back."""

    provider: str  # "openai" | "azure" | "anthropic" | "gemini"
    job_id: str
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NativeStatus:
    """Where a job stands, in OpenAI's words for a batch's outcome."""

    status: JobStatus
    completed: int
    failed: int
    total: int
    error: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class NativeBatches(Protocol):
    """One provider's batch API, for one deployment."""

    async def submit(
        self, lines: list[BatchLine], *, completion_window: str, metadata: dict[str, str] | None
    ) -> NativeJob: ...

    async def poll(self, job: NativeJob) -> NativeStatus:
        """Where the job stands; it may update ``job.state`` (store it again)."""
        ...

    def results(self, job: NativeJob) -> AsyncIterator[LineResult]:
        """Every line's answer, each exactly once, in no particular order; raises :class:`JobNotEnded`
        unless the job is terminal. Safe to read again (after a restart: the provider keeps results)."""
        ...

    async def cancel(self, job: NativeJob) -> None:
        """Ask the provider to stop; poll until terminal, then read the results (lines run before the
        cancel are answered, the rest come back ``batch_cancelled``)."""
        ...


def native_for(deployment: Target) -> NativeBatches | None:
    """The batch API of ``deployment``'s provider, or None when it has none (the gateway runs the lines).

    Only the providers themselves qualify: an OpenAI-compatible vendor configured as ``openai/`` with
    its own ``api_base`` gets OpenAI's driver (it is asked for OpenAI's Batch API), while presets
    (Groq, Together …), Vertex AI and Bedrock are gateway-run. ``model_info: {batch_mode: gateway}`` on a
    deployment makes it gateway-run too (an OpenAI-compatible server without a Batch API, or a choice).
    """
    path = DRIVERS.get(deployment.provider.name)
    if path is None or deployment.model_info.get("batch_mode") == "gateway":
        return None
    module, _, attr = path.partition(":")
    driver: type[NativeBatches] = getattr(importlib.import_module(module), attr)
    return driver(deployment)  # type: ignore[call-arg]
