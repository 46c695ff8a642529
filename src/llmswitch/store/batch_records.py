"""What the store keeps of the Batch API: uploaded files, batches and each batch's lines.

A batch's lines are rows of their own, so that any gateway instance can claim a few at a time (with a
lease), answer them and write each answer once: a line's answer is set only while the line is not yet
``done``, in the same transaction that counts it on its batch. Times are unix seconds, as OpenAI's
objects carry them.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

FilePurpose = Literal["batch", "batch_output"]
BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
#: statuses after which nothing changes any more
TERMINAL: frozenset[str] = frozenset({"failed", "completed", "expired", "cancelled"})


class FileRecord(msgspec.Struct, kw_only=True, frozen=True):
    """An uploaded (``batch``) or written (``batch_output``) file; its bytes live where ``storage`` says."""

    id: str
    owner: str  # the creating key's hash ("" for the master key)
    purpose: str
    filename: str
    bytes: int
    created_at: int
    expires_at: int | None = None
    storage: Literal["local", "store"] = "local"


FILE_FIELDS = ("id", "owner", "purpose", "filename", "bytes", "created_at", "expires_at", "storage")


class BatchRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One batch: what was asked, where it runs (``mode``), its progress and its outcome."""

    id: str
    owner: str
    api: Literal["openai", "anthropic"] = "openai"
    endpoint: str
    model_group: str
    input_file_id: str
    completion_window: str = "24h"
    status: str = "validating"
    mode: Literal["gateway", "native"] = "gateway"
    created_at: int
    expires_at: int
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None
    native: dict[str, Any] | None = None  # the provider's job, for a native batch
    usage: dict[str, Any] | None = None  # the answered lines' tokens, summed when the batch ends
    estimate: float = 0.0  # USD reserved at creation (the budget check)


BATCH_FIELDS = tuple(f for f in BatchRecord.__struct_fields__)
#: fields kept as JSON text
BATCH_JSON_FIELDS = frozenset({"errors", "metadata", "native", "usage"})
#: fields update_batch may set
BATCH_MUTABLE = frozenset(BATCH_FIELDS) - {"id", "owner", "api", "endpoint", "model_group", "input_file_id"}


class ClaimedLine(msgspec.Struct, frozen=True):
    """A line leased to one worker: answer it, then :meth:`finish_batch_lines`."""

    batch_id: str
    line_no: int
    custom_id: str
    body: str
    attempts: int


class LineOutcome(msgspec.Struct, frozen=True):
    """A line's answer: ``response`` is the JSON of its output-file entry's ``response`` (or ``error``)."""

    line_no: int
    status_code: int
    response: str
    failed: bool


class DoneLine(msgspec.Struct, frozen=True):
    """A line as the output and error files are written from it (``state`` is ``done`` or not)."""

    line_no: int
    custom_id: str
    state: str
    status_code: int | None
    response: str | None
    failed: bool | None


def encode_json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def decode_json(text: Any) -> Any:
    if text is None:
        return None
    return msgspec.json.decode(text)
