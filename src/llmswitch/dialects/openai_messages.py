"""OpenAI chat messages <-> IR messages (both directions), for ``openai_chat``.

Accepts everything the openai SDK and LiteLLM let callers write: string or typed-part content,
``image_url`` (URL or data URL), ``file`` and ``input_audio`` parts, assistant ``tool_calls`` and the
legacy ``function_call``, ``tool`` and ``function`` results, and LiteLLM's ``reasoning_content`` /
``thinking_blocks`` on assistant messages (so reasoning signatures survive a provider switch).
"""

from __future__ import annotations

import base64
import mimetypes
from typing import Any

import msgspec

from llmswitch import ir
from llmswitch.dialects._json import dumps, invalid, split_data_url

_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# most messages of a conversation are a role and a text: read without looking for anything else
_PLAIN_ROLES: dict[str, ir.Role] = {
    "system": "system",
    "developer": "developer",
    "user": "user",
    "assistant": "assistant",
}
_PLAIN_KEYS = frozenset(("role", "content", "name"))


def as_dict(m: Any, where: str) -> dict[str, Any]:
    """A message given as a dict, or as a result object (``r.choices[0].message``) from any SDK."""
    if isinstance(m, dict):
        return m
    dump = getattr(m, "model_dump", None)
    if dump is not None:
        out = dump()
        if isinstance(out, dict):
            return out
    if isinstance(m, msgspec.Struct):
        return msgspec.to_builtins(m)  # type: ignore[no-any-return]
    raise invalid(where, f"expected an object, got {type(m).__name__}")


def map_messages_in(messages: list[Any]) -> list[ir.Message]:
    out: list[ir.Message] = []
    for i, raw in enumerate(messages):
        if type(raw) is dict and raw.keys() <= _PLAIN_KEYS:
            # what the general reading below makes of a text message with no other field
            role = raw.get("role")
            text = raw.get("content")
            plain = _PLAIN_ROLES.get(role) if type(role) is str else None
            if plain is not None and type(text) is str:
                out.append(
                    ir.Message(role=plain, content=[ir.TextPart(text=text)] if text else [], name=raw.get("name"))
                )
                continue
        m = as_dict(raw, f"messages[{i}]")
        role = m.get("role")
        if role not in _ROLES:
            raise invalid(f"messages[{i}].role", f"{role!r} is not one of {', '.join(_ROLES)}")
        where = f"messages[{i}]"
        if role in ("tool", "function"):
            call_id = m.get("tool_call_id") if role == "tool" else m.get("name")
            if not isinstance(call_id, str):
                raise invalid(f"{where}.tool_call_id", "a tool message needs the id of the call it answers")
            content = _parts_in(m.get("content"), where, allow_media=True)
            media = [p for p in content if isinstance(p, ir.TextPart | ir.ImagePart | ir.FilePart)]
            is_error = bool(m.get("is_error"))
            result = ir.ToolResultPart(tool_call_id=call_id, content=media, is_error=is_error, name=m.get("name"))
            out.append(ir.Message(role="tool", content=[result]))
            continue
        parts: list[ir.Part] = []
        if role == "assistant":
            parts.extend(reasoning_in(m, where))
        parts.extend(_parts_in(m.get("content"), where, allow_media=role == "user"))
        if role == "assistant":
            refusal = m.get("refusal")
            if (
                isinstance(refusal, str)
                and refusal
                and not any(isinstance(p, ir.TextPart) and p.refusal for p in parts)
            ):
                # what the model said when it refused: OpenAI takes it back as such, the others as its text
                parts.append(ir.TextPart(text=refusal, refusal=True))
            audio = m.get("audio")
            if isinstance(audio, dict) and isinstance(audio.get("id"), str):
                # an earlier spoken answer, by its id: OpenAI's alone (others refuse or drop it by the policy)
                parts.append(ir.ProviderPart(provider="openai", block={"type": "audio", "audio": {"id": audio["id"]}}))
            parts.extend(_tool_calls_in(m, where))
            parts.extend(_provider_blocks_in(m))
            if not parts and m.get("content") is None and "tool_calls" not in m and "function_call" not in m:
                raise invalid(f"{where}.content", "an assistant message needs content or tool_calls")
        elif not parts and m.get("content") is None:
            raise invalid(f"{where}.content", "is required")
        out.append(ir.Message(role=role, content=parts, name=m.get("name")))
    return out


