"""OpenAI's (and Azure's) Batch API lines, and the OpenAI batch-output form every native driver answers in.

Pure: JSONL input files and multipart uploads out, output/error-file lines and batch objects in.
:class:`BatchAnswer` is one answered line in OpenAI's output form (status, body, usage); the Anthropic
and Gemini batch dialects answer in it too.

    >>> encode_input_line("a", "/v1/chat/completions", {"model": "gpt-4o", "messages": [], "stream": True})
    {'custom_id': 'a', 'method': 'POST', 'url': '/v1/chat/completions', 'body': {'model': 'gpt-4o', 'messages': []}}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

from llmswitch import ir
from llmswitch.dialects import openai_chat
from llmswitch.dialects._json import dumps
from llmswitch.dialects.drop_params import CALL_KEYS

# body keys that make no sense in a batch (a line is never streamed) or are the gateway's settings
_NOT_BATCHED = frozenset(("stream", "stream_options", "timeout"))
_NOT_SENT = _NOT_BATCHED | CALL_KEYS

# what a line never run is answered with: its status and OpenAI's error code
EXPIRED = (408, "batch_expired", "This request could not be executed before the completion window expired.")
CANCELLED = (499, "batch_cancelled", "This request was not executed: the batch was cancelled.")
FAILED = (500, "batch_failed", "This request was not executed: the batch failed.")
_NOT_RUN = {"expired": EXPIRED, "cancelled": CANCELLED, "failed": FAILED}
_STATUS_FOR_CODE = {code: status for status, code, _ in (EXPIRED, CANCELLED, FAILED)}


# what OpenAI takes in one batch: lines, and bytes of input file
MAX_LINES = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024


class BatchAnswer(NamedTuple):
    """One answered line: ``status_code`` 200 with an OpenAI body, or an error status with ``{"error": …}``."""

    custom_id: str
    status_code: int
    body: dict[str, Any]
    usage: ir.Usage | None


def error_body(message: str, *, type: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


def not_run(custom_id: str, why: str, detail: str | None = None) -> BatchAnswer:
    """The answer of a line the provider never ran: ``why`` is ``expired``, ``cancelled`` or ``failed``."""
    status, code, message = _NOT_RUN[why]
    return BatchAnswer(custom_id, status, error_body(detail or message, type="batch_error", code=code), None)


# ---------------------------------------------------------------- input


def line_body(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI request body as a batch line carries it (no streaming, no gateway settings)."""
    if _NOT_SENT.isdisjoint(body):
        return body
    return {k: v for k, v in body.items() if k not in _NOT_SENT}


def decode_chat_line(body: dict[str, Any]) -> ir.Request:
    """An OpenAI chat line's body as an IR request, validated (for a provider of another dialect).

    ``drop_params`` / ``additional_drop_params`` stay: they are settings of the request, never sent."""
    if isinstance(body, dict) and not _NOT_BATCHED.isdisjoint(body):
        body = {k: v for k, v in body.items() if k not in _NOT_BATCHED}
    return openai_chat.decode_request(body)


