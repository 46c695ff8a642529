"""Anthropic Messages streams: SSE bytes -> IR events (client side) and back (server side).

The wire sequence is ``message_start`` (id, model, input usage), then per content block
``content_block_start`` / ``content_block_delta``… / ``content_block_stop``, ``ping`` at any time,
``message_delta`` (stop reason, *cumulative* usage) and ``message_stop``; an ``error`` event can arrive
at any point of a 200 stream and raises the error it stands for.

Tool calls get a stable IR index (the count of tool_use blocks so far, not Anthropic's block index),
id and name in their first delta, argument fragments after. Server-tool blocks are assembled and
emitted whole, as :class:`ir.ProviderPart`, when their block stops.
"""

from __future__ import annotations

from typing import Any

import msgspec

from llmswitch import ir
from llmswitch.dialects import citations
from llmswitch.dialects._json import dumps, loads_lenient
from llmswitch.dialects.anthropic_content import (
    RESPONSE_TOOL,
    finish_reason_in,
    map_usage_in,
    map_usage_out,
    stop_reason_out,
)
from llmswitch.dialects.anthropic_errors import decode_error, encode_error
from llmswitch.dialects.sse import SSEEvent, SSEParser, encode_event
from llmswitch.errors import APIStatusError

__all__ = ["StreamDecoder", "StreamEncoder"]


class _Block:
    """What an open content block is, for reading its deltas."""

    __slots__ = ("block", "citations", "json", "kind", "start", "tool")

    def __init__(self, kind: str, tool: int = -1, block: dict[str, Any] | None = None, start: int = 0) -> None:
        self.kind = kind  # text | thinking | tool | answer (the RESPONSE_TOOL) | provider | other
        self.tool = tool
        self.block = block
        self.json = ""
        self.start = start  # where a text block begins in the answer's text
        self.citations: list[ir.Citation] = []


