"""Bedrock's streams: AWS event-stream frames (``application/vnd.amazon.eventstream``) to IR events.

Each frame is a binary message with typed headers and a JSON payload, framed and checked with CRC32s
(botocore's parser reads them, the ``bedrock`` extra). ConverseStream's frames are named by their
``:event-type`` (``messageStart``, ``contentBlockStart``, ``contentBlockDelta``, ``contentBlockStop``,
``messageStop``, ``metadata``); InvokeModelWithResponseStream's are ``chunk`` frames whose payload
``{"bytes": base64}`` is one of the model's own stream events (Anthropic's Messages events here). An
``exception`` frame (``:exception-type`` ``throttlingException``…) is the error it names.
"""

from __future__ import annotations

import base64
from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import dumps, loads_lenient
from llmswitch.dialects.anthropic_stream import StreamDecoder as AnthropicStreamDecoder
from llmswitch.dialects.bedrock_converse import FINISH, decode_usage, exception_error
from llmswitch.errors import APIResponseValidationError, APIStatusError


class _Frames:
    """Event-stream frames from bytes as they arrive: (headers, payload) for each whole frame."""

    def __init__(self, provider: str) -> None:
        from botocore.eventstream import EventStreamBuffer

        self._buffer = EventStreamBuffer()
        self._provider = provider

    def feed(self, chunk: bytes) -> list[tuple[dict[str, Any], bytes]]:
        from botocore.eventstream import ParserError

        self._buffer.add_data(chunk)
        try:
            return [(dict(m.headers), bytes(m.payload)) for m in self._buffer]
        except ParserError as exc:  # a CRC that does not match, a frame too long
            raise APIResponseValidationError(f"{self._provider}: unreadable event stream ({exc})") from exc


class ConverseStreamDecoder:
    """``feed(bytes) -> [StreamEvent]`` for ConverseStream; raises the error an exception frame names."""

    def __init__(self, *, provider: str = "bedrock", model: str | None = None) -> None:
        self._frames = _Frames(provider)
        self.meta = ir.StreamMeta(model=model or "")
        self.done = False
        self._provider = provider
        self._model = model
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._error: APIStatusError | None = None

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        if self._error is not None:
            raise self._error
        out: list[ir.StreamEvent] = []
        try:
            for headers, payload in self._frames.feed(chunk):
                self._frame(headers, payload, out)
        except APIStatusError as exc:
            if not out:
                raise
            self._error = exc  # what came before the error reaches the caller first
        return out

    def close(self) -> list[ir.StreamEvent]:
        if self._error is not None:
            raise self._error
        return []

    def _frame(self, headers: dict[str, Any], payload: bytes, out: list[ir.StreamEvent]) -> None:
        ev = loads_lenient(payload) if payload else {}
        if not isinstance(ev, dict):
            ev = {}
        if headers.get(":message-type") == "exception":
            message = str(ev.get("message") or ev.get("Message") or payload.decode("utf-8", "replace"))
            raise exception_error(headers.get(":exception-type"), message, provider=self._provider, model=self._model)
        kind = headers.get(":event-type")
        if kind == "messageStart":
            out.append(ir.StreamEvent(role="assistant"))
        elif kind == "contentBlockStart":
            use = (ev.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                index = self._tools[ev.get("contentBlockIndex", 0)] = len(self._tools)
                delta = ir.ToolCallDelta(index=index, id=str(use.get("toolUseId", "")), name=str(use.get("name", "")))
                out.append(ir.StreamEvent(tool_calls=[delta]))
        elif kind == "contentBlockDelta":
            self._delta(ev, out)
        elif kind == "messageStop":
            native = ev.get("stopReason")
            if isinstance(native, str):
                out.append(ir.StreamEvent(finish_reason=FINISH.get(native, "stop"), native_finish_reason=native))
        elif kind == "metadata":
            usage = decode_usage(ev.get("usage"))
            if usage is not None:
                out.append(ir.StreamEvent(usage=usage))
            self.done = True
        # contentBlockStop, and event kinds added later, carry nothing to report

    def _delta(self, ev: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        delta = ev.get("delta") or {}
        if "text" in delta:
            out.append(ir.StreamEvent(text=str(delta["text"])))
        elif "toolUse" in delta:
            block = ev.get("contentBlockIndex", 0)
            index = self._tools.get(block)
            if index is None:  # a delta whose start never came: a call all the same
                index = self._tools[block] = len(self._tools)
            args = delta["toolUse"].get("input")
            text = args if isinstance(args, str) else dumps(args or {}).decode()
            out.append(ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=index, arguments=text)]))
        elif "reasoningContent" in delta:
            rc = delta["reasoningContent"]
            if "text" in rc:
                out.append(ir.StreamEvent(reasoning=str(rc["text"])))
            if "signature" in rc:
                out.append(ir.StreamEvent(reasoning_signature=str(rc["signature"])))
            if "redactedContent" in rc:
                out.append(ir.StreamEvent(redacted_reasoning=str(rc["redactedContent"])))


class InvokeStreamDecoder:
    """InvokeModelWithResponseStream for Anthropic models: each ``chunk`` frame carries one of Anthropic's
    Messages stream events, read by the Anthropic decoder."""

    def __init__(self, *, provider: str = "bedrock", model: str | None = None) -> None:
        self._frames = _Frames(provider)
        self._inner = AnthropicStreamDecoder(provider=provider, model=model)
        self.meta = self._inner.meta
        self._provider = provider
        self._model = model
        self._error: APIStatusError | None = None

    @property
    def done(self) -> bool:
        return self._inner.done

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        if self._error is not None:
            raise self._error
        sse = bytearray()
        for headers, payload in self._frames.feed(chunk):
            ev = loads_lenient(payload) if payload else {}
            if headers.get(":message-type") == "exception":
                message = str(ev.get("message") or ev.get("Message") or "") if isinstance(ev, dict) else ""
                error = exception_error(
                    headers.get(":exception-type"), message, provider=self._provider, model=self._model
                )
                if not sse:
                    raise error
                self._error = error  # what came before it reaches the caller first
                break
            if headers.get(":event-type") != "chunk" or not isinstance(ev, dict) or "bytes" not in ev:
                continue
            inner = base64.b64decode(ev["bytes"])
            parsed = loads_lenient(inner)
            name = parsed.get("type") if isinstance(parsed, dict) else None
            sse += b"event: " + str(name or "message").encode() + b"\ndata: " + inner + b"\n\n"
        return self._inner.feed(bytes(sse)) if sse else []

    def close(self) -> list[ir.StreamEvent]:
        if self._error is not None:
            raise self._error
        return self._inner.close()
