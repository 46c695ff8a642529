"""Bedrock's Converse API as a server speaks it: requests read into IR, answers and streams written out.

Used by the fake upstream (:mod:`llmswitch.testing`) to play Bedrock Runtime: Converse JSON answers,
ConverseStream's AWS event-stream frames, errors with ``X-Amzn-Errortype``; and InvokeModel streams for
Anthropic models, whose ``chunk`` frames carry Anthropic's own stream events (:class:`ChunkFramer`).

An event-stream frame: total length and headers length (big-endian u32), the CRC32 of those eight
bytes, the headers (name length u8, name, type 7 = string, value length u16, value), the payload, and
the CRC32 of everything before it.
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import dumps, loads_lenient
from llmswitch.dialects.bedrock_converse import STATUS_FOR_EXCEPTION
from llmswitch.dialects.sse import SSEParser
from llmswitch.errors import APIStatusError

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "content_filtered"}
_EXCEPTION_FOR_STATUS = {400: "ValidationException", 401: "UnrecognizedClientException", 403: "AccessDeniedException",
                         404: "ResourceNotFoundException", 408: "ModelTimeoutException", 429: "ThrottlingException",
                         503: "ServiceUnavailableException"}  # fmt: skip


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message."""
    head = b"".join(
        struct.pack(">B", len(k)) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    start = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + payload
    return start + struct.pack(">I", zlib.crc32(start))


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return frame({":event-type": kind, ":content-type": "application/json", ":message-type": "event"}, dumps(payload))


def decode_request(body: dict[str, Any]) -> ir.Request:
    """A Converse body as IR (what the fake needs of it: the messages, tools and settings)."""
    messages: list[ir.Message] = []
    system = [b["text"] for b in body.get("system") or [] if isinstance(b, dict) and "text" in b]
    if system:
        messages.append(ir.Message(role="system", content=[ir.TextPart(text="\n".join(system))]))
    for m in body.get("messages") or []:
        parts: list[ir.Part] = []
        results: list[ir.Part] = []
        for b in m.get("content") or []:
            if "text" in b:
                parts.append(ir.TextPart(text=b["text"]))
            elif "toolUse" in b:
                use = b["toolUse"]
                parts.append(
                    ir.ToolCallPart(
                        id=use["toolUseId"], name=use["name"], arguments=dumps(use.get("input") or {}).decode()
                    )
                )
            elif "toolResult" in b:
                res = b["toolResult"]
                text = "".join(c.get("text", "") for c in res.get("content") or [] if isinstance(c, dict))
                results.append(ir.ToolResultPart(tool_call_id=res["toolUseId"], content=[ir.TextPart(text=text)]))
        if results:
            messages.append(ir.Message(role="tool", content=results))
        if parts:
            messages.append(ir.Message(role="assistant" if m.get("role") == "assistant" else "user", content=parts))
    tools = None
    cfg = body.get("toolConfig") or {}
    if cfg.get("tools"):
        tools = [
            ir.Tool(name=t["toolSpec"]["name"], description=t["toolSpec"].get("description"),
                    parameters=(t["toolSpec"].get("inputSchema") or {}).get("json"))
            for t in cfg["tools"] if "toolSpec" in t
        ]  # fmt: skip
    inference = body.get("inferenceConfig") or {}
    return ir.Request(
        model="",
        messages=messages,
        tools=tools,
        max_tokens=inference.get("maxTokens"),
        temperature=inference.get("temperature"),
        top_p=inference.get("topP"),
        stop=inference.get("stopSequences"),
    )


def _usage(u: ir.Usage | None) -> dict[str, int]:
    u = u or ir.Usage()
    plain = u.input_tokens - u.cache_read_tokens - u.cache_write_tokens
    out = {"inputTokens": plain, "outputTokens": u.output_tokens, "totalTokens": u.input_tokens + u.output_tokens}
    if u.cache_read_tokens:
        out["cacheReadInputTokens"] = u.cache_read_tokens
    if u.cache_write_tokens:
        out["cacheWriteInputTokens"] = u.cache_write_tokens
    return out


def encode_response(resp: ir.Response) -> dict[str, Any]:
    choice = resp.choices[0] if resp.choices else ir.Choice()
    content: list[dict[str, Any]] = []
    for p in choice.parts:
        if isinstance(p, ir.TextPart):
            content.append({"text": p.text})
        elif isinstance(p, ir.ToolCallPart):
            args = loads_lenient(p.arguments or "{}")
            content.append(
                {"toolUse": {"toolUseId": p.id, "name": p.name, "input": args if isinstance(args, dict) else {}}}
            )
        elif isinstance(p, ir.ReasoningPart):
            content.append({"reasoningContent": {"reasoningText": {"text": p.text, "signature": p.signature or "sig"}}})
    return {
        "metrics": {"latencyMs": 1},
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _STOP.get(choice.finish_reason or "stop", "end_turn"),
        "usage": _usage(resp.usage),
    }


class StreamEncoder:
    """IR stream events as ConverseStream frames."""

    def __init__(self, meta: ir.StreamMeta, *, include_usage: bool = True) -> None:
        self._started = False
        self._block = -1
        self._open: str | None = None  # "text", "reasoning" or "tool"
        self._tools: dict[int, int] = {}
        self._usage: ir.Usage | None = None
        self._stop: str | None = None

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return event("messageStart", {"role": "assistant"})

    def _switch(self, kind: str, start: dict[str, Any] | None = None) -> bytes:
        out = b""
        if self._open is not None:
            out += event("contentBlockStop", {"contentBlockIndex": self._block})
        self._block += 1
        self._open = kind
        if start is not None:
            out += event("contentBlockStart", {"contentBlockIndex": self._block, "start": start})
        return out

    def encode(self, ev: ir.StreamEvent) -> bytes:
        out = self._start()
        if ev.text:
            if self._open != "text":
                out += self._switch("text")
            out += event("contentBlockDelta", {"contentBlockIndex": self._block, "delta": {"text": ev.text}})
        if ev.reasoning:
            if self._open != "reasoning":
                out += self._switch("reasoning")
            delta = {"reasoningContent": {"text": ev.reasoning}}
            out += event("contentBlockDelta", {"contentBlockIndex": self._block, "delta": delta})
        for call in ev.tool_calls or []:
            if call.index not in self._tools:
                out += self._switch(
                    "tool", {"toolUse": {"toolUseId": call.id or f"tooluse_{call.index}", "name": call.name or ""}}
                )
                self._tools[call.index] = self._block
            if call.arguments:
                delta = {"toolUse": {"input": call.arguments}}
                out += event("contentBlockDelta", {"contentBlockIndex": self._tools[call.index], "delta": delta})
        if ev.finish_reason is not None:
            self._stop = _STOP.get(ev.finish_reason, "end_turn")
        if ev.usage is not None:
            self._usage = ev.usage
        return out

    def close(self) -> bytes:
        out = self._start()
        if self._open is not None:
            out += event("contentBlockStop", {"contentBlockIndex": self._block})
        out += event("messageStop", {"stopReason": self._stop or "end_turn"})
        out += event("metadata", {"usage": _usage(self._usage), "metrics": {"latencyMs": 1}})
        return out

    def error(self, exc: BaseException) -> bytes:
        status = getattr(exc, "status_code", None) or 500
        name = _EXCEPTION_FOR_STATUS.get(status, "InternalServerException")
        exception = name[:1].lower() + name[1:]
        headers = {":exception-type": exception, ":content-type": "application/json", ":message-type": "exception"}
        return frame(headers, dumps({"message": getattr(exc, "message", str(exc))}))


def encode_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Status and body of an error answer (the type goes in ``X-Amzn-Errortype``: :func:`error_type`)."""
    status = getattr(exc, "status_code", None) or 500
    return status, {"message": getattr(exc, "message", str(exc))}


def error_headers(exc: BaseException) -> dict[str, str]:
    """``X-Amzn-Errortype`` for an error: its Bedrock exception name, and the namespace AWS appends."""
    if isinstance(exc, APIStatusError) and exc.type in STATUS_FOR_EXCEPTION:
        name = exc.type
    else:
        name = _EXCEPTION_FOR_STATUS.get(getattr(exc, "status_code", None) or 500, "InternalServerException")
    return {"x-amzn-errortype": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"}


class ChunkFramer:
    """InvokeModelWithResponseStream: each of Anthropic's SSE events in a ``chunk`` frame, base64 inside."""

    def __init__(self) -> None:
        self._sse = SSEParser()

    def _frames(self, events: list[Any]) -> bytes:
        return b"".join(
            frame(
                {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
                dumps({"bytes": base64.b64encode(e.data.encode()).decode()}),
            )
            for e in events
        )

    def feed(self, data: bytes) -> bytes:
        return self._frames(self._sse.feed(data))

    def close(self) -> bytes:
        return self._frames(self._sse.close())
