"""Gemini ``streamGenerateContent`` streams: bytes -> IR events (client side) and back (server side).

Every streamed chunk is a whole ``GenerateContentResponse``: text and thoughts arrive as pieces, a
``functionCall`` arrives whole, ``usageMetadata`` is cumulative and ``finishReason`` comes on the
last chunk of a candidate. With ``?alt=sse`` the chunks are ``data: {...}`` events separated by
``\\r\\n\\r\\n`` and there is no ``[DONE]``; without it the body is one JSON array
(``[{...}\\n,\\r\\n{...}]``) that arrives split anywhere. :class:`StreamDecoder` reads both (it tells
them apart by the first byte); :class:`StreamEncoder` writes the ``alt=sse`` form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from llmswitch import ir
from llmswitch.dialects import citations
from llmswitch.dialects._json import dumps, loads_lenient
from llmswitch.dialects.gemini_errors import decode_error
from llmswitch.dialects.gemini_messages import get, parts_out, tool_call_id
from llmswitch.dialects.gemini_response import (
    candidate_metadata,
    created_from,
    encode_candidate,
    finish_reason_in,
    logprobs_in,
    map_usage_in,
    map_usage_out,
)
from llmswitch.dialects.sse import SSEParser
from llmswitch.errors import APIStatusError

_SPECIAL = re.compile(rb'[{}"\\]')


class JSONArrayScanner:
    """Cuts complete top-level JSON objects out of a stream of bytes (``[{...},{...}]``, split anywhere).

    Only braces and string boundaries are tracked, so it is linear in the bytes and never re-scans.

        >>> s = JSONArrayScanner()
        >>> s.feed(b'[{"a": "}"}, {"b"'), s.feed(b': 2}]')
        ([b'{"a": "}"}'], [b'{"b": 2}'])
    """

    __slots__ = ("_buf", "_depth", "_in_string", "_pos", "_start")

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0  # where scanning resumes in _buf
        self._depth = 0
        self._in_string = False
        self._start = 0  # where the current object began

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk
        out: list[bytes] = []
        pos, depth, in_string, start = self._pos, self._depth, self._in_string, self._start
        while True:
            m = _SPECIAL.search(buf, pos)
            if m is None:
                pos = len(buf)
                break
            i = m.start()
            c = buf[i]
            if in_string:
                if c == 0x5C:  # backslash: the next byte is escaped, whatever it is
                    if i + 1 >= len(buf):
                        pos = i
                        break
                    pos = i + 2
                    continue
                if c == 0x22:
                    in_string = False
            elif depth > 0 and c == 0x22:
                in_string = True
            elif c == 0x7B:
                if depth == 0:
                    start = i
                depth += 1
            elif c == 0x7D and depth > 0:
                depth -= 1
                if depth == 0:
                    out.append(buf[start : i + 1])
            pos = i + 1
        if depth == 0 and not in_string:
            # between objects only separators remain: nothing to keep
            self._buf, self._pos, self._start = b"", 0, 0
        else:
            self._buf, self._pos, self._start = buf[start:], pos - start, 0
        self._depth, self._in_string = depth, in_string
        return out

    @property
    def pending(self) -> bool:
        """Whether an object has started and not ended."""
        return self._depth > 0


class StreamDecoder:
    """``feed(bytes) -> [StreamEvent]``; raises the matching APIStatusError on an in-stream error.

    Tool-call ids are made as in ``gemini.decode_response``, so streamed and whole responses agree.
    """

    def __init__(self, *, provider: str | None = None, model: str | None = None) -> None:
        self.meta = ir.StreamMeta()
        self._provider = provider
        self._model = model
        self._mode: str | None = None  # "sse" or "json", decided by the first byte
        self._head = b""
        self._sse = SSEParser()
        self._scanner = JSONArrayScanner()
        self._calls: dict[int, int] = {}  # candidate -> function calls seen so far
        self._started: set[int] = set()
        self._usage: ir.Usage | None = None
        self._error: APIStatusError | None = None
        self._texts: dict[int, list[str]] = {}  # candidate -> its text so far (grounding's offsets are in it)
        self._told: dict[int, set[tuple[Any, ...]]] = {}  # candidate -> citations already decoded

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        return self._guarded(self._feed, chunk)

    def close(self) -> list[ir.StreamEvent]:
        return self._guarded(self._close, b"")

    def _guarded(self, step: Callable[[bytes, list[ir.StreamEvent]], None], chunk: bytes) -> list[ir.StreamEvent]:
        # an error object ends the stream, but the events decoded before it in the same bytes still go
        # out first (the error is raised on the next call): what a client sees does not depend on splits
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        out: list[ir.StreamEvent] = []
        try:
            step(chunk, out)
        except APIStatusError as exc:
            if not out:
                raise
            self._error = exc
        return out

    def _feed(self, chunk: bytes, out: list[ir.StreamEvent]) -> None:
        if self._mode is None:
            self._head += chunk
            lead = self._head.lstrip()
            if not lead:
                return
            self._mode = "json" if lead[:1] in (b"[", b"{") else "sse"
            chunk, self._head = self._head, b""
        if self._mode == "sse":
            for ev in self._sse.feed(chunk):
                self._data(ev.data, out)
        else:
            for raw in self._scanner.feed(chunk):
                self._data(raw, out)

    def _close(self, _: bytes, out: list[ir.StreamEvent]) -> None:
        if self._mode == "sse":
            for ev in self._sse.close():
                self._data(ev.data, out)

    def _data(self, data: str | bytes, out: list[ir.StreamEvent]) -> None:
        c = loads_lenient(data)
        if isinstance(c, list):
            for item in c:
                if isinstance(item, dict):
                    self._chunk(item, out)
        elif isinstance(c, dict):
            self._chunk(c, out)

    def _chunk(self, c: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        if c.get("error"):
            raise decode_error(200, dumps(c), provider=self._provider, model=self._model)
        meta = self.meta
        if not meta.id and c.get("responseId"):
            meta.id = str(c["responseId"])
            meta.model = str(c.get("modelVersion") or "")
            meta.created = created_from(c.get("createTime"))
        rid = str(c.get("responseId") or meta.id)
        first = len(out)
        for pos, cand in enumerate(c.get("candidates") or ()):
            if isinstance(cand, dict):
                self._candidate(cand, pos, rid, out)
        feedback = c.get("promptFeedback")
        if not c.get("candidates") and isinstance(feedback, dict) and feedback.get("blockReason"):
            block = str(feedback["blockReason"])
            out.append(
                ir.StreamEvent(
                    role="assistant",
                    finish_reason="content_filter",
                    native_finish_reason=block,
                    provider_specific={"promptFeedback": feedback},
                )
            )
        um = c.get("usageMetadata")
        if isinstance(um, dict):
            usage = map_usage_in(um)
            if usage != self._usage:
                self._usage = usage
                # usage rides on the chunk's last event, as it rode on the chunk
                if len(out) > first and out[-1].usage is None:
                    out[-1].usage = usage
                else:
                    out.append(ir.StreamEvent(usage=usage))

    def _candidate(self, cand: dict[str, Any], pos: int, rid: str, out: list[ir.StreamEvent]) -> None:
        ci = int(cand.get("index", pos))
        events: list[ir.StreamEvent] = []
        for p in (cand.get("content") or {}).get("parts") or ():
            if not isinstance(p, dict):
                continue
            sig = get(p, "thoughtSignature")
            text = p.get("text")
            fc = get(p, "functionCall")
            if isinstance(text, str):
                if p.get("thought"):
                    if text or sig:
                        events.append(ir.StreamEvent(choice=ci, reasoning=text, reasoning_signature=sig))
                elif text or sig:
                    events.append(ir.StreamEvent(choice=ci, text=text, reasoning_signature=sig))
                    self._texts.setdefault(ci, []).append(text)
            elif isinstance(fc, dict):
                n = self._calls.get(ci, 0)
                self._calls[ci] = n + 1
                name = str(fc.get("name") or "")
                arguments = dumps(fc.get("args") or {}).decode()
                native = fc.get("id")
                delta = ir.ToolCallDelta(
                    index=n,
                    id=native
                    if isinstance(native, str) and native
                    else tool_call_id(f"{rid}:{ci}:{n}:{name}:{arguments}"),
                    name=name,
                    arguments=arguments,
                    provider_specific={"thought_signature": sig} if sig else None,
                )
                events.append(ir.StreamEvent(choice=ci, tool_calls=[delta]))
            else:
                events.append(ir.StreamEvent(choice=ci, provider_part=ir.ProviderPart(provider="gemini", block=p)))
        logprobs = logprobs_in(cand.get("logprobsResult"))
        if logprobs is not None:
            if not events:
                events.append(ir.StreamEvent(choice=ci))
            events[-1].logprobs = logprobs
        native_finish = cand.get("finishReason")
        metadata = candidate_metadata(cand)
        if native_finish or metadata:
            if not events:
                events.append(ir.StreamEvent(choice=ci))
            last = events[-1]
            last.finish_reason = finish_reason_in(native_finish, has_calls=self._calls.get(ci, 0) > 0)
            last.native_finish_reason = native_finish
            last.provider_specific = metadata
            if metadata is not None and ("groundingMetadata" in metadata or "citationMetadata" in metadata):
                text = "".join(self._texts.get(ci, ()))
                told = self._told.setdefault(ci, set())
                fresh = []
                for c in citations.gemini_in(metadata, [text])[0]:
                    key = (c.start, c.end, c.url, c.title)
                    if key not in told:  # metadata repeated on a later chunk is told once
                        told.add(key)
                        fresh.append(c)
                last.citations = fresh or None
        if events and ci not in self._started:
            self._started.add(ci)
            events[0].role = "assistant"
        out.extend(events)


class _PendingCall:
    __slots__ = ("arguments", "id", "name", "provider_specific")

    def __init__(self, d: ir.ToolCallDelta) -> None:
        self.id = d.id
        self.name = d.name or ""
        self.arguments = d.arguments
        self.provider_specific = d.provider_specific


class StreamEncoder:
    """IR events -> Gemini ``alt=sse`` bytes: ``data: {GenerateContentResponse}\\r\\n\\r\\n`` each, no ``[DONE]``.

    Every chunk carries the cumulative ``usageMetadata`` known so far (when ``include_usage``). A
    streamed tool call (fragments from OpenAI or Anthropic) goes out whole, as soon as its arguments
    form a complete JSON object. The chunk with a ``finishReason`` is held until the next event so
    that a usage report that follows it (OpenAI sends usage last) rides on it, as Gemini's does.
    """

    def __init__(self, meta: ir.StreamMeta, *, include_usage: bool = True) -> None:
        self._tail = {"modelVersion": meta.model, "responseId": meta.id}
        self._include_usage = include_usage
        self._usage: ir.Usage | None = None
        self._usage_sent: ir.Usage | None = None
        self._calls: dict[int, dict[int, _PendingCall]] = {}
        self._sent_calls: set[tuple[int, int]] = set()  # (choice, index) of calls already written
        self._held: dict[str, Any] | None = None
        # by choice: text so far, and other providers' citations and web searches not yet told
        self._texts: dict[int, list[str]] = {}
        self._cites: dict[int, list[ir.Citation]] = {}
        self._queries: dict[int, list[str]] = {}

    def encode(self, ev: ir.StreamEvent) -> bytes:
        if ev.usage is not None:
            self._usage = ev.usage
        if ev.refusal is not None:
            # Gemini has no refusal of its own: the client sees what the model said as text
            ev = msgspec.structs.replace(ev, text=(ev.text or "") + ev.refusal, refusal=None)
        feedback = (ev.provider_specific or {}).get("promptFeedback")
        if feedback is not None:
            # a prompt blocked before any candidate: Gemini says so with promptFeedback alone
            return self._flush_held() + self._frame({"promptFeedback": feedback})
        cand = self._candidate(ev)
        if cand is None:
            return b""
        out = self._flush_held()
        chunk = {"candidates": [cand]}
        if "finishReason" in cand:
            self._held = chunk
            return out
        return out + self._frame(chunk)

    def close(self) -> bytes:
        out = b""
        for choice in list(self._calls):
            parts = self._take_calls(choice, done=True)
            if parts:
                out += self._flush_held() + self._frame(
                    {"candidates": [{"content": {"parts": parts, "role": "model"}, "index": choice}]}
                )
        for choice in sorted(set(self._cites) | set(self._queries)):
            meta = self._grounding(choice, None)
            if meta is not None:
                out += self._flush_held() + self._frame({"candidates": [{"index": choice, **meta}]})
        out += self._flush_held()
        if self._include_usage and self._usage is not None and self._usage != self._usage_sent:
            out += self._frame({})
        return out

    def _candidate(self, ev: ir.StreamEvent) -> dict[str, Any] | None:
        wire: list[dict[str, Any]] = []
        sig = ev.reasoning_signature
        # a signature with no text of its own ends a thought (Anthropic's signature_delta); one that
        # comes with text (even "") belongs to that visible text, as Gemini puts it
        if ev.reasoning or (sig and ev.text is None):
            thought: dict[str, Any] = {"text": ev.reasoning or "", "thought": True}
            if sig:
                thought["thoughtSignature"] = sig
                sig = None
            wire.append(thought)
        if ev.text or (sig and ev.text is not None):
            wire.append({"text": ev.text, "thoughtSignature": sig} if sig else {"text": ev.text})
        if ev.provider_part is not None:
            wire.extend(parts_out([ev.provider_part]))
            self._queries.setdefault(ev.choice, []).extend(citations.search_queries([ev.provider_part]))
        if ev.text:
            self._texts.setdefault(ev.choice, []).append(ev.text)
        if ev.citations:
            self._cites.setdefault(ev.choice, []).extend(ev.citations)
        for d in ev.tool_calls or ():
            self._add_call(ev.choice, d)
        wire += self._take_calls(ev.choice, done=ev.finish_reason is not None)
        meta = ev.provider_specific
        if ev.finish_reason is not None:
            meta = self._grounding(ev.choice, meta)
        cand = encode_candidate(ev.choice, [], ev.finish_reason, ev.native_finish_reason, meta, ev.logprobs)
        if wire:
            cand = {"content": {"parts": wire, "role": "model"}, **cand}
        if len(cand) == 1:  # only the index: nothing to say
            return None
        return cand

    def _grounding(self, choice: int, meta: dict[str, Any] | None) -> dict[str, Any] | None:
        """``meta`` with the grounding of the choice's citations from other providers, told once, at its end
        (where Gemini tells its own)."""
        cites, queries = self._cites.pop(choice, []), self._queries.pop(choice, [])
        if meta is not None and "groundingMetadata" in meta:
            return meta
        text = "".join(self._texts.get(choice, ()))
        spans = [(c.start or 0, len(text) if c.end is None else c.end, c) for c in cites]
        gm = citations.gemini_out(text, spans, queries)
        return meta if gm is None else {**(meta or {}), "groundingMetadata": gm}

    def _add_call(self, choice: int, d: ir.ToolCallDelta) -> None:
        if (choice, d.index) in self._sent_calls:
            return  # a complete JSON object can only be followed by whitespace: nothing left to say
        calls = self._calls.setdefault(choice, {})
        pending = calls.get(d.index)
        if pending is None:
            calls[d.index] = _PendingCall(d)
        else:
            pending.arguments += d.arguments
            pending.name = pending.name or d.name or ""
            pending.provider_specific = pending.provider_specific or d.provider_specific

    def _take_calls(self, choice: int, *, done: bool) -> list[dict[str, Any]]:
        """The function-call parts of calls whose arguments are complete (all of them when ``done``)."""
        calls = self._calls.get(choice)
        if not calls:
            return []
        ready = []
        for index in sorted(calls):
            call = calls[index]
            if done or isinstance(loads_lenient(call.arguments or "null"), dict):
                ready.append(index)
        parts = []
        for index in ready:
            call = calls.pop(index)
            self._sent_calls.add((choice, index))
            tc = ir.ToolCallPart(
                id=call.id or "", name=call.name, arguments=call.arguments, provider_specific=call.provider_specific
            )
            parts.extend(parts_out([tc]))
        if not calls:
            del self._calls[choice]
        return parts

    def _flush_held(self) -> bytes:
        held, self._held = self._held, None
        return self._frame(held) if held is not None else b""

    def _frame(self, chunk: dict[str, Any]) -> bytes:
        if self._include_usage and self._usage is not None:
            chunk["usageMetadata"] = map_usage_out(self._usage)
            self._usage_sent = self._usage
        chunk.update(self._tail)
        return b"data: " + dumps(chunk) + b"\r\n\r\n"