class StreamDecoder:
    """``feed(bytes) -> [StreamEvent]``; raises the matching APIStatusError on an ``error`` event.

    >>> d = StreamDecoder(model="claude")
    >>> [e.text for e in d.feed(b'event: content_block_delta\\ndata: {"type":"content_block_delta",'
    ...                        b'"index":0,"delta":{"type":"text_delta","text":"Hi"}}\\n\\n')]
    ['Hi']
    """

    def __init__(self, *, provider: str | None = "anthropic", model: str | None = None) -> None:
        self._sse = SSEParser()
        self.meta = ir.StreamMeta()
        self.done = False
        self._provider = provider
        self._model = model
        self._blocks: dict[int, _Block] = {}
        self._tools = 0
        self._answered = False
        self._usage: dict[str, Any] = {}
        self._error: APIStatusError | None = None
        self._chars = 0  # text of the answer so far: cited spans are told in it

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        return self._read(self._sse.feed(chunk))

    def close(self) -> list[ir.StreamEvent]:
        return self._read(self._sse.close())

    def _read(self, events: list[SSEEvent]) -> list[ir.StreamEvent]:
        if self._error is not None:
            raise self._error
        out: list[ir.StreamEvent] = []
        try:
            for ev in events:
                self._event(ev.event, ev.data, out)
        except APIStatusError as exc:
            if not out:
                raise
            # what arrived before the error still reaches the caller; the error follows on the next call
            self._error = exc
        return out

    def _event(self, name: str | None, data: str, out: list[ir.StreamEvent]) -> None:
        ev = loads_lenient(data)
        kind = ev.get("type") if isinstance(ev, dict) else None
        if kind == "error" or name == "error":
            raise decode_error(200, data, provider=self._provider, model=self._model)
        if not isinstance(ev, dict):
            return
        if kind == "content_block_delta":
            self._delta(ev, out)
        elif kind == "content_block_start":
            self._start(ev, out)
        elif kind == "content_block_stop":
            self._stop(ev, out)
        elif kind == "message_start":
            msg = ev.get("message") or {}
            self.meta.id = str(msg.get("id") or "")
            self.meta.model = str(msg.get("model") or self._model or "")
            usage = self._merge_usage(msg.get("usage"))
            out.append(ir.StreamEvent(role="assistant", usage=usage))
        elif kind == "message_delta":
            self._message_delta(ev, out)
        elif kind == "message_stop":
            self.done = True
        # ping, and event kinds added later, carry nothing to report

    def _merge_usage(self, raw: Any) -> ir.Usage | None:
        if not isinstance(raw, dict):
            return None
        # every field Anthropic sends is a running total: the latest value replaces the earlier one
        self._usage.update((k, v) for k, v in raw.items() if v is not None)
        return map_usage_in(self._usage)

    def _start(self, ev: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        idx, cb = ev.get("index", 0), ev.get("content_block") or {}
        kind = cb.get("type")
        if kind == "text":
            blk = self._blocks[idx] = _Block("text", start=self._chars)
            blk.citations.extend(citations.anthropic_in(cb.get("citations")) or ())
            if cb.get("text"):
                out.append(self._text(cb["text"]))
        elif kind == "thinking":
            self._blocks[idx] = _Block("thinking")
            if cb.get("thinking") or cb.get("signature"):
                out.append(
                    ir.StreamEvent(
                        reasoning=cb.get("thinking") or None, reasoning_signature=cb.get("signature") or None
                    )
                )
        elif kind == "redacted_thinking":
            self._blocks[idx] = _Block("other")
            out.append(ir.StreamEvent(redacted_reasoning=str(cb.get("data") or "")))
        elif kind == "tool_use" and cb.get("name") == RESPONSE_TOOL:
            self._blocks[idx] = _Block("answer")
            self._answered = True
            if cb.get("input"):
                out.append(self._text(dumps(cb["input"]).decode()))
        elif kind == "tool_use":
            self._blocks[idx] = _Block("tool", self._tools)
            args = dumps(cb["input"]).decode() if cb.get("input") else ""
            delta = ir.ToolCallDelta(
                index=self._tools,
                id=str(cb.get("id") or ""),
                name=str(cb.get("name") or ""),
                arguments=args,
                provider_specific={"caller": cb["caller"]} if cb.get("caller") is not None else None,
            )
            out.append(ir.StreamEvent(tool_calls=[delta]))
            self._tools += 1
        else:
            self._blocks[idx] = _Block("provider", block=dict(cb))

    def _delta(self, ev: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        d = ev.get("delta") or {}
        kind = d.get("type")
        if kind == "text_delta":
            if d.get("text"):
                out.append(self._text(d["text"]))
        elif kind == "thinking_delta":
            if d.get("thinking"):
                out.append(ir.StreamEvent(reasoning=d["thinking"]))
        elif kind == "signature_delta":
            out.append(ir.StreamEvent(reasoning_signature=str(d.get("signature") or "")))
        elif kind == "citations_delta":
            blk = self._blocks.get(ev.get("index", 0))
            if blk is not None and isinstance(d.get("citation"), dict):
                # told when the block's text is known, at its end: the citation covers the whole block
                if not blk.citations and self._chars == blk.start:
                    out.append(ir.StreamEvent(citations=[]))  # where the cited block begins
                blk.citations.append(citations.anthropic_one(d["citation"]))
        elif kind == "input_json_delta":
            frag = d.get("partial_json") or ""
            blk = self._blocks.get(ev.get("index", 0))
            if not frag or blk is None:
                return
            if blk.kind == "tool":
                out.append(ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=blk.tool, arguments=frag)]))
            elif blk.kind == "answer":
                out.append(self._text(frag))
            else:
                blk.json += frag

    def _text(self, text: str) -> ir.StreamEvent:
        self._chars += len(text)
        return ir.StreamEvent(text=text)

    def _stop(self, ev: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        blk = self._blocks.pop(ev.get("index", 0), None)
        if blk is not None and blk.citations:
            span = {"start": blk.start, "end": self._chars}
            out.append(ir.StreamEvent(citations=[msgspec.structs.replace(c, **span) for c in blk.citations]))
        if blk is None or blk.kind != "provider" or blk.block is None:
            return
        if blk.json:
            parsed = loads_lenient(blk.json)
            if isinstance(parsed, dict):
                blk.block["input"] = parsed
        out.append(ir.StreamEvent(provider_part=ir.ProviderPart(provider="anthropic", block=blk.block)))

    def _message_delta(self, ev: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        delta = ev.get("delta") or {}
        e = ir.StreamEvent(usage=self._merge_usage(ev.get("usage")))
        native = delta.get("stop_reason")
        if native:
            e.finish_reason = finish_reason_in(native)
            if e.finish_reason == "tool_calls" and self._answered and not self._tools:
                e.finish_reason = "stop"  # the structured answer came through the answer tool
            e.native_finish_reason = native
        if delta.get("stop_sequence"):
            e.provider_specific = {"stop_sequence": delta["stop_sequence"]}
        if e.usage is not None or native or e.provider_specific:
            out.append(e)


def _sse(event: str, payload: dict[str, Any]) -> bytes:
    return encode_event(dumps(payload), event)


class StreamEncoder:
    """IR events -> Anthropic SSE, exactly the event layout Anthropic sends.

    Blocks open lazily and close when another kind of content starts; ``close()`` ends the open block
    and sends ``message_delta`` (stop reason, cumulative usage) and ``message_stop``. Anthropic streams
    always carry usage, so ``include_usage`` changes nothing.
    """

    def __init__(self, meta: ir.StreamMeta, *, include_usage: bool = True) -> None:
        self._meta = meta
        self._started = False
        self._index = -1
        self._open: str | None = None  # kind of the open block: text | thinking | tool
        self._signed = False
        self._tool_blocks: dict[int, int] = {}
        self._finish: ir.FinishReason | None = None
        self._native: str | None = None
        self._stop_sequence: str | None = None
        self._usage: ir.Usage | None = None
        self._text: list[str] = []  # the answer's text so far, for the text a citation covers

    def _message_start(self) -> bytes:
        self._started = True
        usage = map_usage_out(self._usage) if self._usage is not None else {"input_tokens": 0, "output_tokens": 0}
        message: dict[str, Any] = {
            "id": self._meta.id,
            "type": "message",
            "role": "assistant",
            "model": self._meta.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return _sse("message_start", {"type": "message_start", "message": message}) + _sse("ping", {"type": "ping"})

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _sse("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _open_block(self, kind: str, block: dict[str, Any]) -> bytes:
        head = self._close_block()
        self._index += 1
        self._open, self._signed = kind, False
        return head + _sse(
            "content_block_start", {"type": "content_block_start", "index": self._index, "content_block": block}
        )

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def encode(self, ev: ir.StreamEvent) -> bytes:
        """The SSE bytes for one IR event (possibly none, e.g. for a usage-only event)."""
        if ev.usage is not None:
            self._usage = ev.usage
        if ev.choice != 0:
            return b""  # Anthropic has one choice per message
        out = [b""] if self._started else [self._message_start()]
        if ev.reasoning:
            if self._open != "thinking" or self._signed:
                out.append(self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""}))
            out.append(self._delta(self._index, {"type": "thinking_delta", "thinking": ev.reasoning}))
        if ev.reasoning_signature is not None:
            if self._open != "thinking" or self._signed:
                out.append(self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""}))
            out.append(self._delta(self._index, {"type": "signature_delta", "signature": ev.reasoning_signature}))
            self._signed = True
        if ev.redacted_reasoning is not None:
            out.append(self._open_block("other", {"type": "redacted_thinking", "data": ev.redacted_reasoning}))
            out.append(self._close_block())
        # Anthropic has no refusal field: what the model said when it refused (OpenAI's) is shown as text
        text = ev.text if ev.refusal is None else (ev.text or "") + ev.refusal
        if text:
            if self._open != "text":
                out.append(self._open_block("text", {"type": "text", "text": ""}))
            out.append(self._delta(self._index, {"type": "text_delta", "text": text}))
            self._text.append(text)
        if ev.citations:
            out.append(self._citations(ev.citations))
        elif ev.citations is not None and self._open == "text":
            out.append(self._close_block())  # a cited block begins: its text goes in a block of its own
        for tc in ev.tool_calls or ():
            index = self._tool_blocks.get(tc.index)
            if index is None:
                block = {"type": "tool_use", "id": tc.id or f"toolu_{tc.index}", "name": tc.name or "", "input": {}}
                caller = (tc.provider_specific or {}).get("caller")
                if caller is not None:
                    block["caller"] = caller  # who called it (programmatic tool calling), for the next turn
                out.append(self._open_block("tool", block))
                index = self._tool_blocks[tc.index] = self._index
            if tc.arguments:
                # a late fragment of an earlier call still names its own block, which the SDK accepts
                out.append(self._delta(index, {"type": "input_json_delta", "partial_json": tc.arguments}))
        part = ev.provider_part
        if part is not None and part.provider == "anthropic":
            out.append(self._open_block("other", part.block))
            out.append(self._close_block())
        if ev.finish_reason is not None:
            self._finish, self._native = ev.finish_reason, ev.native_finish_reason
        if ev.provider_specific and isinstance(ev.provider_specific.get("stop_sequence"), str):
            self._stop_sequence = ev.provider_specific["stop_sequence"]
        return b"".join(out)

    def _citations(self, cites: list[ir.Citation]) -> bytes:
        """``citations_delta`` events on the open text block (a new one if none is open), which then ends:
        Anthropic cites whole blocks, so text after a cited span goes in a block of its own."""
        text = "".join(self._text)
        self._text = [text]
        wire = []
        for c in cites:
            span = text[c.start or 0 : len(text) if c.end is None else c.end]
            w = citations.anthropic_out(c, span, to_anthropic=False)
            if w is not None:
                wire.append(w)
        if not wire:
            return b""
        out = [] if self._open == "text" else [self._open_block("text", {"type": "text", "text": ""})]
        out.extend(self._delta(self._index, {"type": "citations_delta", "citation": w}) for w in wire)
        out.append(self._close_block())
        return b"".join(out)

    def close(self) -> bytes:
        """The end of the stream: the open block's stop, ``message_delta`` and ``message_stop``."""
        out = [b""] if self._started else [self._message_start()]
        out.append(self._close_block())
        usage = map_usage_out(self._usage) if self._usage is not None else {"output_tokens": 0}
        # the tier and region are the message's, told in message_start: message_delta's usage has no place for them
        usage.pop("service_tier", None)
        usage.pop("inference_geo", None)
        delta = {"stop_reason": stop_reason_out(self._finish, self._native), "stop_sequence": self._stop_sequence}
        out.append(_sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        out.append(_sse("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error(self, exc: BaseException) -> bytes:
        """An ``error`` event ending a stream that failed after it started, as Anthropic sends one."""
        return _sse("error", encode_error(exc)[1])