def encode_input_line(custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": line_body(body)}


def encode_input_file(lines: Iterable[dict[str, Any]]) -> bytes:
    """JSONL: one encoded line per line, each ending in a newline."""
    return b"".join(dumps(line) + b"\n" for line in lines)


def encode_multipart(fields: dict[str, str], *, filename: str, content: bytes, boundary: str) -> tuple[str, bytes]:
    """``multipart/form-data`` with text ``fields`` and one ``file``: (content type, body).

    ``boundary`` must not occur in ``content`` (a random token of 32 hex digits will not)."""
    dash = f"--{boundary}".encode()
    out: list[bytes] = []
    for name, value in fields.items():
        out += [dash, f'\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode(), value.encode(), b"\r\n"]
    out += [
        dash,
        f'\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode(),
        b"Content-Type: application/jsonl\r\n\r\n",
        content,
        b"\r\n",
        dash,
        b"--\r\n",
    ]
    return f"multipart/form-data; boundary={boundary}", b"".join(out)


def encode_create(
    input_file_id: str, endpoint: str, completion_window: str, metadata: dict[str, str] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input_file_id": input_file_id,
        "endpoint": endpoint,
        "completion_window": completion_window,
    }
    if metadata:
        body["metadata"] = metadata
    return body


# ---------------------------------------------------------------- the batch object


Status = Literal["in_progress", "completed", "failed", "cancelled", "expired"]
_OUTCOMES: dict[str, Status] = {s: s for s in ("completed", "failed", "cancelled", "expired")}


class BatchState(NamedTuple):
    """A provider batch's status in our words, its counts, and why it failed."""

    status: Status
    completed: int
    failed: int
    total: int
    error: str | None


def decode_batch(batch: dict[str, Any]) -> BatchState:
    """An OpenAI batch object's status and ``request_counts``."""
    status = _OUTCOMES.get(str(batch.get("status") or ""), "in_progress")
    counts = batch.get("request_counts") or {}
    errors = (batch.get("errors") or {}).get("data") if isinstance(batch.get("errors"), dict) else None
    error = None
    if errors:
        error = "; ".join(_error_text(e) for e in errors if isinstance(e, dict)) or None
    return BatchState(
        status, _int(counts.get("completed")), _int(counts.get("failed")), _int(counts.get("total")), error
    )


def _error_text(e: dict[str, Any]) -> str:
    line = e.get("line")
    where = f"line {line}: " if line is not None else ""
    return f"{where}{e.get('message') or e.get('code') or 'error'}"


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


# ---------------------------------------------------------------- output


def decode_output_line(line: dict[str, Any], *, url: str) -> BatchAnswer:
    """A line of an output or error file as an answer (``url`` tells chat from embeddings for usage).

    An answered line carries ``response`` (its status and body); a line never run carries only
    ``error`` (``batch_expired`` …)."""
    custom_id = str(line.get("custom_id") or "")
    response = line.get("response")
    if isinstance(response, dict):
        status = _int(response.get("status_code")) or 500
        body = response.get("body")
        if not isinstance(body, dict):
            body = error_body(str(body) if body else "the provider answered without a body", type="server_error")
        usage = map_usage_in(body, url=url) if status < 400 else None
        return BatchAnswer(custom_id, status, body, usage)
    raw_err = line.get("error")
    err: dict[str, Any] = raw_err if isinstance(raw_err, dict) else {}
    code = str(err.get("code") or "batch_failed")
    status = _STATUS_FOR_CODE.get(code, 500)
    return BatchAnswer(
        custom_id, status, error_body(str(err.get("message") or code), type="batch_error", code=code), None
    )


def map_usage_in(body: dict[str, Any], *, url: str) -> ir.Usage | None:
    u = body.get("usage")
    if not isinstance(u, dict):
        return None
    if url.endswith("/embeddings"):
        return ir.Usage(input_tokens=_int(u.get("prompt_tokens") or u.get("total_tokens")))
    return openai_chat.map_usage_in(u)


def encode_output_line(answer: BatchAnswer, *, line_id: str, request_id: str) -> dict[str, Any]:
    """An answer as a line of OpenAI's output (or error) file, as the openai SDK reads it back.

    A line never run (``batch_expired``, ``batch_cancelled``, ``batch_failed``) has no ``response``, only
    ``error``, as OpenAI writes it."""
    err = answer.body.get("error") if answer.status_code != 200 else None
    if isinstance(err, dict) and err.get("code") in _STATUS_FOR_CODE:
        return {
            "id": line_id,
            "custom_id": answer.custom_id,
            "response": None,
            "error": {"code": err["code"], "message": err.get("message")},
        }
    response = {"status_code": answer.status_code, "request_id": request_id, "body": answer.body}
    return {"id": line_id, "custom_id": answer.custom_id, "response": response, "error": None}
