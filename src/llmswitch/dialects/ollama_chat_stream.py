"""Ollama's ``/api/chat`` stream: NDJSON lines (``application/x-ndjson``) -> IR events.

Each line is a whole object: a message delta (``content``, ``thinking``, whole ``tool_calls``) with
``done: false``, and last one with ``done: true``, ``done_reason`` and the token counts. A line
``{"error": "..."}`` inside the 200 stream raises, after the events decoded before it.

    >>> d = StreamDecoder(provider="ollama")
    >>> [e.text for e in d.feed(b'{"message":{"role":"assistant","content":"Hi"},"done":false}\\n')]
    ['Hi']
"""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import loads_lenient
from llmswitch.dialects.ollama_chat import (
    finish_reason_in,
    logprobs_in,
    map_tool_calls_in,
    map_usage_in,
    response_id,
)
from llmswitch.dialects.openai_errors import decode_error
from llmswitch.errors import APIStatusError


class StreamDecoder:
    """``feed(bytes) -> [StreamEvent]`` over NDJSON lines split anywhere."""

    def __init__(self, *, provider: str | None = None, model: str | None = None) -> None:
        self.meta = ir.StreamMeta()
        self._provider = provider
        self._model = model
        self._buf = b""
        self._calls = 0
        self._pending: APIStatusError | None = None
        self._seen = False

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        if self._pending is not None:
            raise self._pending
        self._buf += chunk
        lines = self._buf.split(b"\n")
        self._buf = lines.pop()
        return self._run(lines)

    def close(self) -> list[ir.StreamEvent]:
        rest, self._buf = self._buf, b""
        out = self._run([rest])
        if self._pending is not None:
            raise self._pending
        return out

    def _run(self, lines: list[bytes]) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                self._line(line, out)
            except APIStatusError as exc:
                if not out:
                    raise
                # raised on the next call, so what a caller sees does not depend on how bytes were split
                self._pending = exc
                break
        return out

    def _line(self, line: bytes, out: list[ir.StreamEvent]) -> None:
        c = loads_lenient(line)
        if not isinstance(c, dict):
            return
        if c.get("error"):
            raise decode_error(500, line, provider=self._provider, model=self._model)
        if not self.meta.id:
            self.meta.id = response_id(c)
            self.meta.model = str(c.get("model") or "")
        msg: dict[str, Any] = c.get("message") or {}
        ev = ir.StreamEvent()
        if msg.get("role") == "assistant" and not self._seen:
            ev.role = "assistant"
        if msg.get("thinking"):
            ev.reasoning = str(msg["thinking"])
        if msg.get("content"):
            ev.text = str(msg["content"])
        calls = map_tool_calls_in(msg.get("tool_calls") or [], self._calls)
        if calls:
            ev.tool_calls = [
                ir.ToolCallDelta(index=self._calls + k, id=p.id, name=p.name, arguments=p.arguments)
                for k, p in enumerate(calls)
            ]
            self._calls += len(calls)
        if isinstance(c.get("logprobs"), list) and c["logprobs"]:
            ev.logprobs = logprobs_in(c["logprobs"])
        if c.get("done"):
            native = c.get("done_reason")
            ev.finish_reason = finish_reason_in(native or "stop", self._calls > 0)
            ev.native_finish_reason = native
            ev.usage = map_usage_in(c)
        if ev != ir.StreamEvent():
            out.append(ev)
        self._seen = True
