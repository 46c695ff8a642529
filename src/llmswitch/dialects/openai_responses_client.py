"""OpenAI's Responses API as a client: chat requests (IR) sent as Responses requests, answers and typed
stream events read back into IR. For OpenAI deployments set to ``use_responses_api`` (and the
``openai/responses/<model>`` route), as the models that exist only there need.

The mapping is :mod:`llmswitch.dialects.openai_responses`' read backwards: system and developer messages
become ``instructions``; user and assistant turns ``message`` items (``input_text``/``input_image``/
``input_file``, ``output_text``); an assistant's tool calls ``function_call`` items and tool results
``function_call_output`` items; tools flat ``function`` tools; ``response_format`` ``text.format``;
``max_tokens`` ``max_output_tokens``; ``reasoning_effort`` ``reasoning.effort``. Requests are sent with
``store: false``: the gateway keeps no state at OpenAI on a chat caller's behalf.

    >>> req = ir.Request(model="m", messages=[ir.Message(role="system", content=[ir.TextPart(text="Be brief.")]),
    ...                                      ir.Message(role="user", content=[ir.TextPart(text="Hi")])])
    >>> encode_request(req, model="o3-pro")["instructions"]
    'Be brief.'
"""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import invalid, loads_lenient
from llmswitch.dialects.openai_chat import decode_error
from llmswitch.dialects.openai_chat_stream import StreamDecoder as ChatStreamDecoder

_FINISH_FOR_INCOMPLETE: dict[str, ir.FinishReason] = {"max_output_tokens": "length", "content_filter": "content_filter"}


def encode_request(req: ir.Request, *, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "store": False}
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    for i, m in enumerate(req.messages):
        if m.role in ("system", "developer"):
            instructions.extend(p.text for p in m.content if isinstance(p, ir.TextPart))
            continue
        if m.role == "tool":
            for p in m.content:
                if isinstance(p, ir.ToolResultPart):
                    text = "".join(c.text for c in p.content if isinstance(c, ir.TextPart))
                    items.append({"type": "function_call_output", "call_id": p.tool_call_id, "output": text})
            continue
        content: list[dict[str, Any]] = []
        for j, p in enumerate(m.content):
            if isinstance(p, ir.TextPart):
                content.append({"type": "output_text" if m.role == "assistant" else "input_text", "text": p.text})
            elif isinstance(p, ir.ImagePart):
                url = p.url or f"data:{p.media_type or 'image/png'};base64,{p.data}"
                image: dict[str, Any] = {"type": "input_image", "image_url": url}
                if p.detail:
                    image["detail"] = p.detail
                content.append(image)
            elif isinstance(p, ir.FilePart):
                file: dict[str, Any] = {"type": "input_file"}
                if p.file_id:
                    file["file_id"] = p.file_id
                elif p.data:
                    file["file_data"] = f"data:{p.media_type or 'application/pdf'};base64,{p.data}"
                    file["filename"] = p.filename or "document.pdf"
                else:
                    raise invalid(f"messages[{i}].content[{j}]", "the Responses API takes files as data or by file id")
                content.append(file)
            elif isinstance(p, ir.ToolCallPart):
                if content:
                    items.append(_message(m.role, content))
                    content = []
                items.append(
                    {"type": "function_call", "call_id": p.id, "name": p.name, "arguments": p.arguments or "{}"}
                )
            elif isinstance(p, ir.ToolResultPart):
                text = "".join(c.text for c in p.content if isinstance(c, ir.TextPart))
                items.append({"type": "function_call_output", "call_id": p.tool_call_id, "output": text})
        if content:
            items.append(_message(m.role, content))
    if instructions:
        body["instructions"] = "\n\n".join(instructions)
    body["input"] = items
    if req.tools:
        # strict said always: a chat caller's tools are not strict unless asked, the Responses API's are
        body["tools"] = [
            {k: v for k, v in (("type", "function"), ("name", t.name), ("description", t.description),
                               ("parameters", t.parameters or {"type": "object"}), ("strict", bool(t.strict))) if v is not None}
            for t in req.tools
        ]  # fmt: skip
    tc = req.tool_choice
    if tc is not None:
        body["tool_choice"] = {"type": "function", "name": tc.name} if tc.mode == "tool" else tc.mode
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    rf = req.response_format
    if rf is not None and rf.type != "text":
        fmt: dict[str, Any] = {"type": rf.type}
        if rf.type == "json_schema":
            fmt.update({"name": rf.name or "response", "schema": rf.schema or {"type": "object"}})
            if rf.strict is not None:
                fmt["strict"] = rf.strict
        body["text"] = {"format": fmt}
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    for key in ("temperature", "top_p", "user", "metadata"):
        value = getattr(req, key)
        if value is not None:
            body[key] = value
    if req.reasoning_effort is not None:
        body["reasoning"] = {"effort": req.reasoning_effort}
    if req.stream:
        body["stream"] = True
    return body


