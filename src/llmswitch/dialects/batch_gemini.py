"""Gemini's batch mode (``models/{model}:batchGenerateContent``, inlined requests) from and to OpenAI
batch lines, pure.

Each chat line becomes an inlined ``GenerateContentRequest`` through the Gemini dialect, tagged with its
``custom_id`` in the request's ``metadata``; the batch resource (an operation while it runs) reports its
``state`` and ``batchStats``, and once done carries ``inlinedResponses``, each a response or an error
(a ``google.rpc.Status``) with the metadata it was sent with.

    >>> decode_batch({"metadata": {"state": "BATCH_STATE_RUNNING", "batchStats": {"requestCount": "2"}}}).status
    'in_progress'
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmswitch import ir
from llmswitch.dialects import gemini, openai_chat
from llmswitch.dialects._json import dumps
from llmswitch.dialects.batch_openai import BatchAnswer, BatchState, Status, decode_chat_line, error_body
from llmswitch.dialects.openai_errors import encode_error

# how a batch's state reads in our words (the REST API says BATCH_STATE_*, the SDKs JOB_STATE_*)
_STATE_MAP: dict[str, Status] = {
    "PENDING": "in_progress",
    "RUNNING": "in_progress",
    "QUEUED": "in_progress",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "CANCELLING": "in_progress",
    "EXPIRED": "expired",
}
# Gemini takes at most 20 MB of inlined requests in one create call
MAX_INLINED_BYTES = 20 * 1024 * 1024


def decode_line(body: dict[str, Any]) -> ir.Request:
    """An OpenAI chat line's body as an IR request (validated; a line is never streamed)."""
    return decode_chat_line(body)


def encode_request(custom_id: str, req: ir.Request, *, model: str) -> dict[str, Any]:
    """One inlined request: the ``GenerateContentRequest`` and the line's id as its metadata."""
    return {"request": gemini.encode_request(req, model=model), "metadata": {"custom_id": custom_id}}


def encode_create(requests: list[dict[str, Any]], *, display_name: str) -> dict[str, Any]:
    """The body of ``batchGenerateContent``."""
    return {"batch": {"displayName": display_name, "inputConfig": {"requests": {"requests": requests}}}}


# ---------------------------------------------------------------- the batch resource


def batch_of(op: dict[str, Any]) -> dict[str, Any]:
    """The ``GenerateContentBatch`` of an operation (its ``metadata``), or the batch itself."""
    meta = op.get("metadata")
    return meta if isinstance(meta, dict) and ("state" in meta or "batchStats" in meta) else op


def decode_batch(op: dict[str, Any]) -> BatchState:
    batch = batch_of(op)
    native = str(batch.get("state") or "")
    status = _STATE_MAP.get(native.rpartition("_STATE_")[2] if "_STATE_" in native else native, "in_progress")
    stats = batch.get("batchStats") or {}
    total = _int(stats.get("requestCount"))
    done = _int(stats.get("successfulRequestCount"))
    failed = _int(stats.get("failedRequestCount"))
    error = op.get("error")
    message = str(error.get("message")) if isinstance(error, dict) and error.get("message") else None
    return BatchState(status, done, failed, total, message)


def _int(v: Any) -> int:
    # int64 fields come as strings in JSON
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def inlined_responses(op: dict[str, Any]) -> list[dict[str, Any]]:
    """The answered lines of a finished batch (the operation's ``response``, or the batch's ``output``)."""
    for holder in (op.get("response"), batch_of(op).get("output")):
        if isinstance(holder, dict):
            outer = holder.get("inlinedResponses")
            inner = outer.get("inlinedResponses") if isinstance(outer, dict) else outer
            if isinstance(inner, list):
                return [r for r in inner if isinstance(r, dict)]
    return []


def custom_id_of(item: dict[str, Any]) -> str | None:
    meta = item.get("metadata")
    if isinstance(meta, dict):
        for key in ("custom_id", "key"):
            if isinstance(meta.get(key), str):
                return str(meta[key])
    return None


def decode_inlined_response(item: dict[str, Any], *, custom_id: str, created: int) -> BatchAnswer:
    """One inlined response (or its error) as an answer in OpenAI's form; ``created`` stamps a
    chat.completion whose response carries no ``createTime`` (AI Studio's do not)."""
    resp = item.get("response")
    if isinstance(resp, dict):
        out = gemini.decode_response(resp)
        if not out.created:
            out = msgspec.structs.replace(out, created=created)
        return BatchAnswer(custom_id, 200, openai_chat.encode_response(out), out.usage)
    err = item.get("error")
    if isinstance(err, dict):
        code = err.get("code")
        # a google.rpc.Status: its HTTP status is the code when it is one, else its canonical name decides
        status = code if isinstance(code, int) and 400 <= code < 600 else _RPC_STATUS.get(code, 500)
        exc = gemini.decode_error(status, dumps({"error": {**err, "code": status}}), provider="gemini")
        status, body = encode_error(exc)
        return BatchAnswer(custom_id, status, body, None)
    return BatchAnswer(
        custom_id, 502, error_body("the batch answered this line with nothing", type="server_error"), None
    )


# google.rpc.Code numbers (what a Status in a batch carries) -> HTTP status
_RPC_STATUS: dict[Any, int] = {
    3: 400,  # INVALID_ARGUMENT
    5: 404,  # NOT_FOUND
    7: 403,  # PERMISSION_DENIED
    8: 429,  # RESOURCE_EXHAUSTED
    9: 400,  # FAILED_PRECONDITION
    13: 500,  # INTERNAL
    14: 503,  # UNAVAILABLE
    16: 401,  # UNAUTHENTICATED
    4: 504,  # DEADLINE_EXCEEDED
}