def reasoning_in(m: dict[str, Any], where: str) -> list[ir.Part]:
    """Reasoning on an assistant message: LiteLLM's ``thinking_blocks`` (with signatures), else ``reasoning_content``."""
    blocks = m.get("thinking_blocks")
    if isinstance(blocks, list) and blocks:
        out: list[ir.Part] = []
        for b in blocks:
            if not isinstance(b, dict):
                raise invalid(f"{where}.thinking_blocks", "each block must be an object")
            origin = b.get("provider") if isinstance(b.get("provider"), str) else None
            if b.get("type") == "redacted_thinking":
                out.append(ir.RedactedReasoningPart(data=str(b.get("data") or ""), provider=origin))
            else:
                out.append(
                    ir.ReasoningPart(text=str(b.get("thinking") or ""), signature=b.get("signature"), provider=origin)
                )
        return out
    rc = m.get("reasoning_content")
    if isinstance(rc, str) and rc:
        return [ir.ReasoningPart(text=rc)]
    return []


def _provider_blocks_in(m: dict[str, Any]) -> list[ir.Part]:
    """Provider-only blocks (Anthropic server-tool use and results …) the SDK handed out in
    ``provider_specific_fields.blocks``: sent back to the provider that made them."""
    psf = m.get("provider_specific_fields")
    blocks = psf.get("blocks") if isinstance(psf, dict) else None
    out: list[ir.Part] = []
    for b in blocks or ():
        if isinstance(b, dict) and isinstance(b.get("provider"), str):
            out.append(ir.ProviderPart(provider=b["provider"], block={k: v for k, v in b.items() if k != "provider"}))
    return out


def _tool_calls_in(m: dict[str, Any], where: str) -> list[ir.Part]:
    calls = m.get("tool_calls")
    if calls is None and isinstance(m.get("function_call"), dict):
        fc = m["function_call"]
        calls = [{"id": fc.get("name", "call_0"), "function": fc}]
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise invalid(f"{where}.tool_calls", "must be a list")
    out: list[ir.Part] = []
    for j, raw in enumerate(calls):
        tc = as_dict(raw, f"{where}.tool_calls[{j}]")
        if tc.get("type") == "custom" and isinstance(tc.get("custom"), dict):
            custom = tc["custom"]
            name, text = custom.get("name"), custom.get("input")
            if not isinstance(name, str) or not isinstance(text, str):
                raise invalid(f"{where}.tool_calls[{j}].custom", "needs a name and an input")
            out.append(ir.ToolCallPart(id=str(tc.get("id") or f"call_{j}"), name=name, arguments=text, custom=True))
            continue
        fn = tc.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise invalid(f"{where}.tool_calls[{j}].function", "needs a name and arguments")
        args = fn.get("arguments")
        if args is None:
            args = "{}"
        elif not isinstance(args, str):
            args = dumps(args).decode()
        out.append(
            ir.ToolCallPart(
                id=str(tc.get("id") or f"call_{j}"),
                name=fn["name"],
                arguments=args,
                provider_specific=tc.get("provider_specific_fields") or None,
            )
        )
    return out


