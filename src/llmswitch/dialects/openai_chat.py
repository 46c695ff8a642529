"""OpenAI Chat Completions, both directions, as pure functions over dicts.

Client side of a provider (OpenAI and every OpenAI-compatible vendor):
``encode_request`` (IR -> body), ``decode_response`` (body -> IR), ``StreamDecoder`` (SSE bytes -> IR
events, in ``openai_chat_stream``), ``decode_error`` (status + body -> error).

Server side, for the SDK's own keywords and the gateway's OpenAI routes:
``decode_request`` (body -> IR, validated), ``encode_response`` (IR -> body), ``StreamEncoder``
(IR events -> chunks), ``encode_error`` (error -> status + body).

Vendor quirks read here: reasoning under ``reasoning_content`` / ``reasoning`` / Mistral's thinking
parts, Groq's usage under ``x_groq``, DeepSeek's ``prompt_cache_hit_tokens``, xAI counting reasoning
outside ``completion_tokens``, finish reasons such as ``eos``, error envelopes of every shape.
"""

from __future__ import annotations

import time
from typing import Any

from llmswitch import ir
from llmswitch.dialects import citations, native_finish
from llmswitch.dialects._json import split_data_url
from llmswitch.dialects.openai_errors import decode_error, encode_error
from llmswitch.dialects.openai_messages import map_messages_out, reasoning_in
from llmswitch.dialects.openai_request import SAMPLING_KEYS, decode_request
from llmswitch.dialects.openai_tools import tool_choice_out

__all__ = [
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "map_usage_in",
    "map_usage_out",
]

# what vendors call the same five things
_FINISH_REASON_MAP: dict[str, ir.FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "eos": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_length": "length",
    "tool_use": "tool_calls",
    "error": "error",
}


def finish_reason_in(native: str | None) -> ir.FinishReason | None:
    if native is None:
        return None
    return _FINISH_REASON_MAP.get(native, "stop")


def native_finish_out(native: str | None) -> dict[str, str] | None:
    """LiteLLM's ``provider_specific_fields`` with a provider's own finish reason where OpenAI's word hides
    what the caller must act on (``dialects.native_finish``): Anthropic's ``pause_turn`` …"""
    told = native_finish.telling(native)
    return None if told is None else {"native_finish_reason": told}


# ---------------------------------------------------------------- IR -> provider request (client side)


def encode_request(
    req: ir.Request, *, model: str, max_tokens_key: str = "max_tokens", stream_usage: bool = True
) -> dict[str, Any]:
    """The body to POST to ``/chat/completions`` for this request."""
    body: dict[str, Any] = {"model": model, "messages": map_messages_out(req.messages)}
    if req.stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    if req.tools:
        body["tools"] = [_tool_out(t) for t in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = tool_choice_out(req.tool_choice, req.tools)
    if req.parallel_tool_calls is not None and req.tools:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    rf = req.response_format
    if rf is not None:
        if rf.type == "json_schema":
            js: dict[str, Any] = {"name": rf.name or "response", "schema": rf.schema or {}}
            if rf.strict is not None:
                js["strict"] = rf.strict
            if rf.description:
                js["description"] = rf.description
            body["response_format"] = {"type": "json_schema", "json_schema": js}
        else:
            body["response_format"] = {"type": rf.type}
    if req.max_tokens is not None:
        body[max_tokens_key] = req.max_tokens
    for key in SAMPLING_KEYS:
        v = getattr(req, key)
        if v is not None:
            body[key] = v
    if req.stop:
        body["stop"] = req.stop
    if req.user is not None:
        body["user"] = req.user
    if req.metadata is not None:
        body["metadata"] = req.metadata
    if req.logit_bias is not None:
        body["logit_bias"] = req.logit_bias
    if req.reasoning_effort is not None:
        body["reasoning_effort"] = req.reasoning_effort
    if req.thinking_budget is not None:
        body["thinking"] = (
            {"type": "enabled", "budget_tokens": req.thinking_budget} if req.thinking_budget else {"type": "disabled"}
        )
    if req.extra:
        body.update(req.extra)
    return body


def _tool_out(t: ir.Tool) -> dict[str, Any]:
    if t.builtin is not None:
        return t.builtin
    fn: dict[str, Any] = {"name": t.name}
    if t.description:
        fn["description"] = t.description
    fn["parameters"] = t.parameters if t.parameters is not None else {"type": "object", "properties": {}}
    if t.strict is not None:
        fn["strict"] = t.strict
    return {"type": "function", "function": fn}


# ---------------------------------------------------------------- provider response -> IR


def decode_response(body: dict[str, Any]) -> ir.Response:
    choices = []
    for i, c in enumerate(body.get("choices") or []):
        msg = c.get("message") or {}
        native = c.get("finish_reason")
        choices.append(
            ir.Choice(
                index=c.get("index", i),
                parts=_message_parts_in(msg),
                finish_reason=finish_reason_in(native),
                native_finish_reason=native,
                logprobs=c.get("logprobs"),
                provider_specific=_provider_fields(c, msg),
                audio=msg.get("audio") or None,
            )
        )
    usage_raw = body.get("usage") or (body.get("x_groq") or {}).get("usage")
    return ir.Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        created=int(body.get("created") or 0),
        choices=choices,
        usage=map_usage_in(usage_raw) if usage_raw else None,
        system_fingerprint=body.get("system_fingerprint"),
        service_tier=body.get("service_tier"),
    )


