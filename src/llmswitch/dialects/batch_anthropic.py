"""Anthropic's Message Batches (``/v1/messages/batches``) from and to OpenAI batch lines, pure.

A chat line's OpenAI body becomes a Messages request through the usual dialects (OpenAI request -> IR ->
Anthropic request); each JSONL result (``succeeded`` / ``errored`` / ``canceled`` / ``expired``) becomes
an OpenAI ``chat.completion`` body or an OpenAI error body, with the usage Anthropic counted.

Anthropic takes ``custom_id`` values of 1 to 64 letters, digits, ``-`` and ``_`` only, unique in the
batch; :func:`native_ids` gives each line one (its own where it qualifies).

    >>> native_ids(["a", "a b", "a"])
    ['a', 'line-1', 'line-2']
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from llmswitch import ir
from llmswitch.dialects import anthropic_messages, openai_chat
from llmswitch.dialects._json import dumps
from llmswitch.dialects.anthropic_errors import decode_error
from llmswitch.dialects.batch_openai import BatchAnswer, BatchState, Status, decode_chat_line, error_body, not_run
from llmswitch.dialects.openai_errors import encode_error
from llmswitch.errors import BadRequestError

_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
# what Anthropic takes in one batch: requests, and bytes of the create body
MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024


def native_ids(custom_ids: list[str]) -> list[str]:
    """An Anthropic-valid, unique ``custom_id`` per line: the line's own where it is one, else ``line-N``."""
    out: list[str] = []
    taken = {c for c in custom_ids if _CUSTOM_ID.match(c)}
    seen: set[str] = set()
    for i, cid in enumerate(custom_ids):
        if _CUSTOM_ID.match(cid) and cid not in seen:
            seen.add(cid)
            out.append(cid)
            continue
        n = i
        while f"line-{n}" in taken or f"line-{n}" in seen:
            n += 1
        seen.add(f"line-{n}")
        out.append(f"line-{n}")
    return out


# ---------------------------------------------------------------- requests


def decode_line(body: dict[str, Any]) -> ir.Request:
    """An OpenAI chat line's body as an IR request (validated; a line is never streamed)."""
    return decode_chat_line(body)


def encode_request(custom_id: str, req: ir.Request, *, model: str) -> dict[str, Any]:
    """One entry of ``requests``: ``{"custom_id", "params"}`` with a Messages request as ``params``."""
    params = anthropic_messages.encode_request(req, model=model)
    params.pop("stream", None)
    return {"custom_id": custom_id, "params": params}


def required_betas(requests: list[dict[str, Any]]) -> list[str]:
    """The ``anthropic-beta`` values the batch's requests need, once each."""
    betas: dict[str, None] = {}
    for r in requests:
        betas.update(dict.fromkeys(anthropic_messages.required_betas(r["params"])))
    return list(betas)


# ---------------------------------------------------------------- the batch object


def decode_batch(batch: dict[str, Any]) -> BatchState:
    """A ``message_batch`` object in our words.

    ``ended`` is ``cancelled`` when a cancel was asked for, ``expired`` when any line expired (the 24-hour
    window passed before all ran: OpenAI's ``expired``, with the lines that ran answered), else
    ``completed``; lines that errored, were canceled or expired count as failed."""
    counts = batch.get("request_counts") or {}
    n = {k: _int(counts.get(k)) for k in ("processing", "succeeded", "errored", "canceled", "expired")}
    total = sum(n.values())
    failed = n["errored"] + n["canceled"] + n["expired"]
    if batch.get("processing_status") != "ended":
        return BatchState("in_progress", n["succeeded"], failed, total, None)
    status: Status
    if batch.get("cancel_initiated_at"):
        status = "cancelled"
    elif n["expired"]:
        status = "expired"
    else:
        status = "completed"
    return BatchState(status, n["succeeded"], failed, total, None)


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


# ---------------------------------------------------------------- results


def decode_result_line(line: dict[str, Any], *, created: int) -> BatchAnswer:
    """One line of the results JSONL as an answer in OpenAI's form (its ``custom_id`` still Anthropic's).

    ``created`` stamps the chat.completion (Anthropic's messages carry no creation time)."""
    custom_id = str(line.get("custom_id") or "")
    raw = line.get("result")
    result: dict[str, Any] = raw if isinstance(raw, dict) else {}
    kind = result.get("type")
    if kind == "succeeded" and isinstance(result.get("message"), dict):
        try:
            resp = anthropic_messages.decode_response(result["message"])
        except BadRequestError as exc:
            return BatchAnswer(custom_id, 502, error_body(f"unreadable answer: {exc}", type="server_error"), None)
        resp = msgspec.structs.replace(resp, created=created)
        return BatchAnswer(custom_id, 200, openai_chat.encode_response(resp), resp.usage)
    if kind == "errored":
        err = result.get("error")
        # status 0: the error's own type picks the status (as for an error inside a stream)
        status, body = encode_error(decode_error(0, dumps(err) if err is not None else b"", provider="anthropic"))
        return BatchAnswer(custom_id, status, body, None)
    if kind == "canceled":
        return not_run(custom_id, "cancelled")
    if kind == "expired":
        return not_run(custom_id, "expired")
    return BatchAnswer(custom_id, 502, error_body(f"unknown result type {kind!r}", type="server_error"), None)
