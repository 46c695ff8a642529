"""OpenAI Chat Completions streams: SSE bytes -> IR events (client side) and back (server side).

The decoder reads every vendor's variant: ``[DONE]`` or none, comment keep-alives (OpenRouter),
leading-whitespace JSON, Azure's first chunk with no choices, Groq's usage in ``x_groq`` and its
``event: error``, and an ``error`` chunk arriving inside a 200 stream, which raises.
"""

from __future__ import annotations

import time
from typing import Any

from llmswitch import ir
from llmswitch.dialects import citations
from llmswitch.dialects._json import dumps, loads_lenient
from llmswitch.dialects.openai_chat import (
    content_list_in,
    finish_reason_in,
    map_usage_in,
    map_usage_out,
    native_finish_out,
)
from llmswitch.dialects.openai_errors import decode_error
from llmswitch.dialects.sse import SSEParser, encode_event
from llmswitch.errors import APIStatusError


class StreamDecoder:
    """``feed(bytes) -> [StreamEvent]``; raises the matching APIStatusError on an in-stream error."""

    def __init__(self, *, provider: str | None = None, model: str | None = None) -> None:
        self._sse = SSEParser()
        self.meta = ir.StreamMeta()
        self.done = False
        self._provider = provider
        self._model = model
        self._pending: APIStatusError | None = None

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        return self._run(self._sse.feed(chunk))

    def close(self) -> list[ir.StreamEvent]:
        out = self._run(self._sse.close())
        if self._pending is not None:
            raise self._pending
        return out

    def _run(self, events: list[Any]) -> list[ir.StreamEvent]:
        # an in-stream error is raised after the events decoded before it, on the next call, so
        # what a caller sees does not depend on how the bytes were split
        if self._pending is not None:
            raise self._pending
        out: list[ir.StreamEvent] = []
        for ev in events:
            try:
                self._event(ev.event, ev.data, out)
            except APIStatusError as exc:
                if not out:
                    raise
                self._pending = exc
                break
        return out

    def _event(self, name: str | None, data: str, out: list[ir.StreamEvent]) -> None:
        if data.strip() == "[DONE]":
            self.done = True
            return
        c = loads_lenient(data)
        if not isinstance(c, dict):
            if name == "error":
                raise decode_error(500, data, provider=self._provider, model=self._model)
            return
        if c.get("error") or name == "error":
            raise decode_error(200, data, provider=self._provider, model=self._model)
        meta = self.meta
        if not meta.id and c.get("id"):
            meta.id = str(c["id"])
            meta.model = str(c.get("model") or "")
            meta.created = int(c.get("created") or 0)
            meta.system_fingerprint = c.get("system_fingerprint")
        for ch in c.get("choices") or ():
            ev = _choice_event(ch)
            if ev is not None:
                out.append(ev)
        u = c.get("usage") or (c.get("x_groq") or {}).get("usage")
        if u:
            out.append(ir.StreamEvent(usage=map_usage_in(u)))


def _choice_event(ch: dict[str, Any]) -> ir.StreamEvent | None:
    d = ch.get("delta") or {}
    ev = ir.StreamEvent(choice=int(ch.get("index") or 0))
    any_set = False
    if d.get("role") == "assistant":
        ev.role = "assistant"
        any_set = True
    content = d.get("content")
    if isinstance(content, str):
        if content:
            ev.text = content
            any_set = True
    elif isinstance(content, list):
        parts = content_list_in(content)
        text = "".join(p.text for p in parts if isinstance(p, ir.TextPart))
        think = "".join(p.text for p in parts if isinstance(p, ir.ReasoningPart))
        if text:
            ev.text = text
        if think:
            ev.reasoning = think
        any_set = any_set or bool(text or think)
    refusal = d.get("refusal")
    if isinstance(refusal, str) and refusal:
        ev.refusal = refusal
        any_set = True
    lp = ch.get("logprobs")
    if isinstance(lp, dict) and (lp.get("content") or lp.get("refusal")):
        ev.logprobs = lp
        any_set = True
    audio = d.get("audio")
    if isinstance(audio, dict) and audio:
        ev.audio = audio
        any_set = True
    reasoning = d.get("reasoning_content") or d.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        ev.reasoning = (ev.reasoning or "") + reasoning
        any_set = True
    for block in d.get("thinking_blocks") or ():
        # LiteLLM's way of carrying a reasoning signature (or redacted reasoning) in a stream
        if not isinstance(block, dict):
            continue
        if block.get("type") == "redacted_thinking" and block.get("data"):
            ev.redacted_reasoning = str(block["data"])
            any_set = True
        elif block.get("signature"):
            ev.reasoning_signature = str(block["signature"])
            any_set = True
    calls = d.get("tool_calls")
    if calls:
        ev.tool_calls = []
        for pos, tc in enumerate(calls):
            custom = tc.get("custom")
            if isinstance(custom, dict):
                ev.tool_calls.append(
                    ir.ToolCallDelta(
                        index=int(tc.get("index", pos)),
                        id=tc.get("id"),
                        name=custom.get("name"),
                        arguments=str(custom.get("input") or ""),
                        custom=True,
                    )
                )
                continue
            fn = tc.get("function") or {}
            args = fn.get("arguments")
            ev.tool_calls.append(
                ir.ToolCallDelta(
                    index=int(tc.get("index", pos)),
                    id=tc.get("id"),
                    name=fn.get("name"),
                    arguments=args if isinstance(args, str) else ("" if args is None else dumps(args).decode()),
                    provider_specific=tc.get("provider_specific_fields"),
                )
            )
        any_set = True
    if d.get("annotations"):
        ev.citations = citations.openai_in(d["annotations"]) or None
        any_set = any_set or ev.citations is not None
    native = ch.get("finish_reason")
    if native:
        ev.finish_reason = finish_reason_in(native)
        ev.native_finish_reason = native
        any_set = True
    return ev if any_set else None


