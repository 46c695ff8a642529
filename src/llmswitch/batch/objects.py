"""The Files and Batch APIs' objects, exactly as OpenAI's (and Anthropic's) SDKs read them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llmswitch.store.batch_records import BatchRecord, FileRecord

_NO_USAGE = {
    "input_tokens": 0,
    "output_tokens": 0,
    "total_tokens": 0,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens_details": {"reasoning_tokens": 0},
}


def file_object(rec: FileRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "object": "file",
        "bytes": rec.bytes,
        "created_at": rec.created_at,
        "expires_at": rec.expires_at,
        "filename": rec.filename,
        "purpose": rec.purpose,
        "status": "processed",
        "status_details": None,
    }


def batch_object(rec: BatchRecord) -> dict[str, Any]:
    errors = None
    if rec.errors:
        errors = {"object": "list", "data": rec.errors}
    return {
        "id": rec.id,
        "object": "batch",
        "endpoint": rec.endpoint,
        "model": rec.model_group,
        "errors": errors,
        "input_file_id": rec.input_file_id,
        "completion_window": rec.completion_window,
        "status": rec.status,
        "output_file_id": rec.output_file_id,
        "error_file_id": rec.error_file_id,
        "created_at": rec.created_at,
        "in_progress_at": rec.in_progress_at,
        "expires_at": rec.expires_at,
        "finalizing_at": rec.finalizing_at,
        "completed_at": rec.completed_at,
        "failed_at": rec.failed_at,
        "expired_at": rec.expired_at,
        "cancelling_at": rec.cancelling_at,
        "cancelled_at": rec.cancelled_at,
        "request_counts": {"total": rec.total, "completed": rec.completed, "failed": rec.failed},
        "usage": rec.usage or _NO_USAGE,
        "metadata": rec.metadata,
    }


def _rfc3339(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def message_batch_object(rec: BatchRecord, base_url: str) -> dict[str, Any]:
    """Anthropic's ``message_batch``: counts by outcome, ``processing_status`` and a ``results_url``."""
    ended = rec.status in ("completed", "cancelled", "expired", "failed")
    processing = "ended" if ended else ("canceling" if rec.status == "cancelling" else "in_progress")
    done = rec.completed + rec.failed
    unfinished = max(rec.total - done, 0)
    counts = {
        "processing": 0 if ended else unfinished,
        "succeeded": rec.completed,
        "errored": rec.failed,
        "canceled": unfinished if ended and rec.status == "cancelled" else 0,
        "expired": unfinished if ended and rec.status == "expired" else 0,
    }
    ended_at = rec.completed_at or rec.cancelled_at or rec.expired_at or rec.failed_at
    return {
        "id": rec.id,
        "type": "message_batch",
        "processing_status": processing,
        "request_counts": counts,
        "ended_at": _rfc3339(ended_at) if ended else None,
        "created_at": _rfc3339(rec.created_at),
        "expires_at": _rfc3339(rec.expires_at),
        "archived_at": None,
        "cancel_initiated_at": _rfc3339(rec.cancelling_at),
        "results_url": f"{base_url}/v1/messages/batches/{rec.id}/results" if ended else None,
    }
