"""What the fake upstream answers: a dialect-neutral :class:`Reply`, and its IR form.

A reply is written once and spoken by every face of the fake (OpenAI, Anthropic, Gemini): the
functions here turn it into an :class:`ir.Response` or a list of :class:`ir.StreamEvent`, and each
face renders those through the project's own server-side dialect encoder.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import msgspec

from llmswitch import ir
from llmswitch.dialects._json import dumps
from llmswitch.errors import APIStatusError, error_for_status

# (name, arguments) or (name, arguments, id); arguments as a dict or as the raw JSON text
ToolCallSpec = tuple[str, Mapping[str, Any] | str] | tuple[str, Mapping[str, Any] | str, str]
# the id of the i-th tool call of a reply that does not set its own
CallIds = Callable[[int], str]


def default_call_id(i: int) -> str:
    return f"call_{i}"


@dataclass(frozen=True)
class Reply:
    """One scripted answer of the fake upstream, in no particular dialect.

    ::

        Reply(text="Paris", usage=(12, 1))                      # prompt and completion tokens
        Reply(tool_calls=[("get_weather", {"city": "Paris"})])   # finish_reason "tool_calls"
        Reply(status=429, retry_after=0.05)                      # rate limited: wait 50 ms
        Reply(text="a long story", chunk_delay=0.01, cut_after=3)  # a stream that breaks

    Content (used when ``status`` is 2xx):

    - ``text``: the answer; ``None`` echoes the last user message (or nothing when there are tool calls).
    - ``reasoning`` and ``reasoning_signature``: visible reasoning ("thinking") before the text.
    - ``tool_calls``: ``[("get_weather", {"city": "Paris"}), ...]``; an optional third item sets the id.
    - ``finish_reason``: defaults to ``"tool_calls"`` when there are tool calls, else ``"stop"``.
    - ``usage``: an ``ir.Usage`` or ``(input_tokens, output_tokens)``; by default a rough count
      (about four characters per token).
    - ``model``: the model the answer claims to come from (default: the one requested).
    - ``dims``: length of embedding vectors (a request's ``dimensions`` wins); vectors are a
      deterministic function of the input text.

    Faults:

    - ``status`` (e.g. 429, 500, 503) answers with the dialect's error envelope carrying ``message``
      (and ``error_type`` / ``code`` where the dialect has them); ``body`` replaces that envelope with
      raw text or bytes (sent as ``content_type``, default ``text/plain``).
    - ``body`` with a 2xx ``status`` is the whole answer as a provider would send it (a JSON body, or
      for a streamed request the stream's bytes), sent as ``content_type`` (default: the face's JSON or
      stream type): for what the reply's fields cannot say.
    - ``retry_after`` (seconds) sets both ``Retry-After`` and ``retry-after-ms``; ``headers`` adds any
      other response headers (use them to send only one of the two).
    - ``latency``: seconds before the status line and headers.
    - ``ttft``: seconds between the headers and the first byte of a stream.
    - ``chunk_delay``: seconds between stream writes; ``chunk_size``: characters per text fragment.
    - ``cut_after``: drop the connection after that many stream writes, without ending the stream
      (for an answer that is not streamed, any value drops the connection before the answer).
    - ``end_after``: end the stream's body cleanly after that many stream writes, before the finish
      reason and the dialect's end marker (``[DONE]``, ``message_stop``), as a proxy that gives up
      might: the HTTP body is complete, the answer is not.
    - ``hang``: accept the request and never answer (until the client leaves or the fake stops).
    """

    text: str | None = None
    reasoning: str | None = None
    reasoning_signature: str | None = None
    tool_calls: Sequence[ToolCallSpec] = ()
    finish_reason: ir.FinishReason | None = None
    usage: ir.Usage | tuple[int, int] | None = None
    model: str | None = None
    dims: int = 8
    status: int = 200
    message: str | None = None
    error_type: str | None = None
    code: str | None = None
    body: str | bytes | None = None
    content_type: str | None = None
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    latency: float = 0.0
    ttft: float = 0.0
    chunk_delay: float = 0.0
    chunk_size: int = 8
    cut_after: int | None = None
    end_after: int | None = None
    hang: bool = False

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        for name in ("cut_after", "end_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be a non-negative number of stream writes")

    @property
    def is_error(self) -> bool:
        return self.status >= 400


# ---------------------------------------------------------------- content


def last_user_text(req: ir.Request | None) -> str:
    """The text of the last user message, which the default reply echoes."""
    if req is None:
        return ""
    for m in reversed(req.messages):
        if m.role == "user":
            return m.text
    return ""


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters per token, at least one for any text)."""
    return math.ceil(len(text) / 4) if text else 0


def _request_chars(req: ir.Request | None) -> int:
    if req is None:
        return 0
    n = 0
    for m in req.messages:
        for p in m.content:
            if isinstance(p, ir.TextPart | ir.ReasoningPart | ir.ToolResultPart):
                n += len(p.text)
            elif isinstance(p, ir.ToolCallPart):
                n += len(p.name) + len(p.arguments)
    return n


def reply_text(reply: Reply, req: ir.Request | None) -> str:
    if reply.text is not None:
        return reply.text
    return "" if reply.tool_calls else last_user_text(req)


def tool_call_parts(reply: Reply, *, call_ids: CallIds = default_call_id) -> list[ir.ToolCallPart]:
    parts = []
    for i, spec in enumerate(reply.tool_calls):
        name, args = spec[0], spec[1]
        call_id = spec[2] if len(spec) > 2 else call_ids(i)
        arguments = args if isinstance(args, str) else dumps(dict(args)).decode()
        parts.append(ir.ToolCallPart(id=str(call_id), name=name, arguments=arguments))
    return parts


def reply_usage(reply: Reply, req: ir.Request | None) -> ir.Usage:
    if isinstance(reply.usage, tuple):
        return ir.Usage(input_tokens=reply.usage[0], output_tokens=reply.usage[1])
    if reply.usage is not None:
        return reply.usage
    calls = "".join(c.name + c.arguments for c in tool_call_parts(reply))
    reasoning = estimate_tokens(reply.reasoning or "")
    return ir.Usage(
        input_tokens=max(1, math.ceil(_request_chars(req) / 4)),
        output_tokens=estimate_tokens(reply_text(reply, req) + calls) + reasoning,
        reasoning_tokens=reasoning,
        reasoning_reported=True,
    )


def finish_reason(reply: Reply) -> ir.FinishReason:
    if reply.finish_reason is not None:
        return reply.finish_reason
    return "tool_calls" if reply.tool_calls else "stop"


def to_response(
    reply: Reply,
    req: ir.Request | None,
    *,
    response_id: str,
    model: str,
    call_ids: CallIds = default_call_id,
    created: int = 0,
) -> ir.Response:
    """The complete (non-streamed) answer a reply stands for; ``call_ids(i)`` names unnamed tool calls."""
    parts: list[ir.Part] = []
    if reply.reasoning is not None:
        parts.append(ir.ReasoningPart(text=reply.reasoning, signature=reply.reasoning_signature))
    text = reply_text(reply, req)
    if text:
        parts.append(ir.TextPart(text=text))
    parts.extend(tool_call_parts(reply, call_ids=call_ids))
    return ir.Response(
        id=response_id,
        model=reply.model or model,
        created=created,
        choices=[ir.Choice(index=0, parts=parts, finish_reason=finish_reason(reply))],
        usage=reply_usage(reply, req),
        system_fingerprint="fp_fake",
    )


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def to_stream_events(
    reply: Reply, req: ir.Request | None, *, call_ids: CallIds = default_call_id
) -> list[ir.StreamEvent]:
    """The same answer as :func:`to_response`, as stream events in the order a provider sends them.

    A role event with the input token count opens the stream; reasoning, text and tool-call
    arguments follow in ``chunk_size`` fragments (a tool call's id and name come with its first
    fragment only); the finish reason and the final usage close it.
    """
    usage = reply_usage(reply, req)
    size = reply.chunk_size
    events = [ir.StreamEvent(role="assistant", usage=ir.Usage(input_tokens=usage.input_tokens))]
    if reply.reasoning is not None:
        events += [ir.StreamEvent(reasoning=p) for p in _pieces(reply.reasoning, size)]
        if reply.reasoning_signature is not None:
            events.append(ir.StreamEvent(reasoning_signature=reply.reasoning_signature))
    events += [ir.StreamEvent(text=p) for p in _pieces(reply_text(reply, req), size)]
    for i, call in enumerate(tool_call_parts(reply, call_ids=call_ids)):
        events.append(ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=i, id=call.id, name=call.name)]))
        events += [
            ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=i, arguments=p)]) for p in _pieces(call.arguments, size)
        ]
    events.append(ir.StreamEvent(finish_reason=finish_reason(reply), usage=usage))
    return events