def _parts_in(content: Any, where: str, *, allow_media: bool) -> list[ir.Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [ir.TextPart(text=content)] if content else []
    if not isinstance(content, list):
        raise invalid(f"{where}.content", "must be a string or a list of content parts")
    out: list[ir.Part] = []
    for k, p in enumerate(content):
        pw = f"{where}.content[{k}]"
        if isinstance(p, str):
            out.append(ir.TextPart(text=p))
            continue
        if not isinstance(p, dict):
            raise invalid(pw, "must be an object")
        kind = p.get("type")
        cc = p.get("cache_control")
        if kind == "text":
            if not isinstance(p.get("text"), str):
                raise invalid(f"{pw}.text", "must be a string")
            out.append(ir.TextPart(text=p["text"], cache_control=cc))
        elif kind == "image_url":
            iu = p.get("image_url")
            url = iu.get("url") if isinstance(iu, dict) else iu
            if not isinstance(url, str) or not url:
                raise invalid(f"{pw}.image_url.url", "must be a URL or a data URL")
            detail = iu.get("detail") if isinstance(iu, dict) else None
            split = split_data_url(url)
            if split is not None:
                out.append(ir.ImagePart(data=split[1], media_type=split[0], detail=detail, cache_control=cc))
            else:
                out.append(ir.ImagePart(url=url, detail=detail, cache_control=cc))
        elif kind == "file":
            f = p.get("file") or {}
            data = f.get("file_data")
            split = split_data_url(data) if isinstance(data, str) else None
            url = data if isinstance(data, str) and data.startswith(("http://", "https://")) else None
            out.append(
                ir.FilePart(
                    url=url,
                    data=split[1] if split else (None if url else data),
                    media_type=(split[0] if split else None) or f.get("format"),
                    file_id=f.get("file_id"),
                    filename=f.get("filename"),
                    cache_control=cc,
                )
            )
        elif kind == "input_audio":
            a = p.get("input_audio") or {}
            # audio/wav and audio/mp3 are the MIME types Gemini documents for these formats
            out.append(ir.FilePart(data=a.get("data"), media_type=f"audio/{a.get('format', 'wav')}"))
        elif kind in ("thinking", "redacted_thinking"):
            continue  # reasoning is read from thinking_blocks / reasoning_content
        elif kind == "refusal":
            out.append(ir.TextPart(text=str(p.get("refusal") or ""), refusal=True))
        else:
            raise invalid(f"{pw}.type", f"unknown content part type {kind!r}")
        if not allow_media and isinstance(out[-1], ir.ImagePart | ir.FilePart):
            raise invalid(pw, "images and files are only allowed in user and tool messages")
    return out


# ---------------------------------------------------------------- IR -> OpenAI messages


def map_messages_out(messages: list[ir.Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            for p in m.content:
                if isinstance(p, ir.ToolResultPart):
                    out.append({"role": "tool", "tool_call_id": p.tool_call_id, "content": _content_out(p.content)})
            continue
        msg: dict[str, Any] = {"role": m.role}
        if m.role == "assistant":
            visible = [p for p in m.content if isinstance(p, ir.TextPart) and not p.refusal]
            refusal = "".join(p.text for p in m.content if isinstance(p, ir.TextPart) and p.refusal)
            calls = [p for p in m.content if isinstance(p, ir.ToolCallPart)]
            msg["content"] = _content_out(visible) if visible else None
            if refusal:
                msg["refusal"] = refusal
            for p in m.content:
                if isinstance(p, ir.ProviderPart) and p.provider == "openai" and p.block.get("type") == "audio":
                    msg["audio"] = p.block["audio"]
            if calls:
                msg["tool_calls"] = [_call_out(c) for c in calls]
        else:
            parts = [p for p in m.content if isinstance(p, ir.TextPart | ir.ImagePart | ir.FilePart)]
            msg["content"] = _content_out(parts)
            # a tool result that arrived inside a user message (Anthropic style) becomes a tool message
            for p in m.content:
                if isinstance(p, ir.ToolResultPart):
                    out.append({"role": "tool", "tool_call_id": p.tool_call_id, "content": _content_out(p.content)})
            if not parts:
                continue
        if m.name:
            msg["name"] = m.name
        out.append(msg)
    return out


def _call_out(c: ir.ToolCallPart) -> dict[str, Any]:
    if c.custom:
        return {"id": c.id, "type": "custom", "custom": {"name": c.name, "input": c.arguments}}
    return {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}


def _content_out(parts: list[Any]) -> str | list[dict[str, Any]]:
    if all(isinstance(p, ir.TextPart) and p.cache_control is None for p in parts):
        return "".join(p.text for p in parts)
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, ir.TextPart):
            d: dict[str, Any] = {"type": "text", "text": p.text}
        elif isinstance(p, ir.ImagePart):
            url = p.url if p.url is not None else f"data:{p.media_type or 'image/png'};base64,{p.data}"
            iu: dict[str, Any] = {"url": url}
            if p.detail:
                iu["detail"] = p.detail
            d = {"type": "image_url", "image_url": iu}
        elif isinstance(p, ir.FilePart):
            d = _file_out(p)
        else:
            continue
        if getattr(p, "cache_control", None) is not None:
            d["cache_control"] = p.cache_control
        out.append(d)
        if isinstance(p, ir.FilePart) and p.context:
            out.append({"type": "text", "text": p.context})  # what the caller wrote about the document
    return out


# the audio formats an ``input_audio`` part takes
AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}


def _file_out(p: ir.FilePart) -> dict[str, Any]:
    """A file as OpenAI's part for it: ``input_audio`` for audio, a text part for a plain-text document
    (Chat Completions reads PDF files only and documents sending a text file's contents as text), else a
    ``file``. ``file_data`` is inline base64 only: a file by URL, which OpenAI cannot fetch, is refused by
    the parameter policy before encoding (``dialects.content_support``), and here if it gets this far."""
    media = (p.media_type or "").lower()
    if p.data is not None and media in AUDIO_FORMATS:
        return {"type": "input_audio", "input_audio": {"data": p.data, "format": AUDIO_FORMATS[media]}}
    if p.data is not None and media == "text/plain":
        return {"type": "text", "text": base64.b64decode(p.data).decode("utf-8", "replace")}
    if p.data is None and p.file_id is None:
        raise invalid("messages", f"OpenAI takes files inline or by file_id, not by URL ({p.url})")
    f: dict[str, Any] = {}
    if p.file_id:
        f["file_id"] = p.file_id
    if p.data is not None:
        f["file_data"] = f"data:{p.media_type or 'application/pdf'};base64,{p.data}"
        # OpenAI needs a name with inline file data
        f["filename"] = p.filename or _default_filename(p.media_type)
    elif p.filename:
        f["filename"] = p.filename
    return {"type": "file", "file": f}


def _default_filename(media_type: str | None) -> str:
    ext = mimetypes.guess_extension(media_type or "application/pdf") or ".pdf"
    return f"document{ext}"
