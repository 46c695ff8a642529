"""Anthropic content blocks, turns, usage and stop reasons: what requests, responses and streams share.

``block_in`` / ``block_out`` translate one content block; ``map_messages_in`` / ``map_messages_out``
whole conversations (system hoisted, roles merged, tool results first in a user turn, as the API
demands); ``map_usage_in`` / ``map_usage_out`` usage in normal form (Anthropic's ``input_tokens``
leave out cache reads and writes). Blocks only Anthropic understands (server tools and their results,
search results, containers …) become :class:`ir.ProviderPart` and go back unchanged.

    >>> block_in({"type": "thinking", "thinking": "hmm", "signature": "sig"}, "content[0]")
    ReasoningPart(text='hmm', signature='sig')
"""

from __future__ import annotations

import base64
import re
from typing import Any

from llmswitch import ir
from llmswitch.dialects import citations
from llmswitch.dialects._json import dumps, invalid, parse_json_arguments, split_data_url

_FINISH_REASON_MAP: dict[str, ir.FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_REASONS = frozenset(_FINISH_REASON_MAP)
_STOP_REASON_FOR: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
}

# the tool a model without native structured outputs is made to call; its input is the answer
RESPONSE_TOOL = "llmswitch_response"

_IMAGE_MAGIC = (("/9j/", "image/jpeg"), ("iVBOR", "image/png"), ("R0lGOD", "image/gif"), ("UklGR", "image/webp"))


def finish_reason_in(native: str | None) -> ir.FinishReason | None:
    """Anthropic's ``stop_reason`` as an IR finish reason (an unknown new one reads as ``stop``)."""
    if native is None:
        return None
    return _FINISH_REASON_MAP.get(native, "stop")


# ---------------------------------------------------------------- content blocks


def _sniff_image(data: str) -> str:
    return next((mime for magic, mime in _IMAGE_MAGIC if data.startswith(magic)), "image/png")


def _tool_id(raw: str) -> str:
    # the API takes ids matching ^[a-zA-Z0-9_-]+$; ids minted by other providers may not
    return re.sub(r"[^a-zA-Z0-9_-]", "_", raw) or "toolu_0"


def with_cache(block: dict[str, Any], cache_control: dict[str, Any] | None) -> dict[str, Any]:
    """``block`` with the caller's ``cache_control`` marker, when there is one."""
    if cache_control is not None:
        block["cache_control"] = cache_control
    return block


def _media_out(p: ir.ImagePart | ir.FilePart) -> dict[str, Any] | None:
    if isinstance(p, ir.ImagePart) or (p.media_type or "").startswith("image/"):
        if p.data is not None:
            src = {"type": "base64", "media_type": p.media_type or _sniff_image(p.data), "data": p.data}
        elif p.url is not None:
            split = split_data_url(p.url)
            if split is not None:
                src = {"type": "base64", "media_type": split[0] or _sniff_image(split[1]), "data": split[1]}
            else:
                src = {"type": "url", "url": p.url}
        else:
            return None
        return with_cache({"type": "image", "source": src}, p.cache_control)
    if (p.media_type or "").startswith(("audio/", "video/")):
        raise invalid("messages", f"Anthropic does not accept {p.media_type} input")
    if p.file_id is not None:
        src = {"type": "file", "file_id": p.file_id}
    elif p.data is not None and p.media_type == "text/plain":
        src = {"type": "text", "media_type": "text/plain", "data": base64.b64decode(p.data).decode("utf-8", "replace")}
    elif p.data is not None:
        src = {"type": "base64", "media_type": p.media_type or "application/pdf", "data": p.data}
    elif p.url is not None:
        src = {"type": "url", "url": p.url}
    else:
        return None
    block: dict[str, Any] = {"type": "document", "source": src}
    if p.filename:
        block["title"] = p.filename
    if p.context is not None:
        block["context"] = p.context
    if p.citations is not None:
        block["citations"] = p.citations
    return with_cache(block, p.cache_control)