def finish_with_last_content(events: list[ir.StreamEvent]) -> list[ir.StreamEvent]:
    """The same events with the closing one folded into the one before it.

    Gemini sends its finish reason on the chunk with the last text or function calls, where OpenAI
    sends a chunk of its own; a face picks the form its provider uses.
    """
    if len(events) < 2 or events[-2].finish_reason is not None:
        return events
    *head, last_content, closing = events
    merged = msgspec.structs.replace(last_content, finish_reason=closing.finish_reason, usage=closing.usage)
    return [*head, merged]


# ---------------------------------------------------------------- faults

_DEFAULT_MESSAGES = {
    400: "Invalid request (fake upstream).",
    401: "Incorrect API key provided (fake upstream).",
    403: "You do not have access to this resource (fake upstream).",
    404: "The model does not exist or you do not have access to it (fake upstream).",
    429: "Rate limit reached for requests (fake upstream).",
    500: "The server had an error while processing your request (fake upstream).",
    503: "The server is overloaded or not ready yet (fake upstream).",
    529: "Overloaded (fake upstream).",
}


def error_message(reply: Reply) -> str:
    if reply.message is not None:
        return reply.message
    if reply.status in _DEFAULT_MESSAGES:
        return _DEFAULT_MESSAGES[reply.status]
    try:
        phrase = HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = "Error"
    return f"{phrase} (fake upstream)."