def _provider_fields(choice: dict[str, Any], msg: dict[str, Any]) -> dict[str, Any] | None:
    out = {k: choice[k] for k in ("content_filter_results", "native_finish_reason") if choice.get(k) is not None}
    if msg.get("annotations") and not (isinstance(msg.get("content"), str) and msg["content"]):
        out["annotations"] = msg["annotations"]  # no text to cite: kept as they came
    return out or None


def _message_parts_in(msg: dict[str, Any]) -> list[ir.Part]:
    parts: list[ir.Part] = reasoning_in(msg, "message")
    if not parts:
        reasoning = msg.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            parts.append(ir.ReasoningPart(text=reasoning))
    content = msg.get("content")
    if isinstance(content, str):
        if content:
            # annotations' offsets are into the whole content, which is this one part
            parts.append(ir.TextPart(text=content, citations=citations.openai_in(msg.get("annotations")) or None))
    elif isinstance(content, list):
        parts.extend(content_list_in(content))
    refusal = msg.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(ir.TextPart(text=refusal, refusal=True))
    for tc in msg.get("tool_calls") or []:
        if tc.get("type") == "custom":
            parts.append(custom_call_in(tc))
            continue
        fn = tc.get("function") or {}
        args = fn.get("arguments")
        parts.append(
            ir.ToolCallPart(
                id=str(tc.get("id") or ""),
                name=str(fn.get("name") or ""),
                arguments=args if isinstance(args, str) else ("{}" if args is None else _dump(args)),
                provider_specific=tc.get("provider_specific_fields"),
            )
        )
    return parts


def custom_call_in(tc: dict[str, Any]) -> ir.ToolCallPart:
    """A call of an OpenAI custom tool: its free-form ``input`` is carried as the arguments text."""
    custom = tc.get("custom") or {}
    return ir.ToolCallPart(
        id=str(tc.get("id") or ""),
        name=str(custom.get("name") or ""),
        arguments=str(custom.get("input") or ""),
        custom=True,
    )


def content_list_in(content: list[Any]) -> list[ir.Part]:
    """Typed content parts in an assistant message (Mistral sends text and thinking parts)."""
    parts: list[ir.Part] = []
    for p in content:
        if not isinstance(p, dict):
            continue
        kind = p.get("type")
        if kind == "text" and p.get("text"):
            parts.append(ir.TextPart(text=p["text"]))
        elif kind == "thinking":
            th = p.get("thinking")
            text = "".join(x.get("text", "") for x in th if isinstance(x, dict)) if isinstance(th, list) else th
            if text:
                parts.append(ir.ReasoningPart(text=text, signature=p.get("signature")))
    return parts


def _dump(v: Any) -> str:
    from llmswitch.dialects._json import dumps

    return dumps(v).decode()


def map_usage_in(u: dict[str, Any]) -> ir.Usage:
    prompt = int(u.get("prompt_tokens") or 0)
    completion = int(u.get("completion_tokens") or 0)
    cd = u.get("completion_tokens_details") or {}
    pd = u.get("prompt_tokens_details") or {}
    reasoning = int(cd.get("reasoning_tokens") or 0)
    if reasoning and u.get("total_tokens") == prompt + completion + reasoning:
        completion += reasoning  # xAI counts reasoning outside completion; normal form puts it inside
    cached = int(pd.get("cached_tokens") or u.get("prompt_cache_hit_tokens") or 0)
    write = int(pd.get("cache_creation_tokens") or 0)
    server = u.get("server_tool_use") or {}  # LiteLLM's field for billed server-tool calls
    return ir.Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cache_read_tokens=cached,
        cache_write_tokens=write,
        reasoning_tokens=reasoning,
        reasoning_reported="reasoning_tokens" in cd,
        input_audio_tokens=_count(pd.get("audio_tokens")),
        output_audio_tokens=_count(cd.get("audio_tokens")),
        accepted_prediction_tokens=_count(cd.get("accepted_prediction_tokens")),
        rejected_prediction_tokens=_count(cd.get("rejected_prediction_tokens")),
        web_search_requests=_count(server.get("web_search_requests")),
        web_fetch_requests=_count(server.get("web_fetch_requests")),
    )


def _count(v: Any) -> int:
    if type(v) is int:  # a count decoded from JSON: one type check per field, six fields per answer
        return v
    if v is None:  # a field the provider does not send
        return 0
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0


# ---------------------------------------------------------------- IR -> response body (server side)