def _text_out(p: ir.TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": p.text}
    # only Anthropic's own citations can go back; other providers' annotations cannot
    cites = [x for c in p.citations or () if (x := citations.anthropic_out(c, p.text, to_anthropic=True)) is not None]
    if cites:
        block["citations"] = cites
    return with_cache(block, p.cache_control)


def block_out(p: ir.Part) -> dict[str, Any] | None:
    """One IR part as an Anthropic content block (None for what Anthropic cannot take)."""
    if isinstance(p, ir.TextPart):
        return _text_out(p) if p.text else None  # the API rejects empty text blocks
    if isinstance(p, ir.ImagePart | ir.FilePart):
        return _media_out(p)
    if isinstance(p, ir.ToolCallPart):
        args = parse_json_arguments(p.arguments)
        # the API needs an object; a model's broken JSON cannot be sent back any other way
        block = {
            "type": "tool_use",
            "id": _tool_id(p.id),
            "name": p.name,
            "input": args if isinstance(args, dict) else {},
        }
        caller = (p.provider_specific or {}).get("caller")
        if caller is not None:
            block["caller"] = caller
        return with_cache(block, p.cache_control)
    if isinstance(p, ir.ToolResultPart):
        out: dict[str, Any] = {"type": "tool_result", "tool_use_id": _tool_id(p.tool_call_id)}
        inner = [b for b in map(block_out, p.content) if b is not None]
        if len(inner) == 1 and set(inner[0]) == {"type", "text"}:
            out["content"] = inner[0]["text"]
        elif inner:
            out["content"] = inner
        if p.is_error:
            out["is_error"] = True
        return with_cache(out, p.cache_control)
    if isinstance(p, ir.ReasoningPart):
        # reasoning without a signature, or signed by another provider (Gemini), came from elsewhere:
        # the API refuses it unsigned and rejects a signature it did not make
        if p.signature and p.provider in (None, "anthropic"):
            return {"type": "thinking", "thinking": p.text, "signature": p.signature}
        return None
    if isinstance(p, ir.RedactedReasoningPart):
        return {"type": "redacted_thinking", "data": p.data} if p.provider in (None, "anthropic") else None
    if isinstance(p, ir.ProviderPart) and p.provider == "anthropic":
        return p.block
    return None


def _str(b: dict[str, Any], key: str, where: str) -> str:
    v = b.get(key)
    if not isinstance(v, str):
        raise invalid(f"{where}.{key}", "must be a string")
    return v


def _source_in(b: dict[str, Any], where: str) -> dict[str, Any]:
    src = b.get("source")
    if not isinstance(src, dict) or not isinstance(src.get("type"), str):
        raise invalid(f"{where}.source", "must be an object with a 'type'")
    return src


def block_in(b: Any, where: str) -> ir.Part:
    """One Anthropic content block (request or response) as an IR part; unknown kinds are kept whole."""
    if not isinstance(b, dict) or not isinstance(b.get("type"), str):
        raise invalid(where, "must be a content block object with a 'type'")
    kind, cc = b["type"], b.get("cache_control")
    if kind == "text":
        return ir.TextPart(
            text=_str(b, "text", where), cache_control=cc, citations=citations.anthropic_in(b.get("citations"))
        )
    if kind == "image":
        src = _source_in(b, where)
        if src["type"] == "base64":
            return ir.ImagePart(
                data=_str(src, "data", f"{where}.source"), media_type=src.get("media_type"), cache_control=cc
            )
        if src["type"] == "url":
            return ir.ImagePart(url=_str(src, "url", f"{where}.source"), cache_control=cc)
    elif kind == "document":
        src = _source_in(b, where)
        doc: dict[str, Any] = {"filename": b.get("title"), "cache_control": cc}
        doc["context"], doc["citations"] = b.get("context"), b.get("citations")
        if src["type"] == "base64":
            data = _str(src, "data", f"{where}.source")
            return ir.FilePart(data=data, media_type=src.get("media_type"), **doc)
        if src["type"] == "text":
            data = base64.b64encode(_str(src, "data", f"{where}.source").encode()).decode()
            return ir.FilePart(data=data, media_type="text/plain", **doc)
        if src["type"] == "url":
            return ir.FilePart(url=_str(src, "url", f"{where}.source"), **doc)
        if src["type"] == "file":
            return ir.FilePart(file_id=_str(src, "file_id", f"{where}.source"), **doc)
        # a "content" source (the caller's own chunks) stays Anthropic's
    elif kind == "tool_use":
        args = b.get("input", {})
        if not isinstance(args, dict):
            raise invalid(f"{where}.input", "must be an object")
        call_id, name = _str(b, "id", where), _str(b, "name", where)
        # who made the call (programmatic tool calling: code in a container), needed on the next turn
        ps = {"caller": b["caller"]} if b.get("caller") is not None else None
        return ir.ToolCallPart(
            id=call_id, name=name, arguments=dumps(args).decode(), cache_control=cc, provider_specific=ps
        )
    elif kind == "tool_result":
        content = b.get("content")
        parts: list[ir.Part]
        if content is None or isinstance(content, str):
            parts = [ir.TextPart(text=content)] if content else []
        elif isinstance(content, list):
            parts = [block_in(x, f"{where}.content[{k}]") for k, x in enumerate(content)]
        else:
            raise invalid(f"{where}.content", "must be a string or a list of content blocks")
        media = [p for p in parts if isinstance(p, ir.TextPart | ir.ImagePart | ir.FilePart)]
        return ir.ToolResultPart(
            tool_call_id=_str(b, "tool_use_id", where),
            content=media,
            is_error=b.get("is_error") is True,
            cache_control=cc,
        )
    elif kind == "thinking":
        return ir.ReasoningPart(
            text=_str(b, "thinking", where), signature=b.get("signature") or None, provider="anthropic"
        )
    elif kind == "redacted_thinking":
        return ir.RedactedReasoningPart(data=_str(b, "data", where), provider="anthropic")
    # server tools, their results, search results, containers … and any block kind added later
    return ir.ProviderPart(provider="anthropic", block=b)


# ---------------------------------------------------------------- messages


def map_messages_in(messages: Any, system: Any = None) -> list[ir.Message]:
    """Anthropic ``system`` + ``messages`` as IR messages; each tool result becomes a ``tool`` message."""
    out: list[ir.Message] = []
    if isinstance(system, str):
        if system:
            out.append(ir.Message(role="system", content=[ir.TextPart(text=system)]))
    elif isinstance(system, list):
        parts = [block_in(b, f"system[{k}]") for k, b in enumerate(system)]
        if not all(isinstance(p, ir.TextPart) for p in parts):
            raise invalid("system", "only text blocks are allowed in the system prompt")
        if parts:
            out.append(ir.Message(role="system", content=parts))
    elif system is not None:
        raise invalid("system", "must be a string or a list of text blocks")
    if not isinstance(messages, list):
        raise invalid("messages", "a list of messages is required")
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise invalid(where, "must be an object")
        role = m.get("role")
        if role not in ("user", "assistant"):
            raise invalid(f"{where}.role", f"{role!r} is not one of user, assistant")
        content = m.get("content")
        if isinstance(content, str):
            parts = [ir.TextPart(text=content)] if content else []
        elif isinstance(content, list):
            parts = [block_in(b, f"{where}.content[{k}]") for k, b in enumerate(content)]
        else:
            raise invalid(f"{where}.content", "must be a string or a list of content blocks")
        if role == "assistant":
            out.append(ir.Message(role="assistant", content=parts))
            continue
        rest: list[ir.Part] = [p for p in parts if not isinstance(p, ir.ToolResultPart)]
        out.extend(ir.Message(role="tool", content=[p]) for p in parts if isinstance(p, ir.ToolResultPart))
        if rest or len(rest) == len(parts):
            out.append(ir.Message(role="user", content=rest))
    return out


def map_messages_out(messages: list[ir.Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """IR messages as (system text blocks, Anthropic turns): hoisted, merged, tool results first."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role in ("system", "developer"):
            system.extend(_text_out(p) for p in m.content if isinstance(p, ir.TextPart) and p.text)
            continue
        role = "assistant" if m.role == "assistant" else "user"
        blocks = [b for b in map(block_out, m.content) if b is not None]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for t in turns:
        if t["role"] == "user":
            t["content"].sort(key=lambda b: b["type"] != "tool_result")  # stable: results first
    if turns and turns[-1]["role"] == "assistant":
        # a final assistant turn is a prefill, and the API rejects one ending in whitespace
        last = turns[-1]["content"][-1]
        if last["type"] == "text":
            last["text"] = last["text"].rstrip()
            if not last["text"]:
                turns[-1]["content"].pop()
                if not turns[-1]["content"]:
                    turns.pop()
    for t in turns:
        c = t["content"]
        if len(c) == 1 and set(c[0]) == {"type", "text"}:
            t["content"] = c[0]["text"]
    return system, turns


def map_usage_in(u: dict[str, Any]) -> ir.Usage:
    """Anthropic usage in normal form: its ``input_tokens`` leave out cache reads and writes."""
    read = int(u.get("cache_read_input_tokens") or 0)
    write = int(u.get("cache_creation_input_tokens") or 0)
    split = u.get("cache_creation") or {}
    thinking = (u.get("output_tokens_details") or {}).get("thinking_tokens")
    server = u.get("server_tool_use") or {}  # web searches and fetches, billed per request
    return ir.Usage(
        input_tokens=int(u.get("input_tokens") or 0) + read + write,
        output_tokens=int(u.get("output_tokens") or 0),
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_5m_tokens=int(split.get("ephemeral_5m_input_tokens") or 0),
        cache_write_1h_tokens=int(split.get("ephemeral_1h_input_tokens") or 0),
        reasoning_tokens=int(thinking or 0),
        reasoning_reported=isinstance(thinking, int),
        web_search_requests=int(server.get("web_search_requests") or 0),
        web_fetch_requests=int(server.get("web_fetch_requests") or 0),
        service_tier=u.get("service_tier") if isinstance(u.get("service_tier"), str) else None,
        inference_geo=u.get("inference_geo") if isinstance(u.get("inference_geo"), str) else None,
    )


def content_in(blocks: list[Any]) -> tuple[list[ir.Part], bool]:
    """Response content as IR parts, and whether the answer came through :data:`RESPONSE_TOOL`."""
    parts: list[ir.Part] = []
    answered = False
    for k, b in enumerate(blocks):
        p = block_in(b, f"content[{k}]")
        if isinstance(p, ir.ToolCallPart) and p.name == RESPONSE_TOOL:
            parts.append(ir.TextPart(text=p.arguments))
            answered = True
        else:
            parts.append(p)
    return parts, answered


def map_usage_out(u: ir.Usage) -> dict[str, Any]:
    """Normal-form usage as Anthropic reports it (cache reads and writes outside ``input_tokens``)."""
    # a provider that reports writes without the TTL split wrote at the default TTL, 5 minutes
    write_5m = u.cache_write_5m_tokens or max(u.cache_write_tokens - u.cache_write_1h_tokens, 0)
    out: dict[str, Any] = {
        "input_tokens": max(u.input_tokens - u.cache_read_tokens - u.cache_write_tokens, 0),
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": u.cache_write_1h_tokens},
        "output_tokens": u.output_tokens,
    }
    if u.reasoning_reported:
        out["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    if u.web_search_requests or u.web_fetch_requests:
        out["server_tool_use"] = {
            "web_search_requests": u.web_search_requests,
            "web_fetch_requests": u.web_fetch_requests,
        }
    if u.service_tier in ("standard", "priority", "batch"):  # the only values Anthropic's schema allows
        out["service_tier"] = u.service_tier
    if u.inference_geo:
        out["inference_geo"] = u.inference_geo
    return out


def stop_reason_out(finish: ir.FinishReason | None, native: str | None) -> str:
    """Anthropic's stop reason: the provider's own word when it is Anthropic's and still means ``finish``,
    else the mapped one (an answer that came through the response tool stopped on ``tool_use`` upstream, but
    the caller asked for no tool and gets an ``end_turn``)."""
    if native in STOP_REASONS and (finish is None or finish_reason_in(native) == finish):
        return native
    return _STOP_REASON_FOR.get(finish or "stop", "end_turn")


def response_blocks(p: ir.Part) -> list[dict[str, Any]]:
    """One IR part as blocks of a response ``content`` (signatures always present, as the SDK expects;
    cited text cut into blocks at its cited spans, as Anthropic cites whole blocks)."""
    if isinstance(p, ir.ReasoningPart):
        return [{"type": "thinking", "thinking": p.text, "signature": p.signature or ""}]
    if isinstance(p, ir.TextPart):
        if not p.citations:
            return [{"type": "text", "text": p.text}]
        out = []
        for text, cites in citations.split_blocks(p):
            wire = [x for c in cites if (x := citations.anthropic_out(c, text, to_anthropic=False)) is not None]
            out.append({"type": "text", "text": text, **({"citations": wire} if wire else {})})
        return out
    if isinstance(p, ir.ToolResultPart | ir.ImagePart | ir.FilePart):
        return []
    b = block_out(p)
    return [] if b is None else [b]