def _message(role: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    """A message item; text alone as a string (the easy form, which the API's schema reads one way only)."""
    if all(c["type"] in ("input_text", "output_text") for c in content):
        return {"type": "message", "role": role, "content": "\n".join(c["text"] for c in content)}
    return {"type": "message", "role": role, "content": content}


def decode_usage(raw: Any) -> ir.Usage | None:
    if not isinstance(raw, dict):
        return None
    cached = (raw.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (raw.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    return ir.Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        cache_read_tokens=int(cached),
        reasoning_tokens=int(reasoning),
        reasoning_reported=True,
    )


def _finish(data: dict[str, Any], has_calls: bool) -> ir.FinishReason:
    if data.get("status") == "incomplete":
        reason = (data.get("incomplete_details") or {}).get("reason")
        return _FINISH_FOR_INCOMPLETE.get(str(reason), "length")
    return "tool_calls" if has_calls else "stop"


def decode_response(data: dict[str, Any]) -> ir.Response:
    parts: list[ir.Part] = []
    for item in data.get("output") or []:
        kind = item.get("type")
        if kind == "message":
            for c in item.get("content") or []:
                if c.get("type") == "output_text":
                    parts.append(ir.TextPart(text=c.get("text", "")))
                elif c.get("type") == "refusal":
                    parts.append(ir.TextPart(text=c.get("refusal", ""), refusal=True))
        elif kind == "function_call":
            parts.append(
                ir.ToolCallPart(
                    id=item.get("call_id", ""), name=item.get("name", ""), arguments=item.get("arguments") or "{}"
                )
            )
        elif kind == "reasoning":
            summary = "".join(s.get("text", "") for s in item.get("summary") or [])
            if summary:
                parts.append(ir.ReasoningPart(text=summary))
    has_calls = any(isinstance(p, ir.ToolCallPart) for p in parts)
    finish = _finish(data, has_calls)
    choice = ir.Choice(parts=parts, finish_reason=finish, native_finish_reason=data.get("status"))
    return ir.Response(
        id=str(data.get("id", "")),
        model=str(data.get("model", "")),
        created=int(data.get("created_at") or 0),
        choices=[choice],
        usage=decode_usage(data.get("usage")),
    )


class StreamDecoder(ChatStreamDecoder):
    """The Responses API's typed events as IR stream events (the SSE reading and the in-stream error
    ordering are the chat decoder's; only the events differ)."""

    def __init__(self, *, provider: str | None = "openai", model: str | None = None) -> None:
        super().__init__(provider=provider, model=model)
        self._calls: dict[int, int] = {}  # output index -> tool call index

    def _event(self, name: str | None, data: str, out: list[ir.StreamEvent]) -> None:
        ev = loads_lenient(data)
        if not isinstance(ev, dict):
            return
        kind = ev.get("type")
        if kind == "response.created":
            r = ev.get("response") or {}
            self.meta.id, self.meta.model = str(r.get("id", "")), str(r.get("model", ""))
            self.meta.created = int(r.get("created_at") or 0)
            out.append(ir.StreamEvent(role="assistant"))
        elif kind == "response.output_text.delta":
            out.append(ir.StreamEvent(text=str(ev.get("delta", ""))))
        elif kind == "response.refusal.delta":
            out.append(ir.StreamEvent(refusal=str(ev.get("delta", ""))))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            out.append(ir.StreamEvent(reasoning=str(ev.get("delta", ""))))
        elif kind == "response.output_item.added" and (ev.get("item") or {}).get("type") == "function_call":
            item = ev["item"]
            index = self._calls[ev.get("output_index", 0)] = len(self._calls)
            out.append(
                ir.StreamEvent(
                    tool_calls=[ir.ToolCallDelta(index=index, id=item.get("call_id"), name=item.get("name"))]
                )
            )
        elif kind == "response.function_call_arguments.delta":
            index = self._calls.get(ev.get("output_index", 0), 0)
            out.append(ir.StreamEvent(tool_calls=[ir.ToolCallDelta(index=index, arguments=str(ev.get("delta", "")))]))
        elif kind in ("response.completed", "response.incomplete"):
            r = ev.get("response") or {}
            self.done = True
            out.append(
                ir.StreamEvent(
                    finish_reason=_finish(r, bool(self._calls)),
                    native_finish_reason=r.get("status"),
                    usage=decode_usage(r.get("usage")),
                )
            )
        elif kind in ("response.failed", "error"):
            r = ev.get("response") or ev
            err = r.get("error") or {"message": str(r.get("message") or "the response failed")}
            body = {"error": {"message": err.get("message"), "type": "server_error", "code": err.get("code")}}
            from llmswitch.dialects._json import dumps

            raise decode_error(500, dumps(body), provider=self._provider, model=self._model)