def map_usage_out(u: ir.Usage) -> dict[str, Any]:
    pd: dict[str, Any] = {"cached_tokens": u.cache_read_tokens}
    if u.cache_write_tokens:
        pd["cache_creation_tokens"] = u.cache_write_tokens
    if u.input_audio_tokens:
        pd["audio_tokens"] = u.input_audio_tokens
    cd: dict[str, Any] = {"reasoning_tokens": u.reasoning_tokens}
    if u.output_audio_tokens:
        cd["audio_tokens"] = u.output_audio_tokens
    if u.accepted_prediction_tokens or u.rejected_prediction_tokens:
        cd["accepted_prediction_tokens"] = u.accepted_prediction_tokens
        cd["rejected_prediction_tokens"] = u.rejected_prediction_tokens
    out: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": pd,
        "completion_tokens_details": cd,
    }
    if u.web_search_requests or u.web_fetch_requests:
        # OpenAI's usage has no such field; LiteLLM's clients read billed server-tool calls here
        out["server_tool_use"] = {
            "web_search_requests": u.web_search_requests,
            "web_fetch_requests": u.web_fetch_requests,
        }
    if u.cache_write_5m_tokens or u.cache_write_1h_tokens:
        out["cache_creation"] = {
            "ephemeral_5m_input_tokens": u.cache_write_5m_tokens,
            "ephemeral_1h_input_tokens": u.cache_write_1h_tokens,
        }
    return out


def encode_message(parts: list[ir.Part]) -> dict[str, Any]:
    """An assistant message in OpenAI JSON, with LiteLLM's reasoning fields where there is reasoning."""
    text = "".join(p.text for p in parts if isinstance(p, ir.TextPart) and not p.refusal)
    msg: dict[str, Any] = {"role": "assistant", "content": text or None}
    refusal = "".join(p.text for p in parts if isinstance(p, ir.TextPart) and p.refusal)
    if refusal:
        msg["refusal"] = refusal
    calls = [p for p in parts if isinstance(p, ir.ToolCallPart)]
    if calls:
        msg["tool_calls"] = [_tool_call_out(c) for c in calls]
    reasoning = [p for p in parts if isinstance(p, ir.ReasoningPart | ir.RedactedReasoningPart)]
    if reasoning:
        msg["reasoning_content"] = "".join(p.text for p in reasoning if isinstance(p, ir.ReasoningPart)) or None
        blocks = [_thinking_block(p) for p in reasoning]
        if any("signature" in b or b["type"] == "redacted_thinking" for b in blocks):
            msg["thinking_blocks"] = blocks
    specific = [p.block | {"provider": p.provider} for p in parts if isinstance(p, ir.ProviderPart)]
    if specific:
        msg["provider_specific_fields"] = {"blocks": specific}
    annotations, others = citations.openai_out(citations.message_spans(parts, refusals=False))
    if annotations:
        msg["annotations"] = annotations
    if others:
        # citations of places in documents (Anthropic's): the schema's annotations are URL citations only
        msg["provider_specific_fields"] = msg.get("provider_specific_fields", {}) | {"citations": others}
    return msg


def _thinking_block(p: ir.ReasoningPart | ir.RedactedReasoningPart) -> dict[str, Any]:
    if isinstance(p, ir.RedactedReasoningPart):
        out = {"type": "redacted_thinking", "data": p.data}
        return out | {"provider": p.provider} if p.provider is not None else out
    b: dict[str, Any] = {"type": "thinking", "thinking": p.text}
    if p.signature is not None:
        b["signature"] = p.signature
    if p.provider is not None:
        b["provider"] = p.provider  # so the block goes back only to the provider that signed it
    return b


def _tool_call_out(c: ir.ToolCallPart) -> dict[str, Any]:
    if c.custom:
        return {"id": c.id, "type": "custom", "custom": {"name": c.name, "input": c.arguments}}
    out: dict[str, Any] = {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
    if c.provider_specific:
        out["provider_specific_fields"] = c.provider_specific
    return out


def encode_response(resp: ir.Response) -> dict[str, Any]:
    choices = []
    for c in resp.choices:
        msg = encode_message(c.parts)
        if c.audio is not None:
            msg["audio"] = c.audio
        if c.provider_specific:
            if c.provider_specific.get("annotations") and "annotations" not in msg:
                msg["annotations"] = c.provider_specific["annotations"]
            extra = {k: v for k, v in c.provider_specific.items() if k not in ("refusal", "annotations")}
            if extra:
                msg["provider_specific_fields"] = msg.get("provider_specific_fields", {}) | extra
        choice = {"index": c.index, "message": msg, "logprobs": c.logprobs, "finish_reason": c.finish_reason}
        native = native_finish_out(c.native_finish_reason)
        if native is not None:
            choice["provider_specific_fields"] = native
            msg["provider_specific_fields"] = msg.get("provider_specific_fields", {}) | native
        choices.append(choice)
    out: dict[str, Any] = {
        "id": resp.id,
        "object": "chat.completion",
        "created": resp.created or int(time.time()),
        "model": resp.model,
        "choices": choices,
    }
    if resp.usage is not None:
        out["usage"] = map_usage_out(resp.usage)
    if resp.system_fingerprint is not None:
        out["system_fingerprint"] = resp.system_fingerprint
    if resp.service_tier is not None:
        out["service_tier"] = resp.service_tier
    return out


__all__ += ["content_list_in", "encode_message", "finish_reason_in", "split_data_url"]
