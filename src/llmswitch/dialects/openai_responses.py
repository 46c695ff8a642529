"""OpenAI's Responses API as a server speaks it: ``POST /v1/responses`` requests read into IR, answers
written as Response objects, streams as its typed events.

A request is read by mapping it onto the Chat Completions request it means and decoding that
(:mod:`llmswitch.dialects.openai_request` validates it): ``instructions`` become the system message;
``input`` (a string, or items) becomes messages — ``message`` items with ``input_text`` /
``input_image`` / ``input_file`` / ``output_text`` parts, ``function_call`` items an assistant's tool calls,
``function_call_output`` items tool results; flat ``function`` tools, ``tool_choice``, ``text.format``
(structured outputs), ``max_output_tokens``, ``reasoning.effort``, sampling settings. ``reasoning`` items
in ``input`` carry summaries only a provider's own API can use again, and are not sent on. A field this
reading has no place for is refused with a 400 naming it.

    >>> req = decode_request({"model": "m", "input": "Hi", "instructions": "Be brief."})
    >>> [(m.role, m.content[0].text) for m in req.messages]
    [('system', 'Be brief.'), ('user', 'Hi')]
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import dumps, invalid
from llmswitch.dialects.openai_errors import encode_error
from llmswitch.dialects.openai_request import decode_request as decode_chat_request

# fields of a Responses request that ask nothing the gateway must act on (or that it keeps itself)
_IGNORED = frozenset(
    (
        "store", "include", "truncation", "service_tier", "prompt_cache_key", "prompt_cache_retention",
        "safety_identifier", "background", "previous_response_id", "stream_options", "top_logprobs",
        "max_tool_calls", "conversation",
    )
)  # fmt: skip
_PASSED = {
    "model": "model", "temperature": "temperature", "top_p": "top_p", "parallel_tool_calls": "parallel_tool_calls",
    "metadata": "metadata", "user": "user", "stream": "stream", "max_output_tokens": "max_completion_tokens",
}  # fmt: skip


def decode_request(body: dict[str, Any]) -> ir.Request:
    """A Responses request as IR (``previous_response_id`` is the caller's to resolve: see the gateway)."""
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    chat: dict[str, Any] = {}
    for key, value in body.items():
        if key in _PASSED:
            chat[_PASSED[key]] = value
        elif key in ("input", "instructions", "tools", "tool_choice", "text", "reasoning") or key in _IGNORED:
            continue
        else:
            raise invalid(key, f"'{key}' is not a parameter of the Responses API that llmswitch serves")
    if "model" not in chat:
        raise invalid("model", "missing required parameter 'model'")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise invalid("instructions", "must be a string")
        messages.append({"role": "system", "content": instructions})
    messages.extend(input_messages(body.get("input")))
    chat["messages"] = messages
    if body.get("tools"):
        chat["tools"] = _tools_in(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice_in(body["tool_choice"])
    text = body.get("text")
    if isinstance(text, dict) and isinstance(text.get("format"), dict):
        fmt = text["format"]
        if fmt.get("type") == "json_schema":
            js = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
            chat["response_format"] = {"type": "json_schema", "json_schema": js}
        elif fmt.get("type") == "json_object":
            chat["response_format"] = {"type": "json_object"}
        elif fmt.get("type") not in (None, "text"):
            raise invalid("text.format.type", f"unknown format type {fmt.get('type')!r}")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}
    return decode_chat_request(chat)


def input_messages(raw: Any) -> list[dict[str, Any]]:
    """Responses ``input`` as Chat Completions messages."""
    if raw is None:
        raise invalid("input", "missing required parameter 'input'")
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise invalid("input", "must be a string or a list of input items")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise invalid(where, "must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise invalid(f"{where}.role", f"unknown role {role!r}")
            out.append({"role": role, "content": _content_in(item.get("content"), where)})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id") or item.get("id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"},
            }
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            elif last is not None and last["role"] == "assistant" and not last.get("tool_calls"):
                last["tool_calls"] = [call]
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            content = output if isinstance(output, str) else _content_in(output, where)
            out.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": content})
        elif kind == "reasoning":
            continue  # summaries (and encrypted content) only the provider's own Responses API reads again
        else:
            raise invalid(f"{where}.type", f"input items of type {kind!r} are not served")
    return out


def _content_in(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(f"{where}.content", "must be a string or a list of content parts")
    parts: list[dict[str, Any]] = []
    for j, p in enumerate(content):
        kind = p.get("type") if isinstance(p, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": p.get("text", "")})
        elif kind == "input_image":
            url = p.get("image_url")
            if not url:
                raise invalid(f"{where}.content[{j}].image_url", "an input image needs an image_url")
            image = {"url": url}
            if p.get("detail"):
                image["detail"] = p["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            file = {k: p[k] for k in ("file_data", "file_id", "filename") if p.get(k)}
            parts.append({"type": "file", "file": file})
        elif kind == "refusal":
            parts.append({"type": "text", "text": p.get("refusal", "")})
        else:
            raise invalid(f"{where}.content[{j}].type", f"content parts of type {kind!r} are not served")
    return parts


def _tools_in(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise invalid("tools", "must be a list")
    out = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict) or t.get("type") != "function":
            kind = t.get("type") if isinstance(t, dict) else None
            raise invalid(f"tools[{i}].type", f"tools of type {kind!r} are not served; function tools are")
        fn = {k: t[k] for k in ("name", "description", "parameters", "strict") if t.get(k) is not None}
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice_in(raw: Any) -> Any:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict) and raw.get("type") == "function":
        return {"type": "function", "function": {"name": raw.get("name")}}
    raise invalid("tool_choice", "must be 'auto', 'none', 'required' or a function")


# ---------------------------------------------------------------- answers


def response_id(resp_id: str) -> str:
    return resp_id if resp_id.startswith("resp_") else f"resp_{resp_id or uuid.uuid4().hex}"


def usage_out(u: ir.Usage | None) -> dict[str, Any] | None:
    if u is None:
        return None
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def _status(finish: ir.FinishReason | None) -> tuple[str, dict[str, Any] | None]:
    if finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def output_items(parts: list[ir.Part], rid: str) -> list[dict[str, Any]]:
    """A choice's parts as Response output items: reasoning, the message, function calls, in order."""
    items: list[dict[str, Any]] = []
    text = "".join(p.text for p in parts if isinstance(p, ir.TextPart) and not p.refusal)
    refusal = "".join(p.text for p in parts if isinstance(p, ir.TextPart) and p.refusal)
    reasoning = "".join(p.text for p in parts if isinstance(p, ir.ReasoningPart))
    if reasoning:
        items.append({"id": f"rs_{rid}", "type": "reasoning", "summary": [{"type": "summary_text", "text": reasoning}]})
    if text or refusal or not any(isinstance(p, ir.ToolCallPart) for p in parts):
        content: list[dict[str, Any]] = []
        if text or not refusal:
            content.append({"type": "output_text", "text": text, "annotations": []})
        if refusal:
            content.append({"type": "refusal", "refusal": refusal})
        items.append(
            {"id": f"msg_{rid}", "type": "message", "status": "completed", "role": "assistant", "content": content}
        )
    for i, p in enumerate(parts):
        if isinstance(p, ir.ToolCallPart):
            items.append(
                {"id": f"fc_{rid}_{i}", "type": "function_call", "status": "completed", "call_id": p.id,
                 "name": p.name, "arguments": p.arguments or "{}"}
            )  # fmt: skip
    return items


def encode_response(resp: ir.Response, request: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Response object (``request``: the caller's body, whose settings a Response echoes)."""
    choice = resp.choices[0] if resp.choices else ir.Choice()
    rid = response_id(resp.id)
    status, incomplete = _status(choice.finish_reason)
    return shell(rid, resp.model, resp.created or int(time.time()), request, status) | {
        "incomplete_details": incomplete,
        "output": output_items(choice.parts, rid.removeprefix("resp_")),
        "usage": usage_out(resp.usage),
    }


def shell(rid: str, model: str, created: int, request: dict[str, Any] | None, status: str) -> dict[str, Any]:
    """The fields every Response object carries, echoing the request's settings."""
    r = request or {}
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": r.get("instructions"),
        "max_output_tokens": r.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": r.get("parallel_tool_calls", True),
        "previous_response_id": r.get("previous_response_id"),
        "reasoning": {"effort": (r.get("reasoning") or {}).get("effort"), "summary": None},
        "store": r.get("store", True),
        "temperature": r.get("temperature"),
        "text": r.get("text") or {"format": {"type": "text"}},
        "tool_choice": r.get("tool_choice", "auto"),
        "tools": r.get("tools") or [],
        "top_p": r.get("top_p"),
        "truncation": r.get("truncation", "disabled"),
        "usage": None,
        "user": r.get("user"),
        "metadata": r.get("metadata") or {},
    }


# ---------------------------------------------------------------- streams


class StreamEncoder:
    """IR stream events as the Responses API's typed SSE events (``response.created`` …
    ``response.completed``), numbered by ``sequence_number``. ``response`` is the finished Response."""

    def __init__(
        self, meta: ir.StreamMeta, *, include_usage: bool = True, request: dict[str, Any] | None = None
    ) -> None:
        self.meta = meta
        self.request = request
        self.rid = response_id(meta.id)
        self._key = self.rid.removeprefix("resp_")
        self._seq = 0
        self._started = False
        self._items: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish: ir.FinishReason | None = None
        self._usage: ir.Usage | None = None
        self.response: dict[str, Any] | None = None

    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        data = {"type": kind, **payload, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + dumps(data) + b"\n\n"

    def _shell(self, status: str) -> dict[str, Any]:
        return shell(self.rid, self.meta.model, self.meta.created or int(time.time()), self.request, status)

    def _begin(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._event("response.created", {"response": self._shell("in_progress")}) + self._event(
            "response.in_progress", {"response": self._shell("in_progress")}
        )

    def _close_open(self) -> bytes:
        item = self._open
        if item is None:
            return b""
        self._open = None
        index = self._items.index(item)
        out = b""
        if item["type"] == "message":
            part = item["content"][0]
            common = {"item_id": item["id"], "output_index": index, "content_index": 0}
            if part["type"] == "refusal":
                out += self._event("response.refusal.done", {**common, "refusal": part["refusal"]})
            else:
                out += self._event("response.output_text.done", {**common, "text": part["text"], "logprobs": []})
            out += self._event("response.content_part.done", {**common, "part": part})
        elif item["type"] == "reasoning":
            part = item["summary"][0]
            common = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            out += self._event("response.reasoning_summary_text.done", {**common, "text": part["text"]})
            out += self._event("response.reasoning_summary_part.done", {**common, "part": part})
        item["status"] = "completed"
        return out + self._event("response.output_item.done", {"output_index": index, "item": item})

    def _add(self, item: dict[str, Any]) -> bytes:
        self._items.append(item)
        self._open = item
        return self._event("response.output_item.added", {"output_index": len(self._items) - 1, "item": dict(item)})

    def encode(self, ev: ir.StreamEvent) -> bytes:
        out = self._begin()
        if ev.reasoning:
            if self._open is None or self._open["type"] != "reasoning":
                out += self._close_open() + self._add(
                    {"id": f"rs_{self._key}_{len(self._items)}", "type": "reasoning", "summary": []}
                )
                assert self._open is not None
                self._open["summary"] = [{"type": "summary_text", "text": ""}]
                out += self._event(
                    "response.reasoning_summary_part.added",
                    {"item_id": self._open["id"], "output_index": len(self._items) - 1, "summary_index": 0,
                     "part": {"type": "summary_text", "text": ""}},
                )  # fmt: skip
            self._open["summary"][0]["text"] += ev.reasoning
            out += self._event(
                "response.reasoning_summary_text.delta",
                {"item_id": self._open["id"], "output_index": len(self._items) - 1, "summary_index": 0, "delta": ev.reasoning},
            )  # fmt: skip
        if ev.text:
            if self._open is None or self._open["type"] != "message":
                item: dict[str, Any] = {"id": f"msg_{self._key}_{len(self._items)}", "type": "message",
                                        "status": "in_progress", "role": "assistant", "content": []}  # fmt: skip
                out += self._close_open() + self._add(item)
                part = {"type": "output_text", "text": "", "annotations": []}
                item["content"] = [part]
                out += self._event(
                    "response.content_part.added",
                    {"item_id": item["id"], "output_index": len(self._items) - 1, "content_index": 0, "part": dict(part)},
                )  # fmt: skip
            assert self._open is not None
            self._open["content"][0]["text"] += ev.text
            out += self._event(
                "response.output_text.delta",
                {"item_id": self._open["id"], "output_index": self._items.index(self._open), "content_index": 0,
                 "delta": ev.text, "logprobs": []},
            )  # fmt: skip
        if ev.refusal:
            out += self._refusal(ev.refusal)
        for call in ev.tool_calls or []:
            fc = self._calls.get(call.index)
            if fc is None:
                out += self._close_open()
                fc = {"id": f"fc_{self._key}_{len(self._items)}", "type": "function_call", "status": "in_progress",
                      "call_id": call.id or f"call_{self._key}_{call.index}", "name": call.name or "", "arguments": ""}  # fmt: skip
                self._calls[call.index] = fc
                self._items.append(fc)
                out += self._event(
                    "response.output_item.added", {"output_index": len(self._items) - 1, "item": dict(fc)}
                )
            if call.arguments:
                fc["arguments"] += call.arguments
                out += self._event(
                    "response.function_call_arguments.delta",
                    {"item_id": fc["id"], "output_index": self._items.index(fc), "delta": call.arguments},
                )
        if ev.finish_reason is not None:
            self._finish = ev.finish_reason
        if ev.usage is not None:
            self._usage = ev.usage
        return out

    def _refusal(self, delta: str) -> bytes:
        """A refusal streams as a message whose one part is a ``refusal`` (OpenAI's ``response.refusal.*``)."""
        out = b""
        item = self._open
        if item is None or item["type"] != "message" or item["content"][0]["type"] != "refusal":
            item = {"id": f"msg_{self._key}_{len(self._items)}", "type": "message", "status": "in_progress",
                    "role": "assistant", "content": []}  # fmt: skip
            out += self._close_open() + self._add(item)
            part = {"type": "refusal", "refusal": ""}
            item["content"] = [part]
            out += self._event(
                "response.content_part.added",
                {"item_id": item["id"], "output_index": len(self._items) - 1, "content_index": 0, "part": dict(part)},
            )  # fmt: skip
        item["content"][0]["refusal"] += delta
        common = {"item_id": item["id"], "output_index": self._items.index(item), "content_index": 0}
        return out + self._event("response.refusal.delta", {**common, "delta": delta})

    def close(self) -> bytes:
        out = self._begin() + self._close_open()
        for item in self._calls.values():
            index = self._items.index(item)
            item["arguments"] = item["arguments"] or "{}"
            out += self._event(
                "response.function_call_arguments.done",
                {"item_id": item["id"], "output_index": index, "arguments": item["arguments"]},
            )
            item["status"] = "completed"
            out += self._event("response.output_item.done", {"output_index": index, "item": item})
        status, incomplete = _status(self._finish)
        final = self._shell(status) | {
            "output": self._items,
            "usage": usage_out(self._usage),
            "incomplete_details": incomplete,
        }
        self.response = final
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._event(kind, {"response": final})

    def error(self, exc: BaseException) -> bytes:
        _, body = encode_error(exc)
        err = body.get("error") or {}
        failed = self._shell("failed") | {
            "output": self._items,
            "error": {
                "code": err.get("code") or err.get("type") or "server_error",
                "message": err.get("message", str(exc)),
            },
        }
        return self._begin() + self._event("response.failed", {"response": failed})


__all__ = ["StreamEncoder", "decode_request", "encode_error", "encode_response", "input_messages", "output_items"]