class StreamEncoder:
    """IR events -> OpenAI ``chat.completion.chunk`` SSE bytes, usage chunk last, then ``[DONE]``."""

    def __init__(self, meta: ir.StreamMeta, *, include_usage: bool) -> None:
        self._head = {
            "id": meta.id,
            "object": "chat.completion.chunk",
            "created": meta.created or int(time.time()),
            "model": meta.model,
        }
        if meta.system_fingerprint:
            self._head["system_fingerprint"] = meta.system_fingerprint
        self._include_usage = include_usage
        self._usage: ir.Usage | None = None
        self._started: set[int] = set()
        self._chars: dict[int, int] = {}  # text streamed so far, by choice (where an open citation ends)

    def _span(self, choice: int, c: ir.Citation) -> tuple[int, int]:
        end = self._chars.get(choice, 0)
        return (c.start if c.start is not None else 0), (c.end if c.end is not None else end)

    def chunk(self, ev: ir.StreamEvent) -> dict[str, Any] | None:
        """The chunk dict for one event (None when it only carries usage, which goes out last)."""
        if ev.usage is not None:
            self._usage = ev.usage
        delta: dict[str, Any] = {}
        if ev.choice not in self._started:
            self._started.add(ev.choice)
            delta["role"] = "assistant"
            if ev.text is None and ev.tool_calls is None and ev.reasoning is None and ev.refusal is None:
                delta["content"] = ""
        if ev.text is not None:
            delta["content"] = ev.text
        if ev.refusal is not None:
            delta["refusal"] = ev.refusal
        if ev.audio is not None:
            delta["audio"] = ev.audio
        if ev.reasoning is not None:
            delta["reasoning_content"] = ev.reasoning
        if ev.reasoning_signature is not None or ev.redacted_reasoning is not None:
            block: dict[str, Any]
            if ev.redacted_reasoning is not None:
                block = {"type": "redacted_thinking", "data": ev.redacted_reasoning}
            else:
                block = {"type": "thinking", "thinking": "", "signature": ev.reasoning_signature}
            delta["thinking_blocks"] = [block]
        if ev.tool_calls:
            delta["tool_calls"] = [_tool_delta_out(t) for t in ev.tool_calls]
        if ev.provider_part is not None:
            delta["provider_specific_fields"] = {
                "blocks": [ev.provider_part.block | {"provider": ev.provider_part.provider}]
            }
        if ev.citations:
            spans = [(*self._span(ev.choice, c), c) for c in ev.citations]
            annotations, others = citations.openai_out(spans)
            if annotations:
                delta["annotations"] = annotations
            if others:
                delta["provider_specific_fields"] = delta.get("provider_specific_fields", {}) | {"citations": others}
        if ev.text:
            self._chars[ev.choice] = self._chars.get(ev.choice, 0) + len(ev.text)
        if not delta and ev.finish_reason is None and ev.logprobs is None:
            return None
        choice: dict[str, Any] = {
            "index": ev.choice,
            "delta": delta,
            "logprobs": ev.logprobs,
            "finish_reason": ev.finish_reason,
        }
        native = native_finish_out(ev.native_finish_reason) if ev.finish_reason is not None else None
        if native is not None:
            choice["provider_specific_fields"] = native
        out = self._head | {"choices": [choice]}
        if self._include_usage:
            out["usage"] = None  # as OpenAI sends it: every chunk has the key, the last one the numbers
        return out

    def usage_chunk(self) -> dict[str, Any] | None:
        if not self._include_usage or self._usage is None:
            return None
        return self._head | {"choices": [], "usage": map_usage_out(self._usage)}

    def encode(self, ev: ir.StreamEvent) -> bytes:
        c = self.chunk(ev)
        return encode_event(dumps(c)) if c is not None else b""

    def close(self) -> bytes:
        u = self.usage_chunk()
        tail = encode_event(dumps(u)) if u is not None else b""
        return tail + b"data: [DONE]\n\n"


def _tool_delta_out(t: ir.ToolCallDelta) -> dict[str, Any]:
    d: dict[str, Any] = {"index": t.index}
    if t.custom:
        if t.id is not None:
            d["id"] = t.id
            d["type"] = "custom"
        custom: dict[str, Any] = {"input": t.arguments}
        if t.name is not None:
            custom["name"] = t.name
        d["custom"] = custom
        return d
    fn: dict[str, Any] = {"arguments": t.arguments}
    if t.id is not None:
        d["id"] = t.id
        d["type"] = "function"
    if t.name is not None:
        fn["name"] = t.name
    d["function"] = fn
    if t.provider_specific:
        d["provider_specific_fields"] = t.provider_specific
    return d