def to_error(reply: Reply) -> APIStatusError:
    """The error a faulty reply stands for, ready for a dialect's ``encode_error``."""
    message = error_message(reply)
    cls = error_for_status(reply.status, message, code=reply.code, error_type=reply.error_type)
    return cls(
        message,
        status_code=reply.status,
        provider="fake",
        retry_after=reply.retry_after,
        code=reply.code,
        error_type=reply.error_type,
    )


def fault_headers(reply: Reply) -> dict[str, str]:
    """``Retry-After`` (seconds) and ``retry-after-ms`` for ``retry_after``, then ``headers``."""
    out: dict[str, str] = {}
    if reply.retry_after is not None:
        ra = reply.retry_after
        out["retry-after"] = str(int(ra)) if float(ra).is_integer() else f"{ra:g}"
        out["retry-after-ms"] = str(round(ra * 1000))
    out.update(reply.headers)
    return out


# ---------------------------------------------------------------- embeddings


def embedding_vector(text: str, dims: int) -> list[float]:
    """A unit vector that depends only on ``text`` and ``dims``, with float32 values.

    Float32 values survive OpenAI's ``encoding_format=base64`` exactly, so both encodings give the
    same floats.
    """
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    rng = random.Random(seed)
    raw = [rng.uniform(-1.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    packed = struct.pack(f"<{dims}f", *(v / norm for v in raw))
    return list(struct.unpack(f"<{dims}f", packed))


def float32_bytes(vector: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)
