"""Gemini ``contents`` and parts <-> IR messages and parts (both directions), for ``gemini``.

Reads what the REST API and the google-genai SDKs send: camelCase or snake_case field names,
``role`` omitted (it means ``user``), legacy ``function`` turns, ``functionResponse`` with ``id`` or
only a ``name``. See ``gemini``'s module docstring for how ids and thought signatures are kept.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import dumps, invalid, loads_lenient

_SYNTHESIZED_ID = re.compile(r"call_[0-9a-f]{24}")
# part fields that carry data (a part with none of them is malformed)
_DATA_FIELDS = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "toolCall",
    "toolResponse",
)
_CAMEL_TO_SNAKE = {
    "inlineData": "inline_data",
    "fileData": "file_data",
    "functionCall": "function_call",
    "functionResponse": "function_response",
    "executableCode": "executable_code",
    "codeExecutionResult": "code_execution_result",
    "toolCall": "tool_call",
    "toolResponse": "tool_response",
    "thoughtSignature": "thought_signature",
    "mimeType": "mime_type",
    "fileUri": "file_uri",
    "displayName": "display_name",
}


def get(d: dict[str, Any], camel: str) -> Any:
    """A field by its REST (camelCase) name, or by the snake_case name the protobuf parser also takes."""
    v = d.get(camel)
    if v is None:
        snake = _CAMEL_TO_SNAKE.get(camel) or re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()
        v = d.get(snake)
    return v


def tool_call_id(seed: str) -> str:
    """A deterministic tool-call id for a Gemini function call (Gemini sends none)."""
    return "call_" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def is_synthesized(call_id: str) -> bool:
    """Whether an id was made by :func:`tool_call_id` (and so must not be sent to Gemini)."""
    return _SYNTHESIZED_ID.fullmatch(call_id) is not None


# ---------------------------------------------------------------- Gemini part -> IR parts


def part_in(p: dict[str, Any], *, role: str, call_seed: str = "", where: str = "part") -> list[ir.Part]:
    """The IR parts for one Gemini part; ``call_seed`` makes a function call's id (see ``tool_call_id``)."""
    sig = get(p, "thoughtSignature")
    text = p.get("text")
    if isinstance(text, str):
        if p.get("thought"):
            return [ir.ReasoningPart(text=text, signature=sig, provider="gemini")] if text or sig else []
        out: list[ir.Part] = [ir.ReasoningPart(text="", signature=sig, provider="gemini")] if sig else []
        if text:
            out.append(ir.TextPart(text=text))
        return out
    fc = get(p, "functionCall")
    if isinstance(fc, dict):
        arguments = dumps(fc.get("args") or {}).decode()
        name = str(fc.get("name") or "")
        native = fc.get("id")
        return [
            ir.ToolCallPart(
                id=native if isinstance(native, str) and native else tool_call_id(f"{call_seed}:{name}:{arguments}"),
                name=name,
                arguments=arguments,
                provider_specific={"thought_signature": sig} if sig else None,
            )
        ]
    if role == "user":
        media = _media_in(p, where)
        if media is not None:
            return [media]
    # executable code, its result, generated media, server tool calls: kept whole for Gemini
    return [ir.ProviderPart(provider="gemini", block=p)]


# part-level fields of a media part that only Gemini reads (clip and frame rate of a video, resolution)
_MEDIA_FIELDS = ("videoMetadata", "mediaResolution")


def _media_in(p: dict[str, Any], where: str) -> ir.ImagePart | ir.FilePart | None:
    media = _media_source_in(p, where)
    own = {k: v for k in _MEDIA_FIELDS if (v := get(p, k)) is not None}
    if media is not None and own:
        media.provider_specific = {"gemini": own}
    return media


def _media_source_in(p: dict[str, Any], where: str) -> ir.ImagePart | ir.FilePart | None:
    blob = get(p, "inlineData")
    if blob is not None:
        mime = get(blob, "mimeType") if isinstance(blob, dict) else None
        data = blob.get("data") if isinstance(blob, dict) else None
        if not isinstance(mime, str) or not isinstance(data, str):
            raise invalid(f"{where}.inlineData", "needs base64 'data' and a 'mimeType'")
        if mime.startswith("image/"):
            return ir.ImagePart(data=data, media_type=mime)
        return ir.FilePart(data=data, media_type=mime, filename=get(blob, "displayName"))
    fd = get(p, "fileData")
    if fd is not None:
        uri = get(fd, "fileUri") if isinstance(fd, dict) else None
        mime = get(fd, "mimeType") if isinstance(fd, dict) else None
        if not isinstance(uri, str) or not uri:
            raise invalid(f"{where}.fileData.fileUri", "is required")
        if isinstance(mime, str) and mime.startswith("image/"):
            return ir.ImagePart(url=uri, media_type=mime)
        return ir.FilePart(url=uri, media_type=mime if isinstance(mime, str) else None, filename=get(fd, "displayName"))
    return None


# ---------------------------------------------------------------- contents -> IR messages (server side)


def map_messages_in(contents: list[Any], system: Any = None) -> list[ir.Message]:
    """Gemini ``contents`` (and ``systemInstruction``) as IR messages, validated, naming the field."""
    out: list[ir.Message] = []
    if system is not None:
        out.append(ir.Message(role="system", content=_system_in(system)))
    # calls of the latest model turn not answered yet: a functionResponse without an id takes the
    # id of the first unanswered call of the same name
    pending: list[ir.ToolCallPart] = []
    for i, c in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(c, dict):
            raise invalid(where, "must be an object with 'role' and 'parts'")
        role = c.get("role") or "user"
        if role not in ("user", "model", "function"):
            raise invalid(f"{where}.role", f"{role!r} is not one of user, model")
        parts = c.get("parts")
        if not isinstance(parts, list) or not parts:
            raise invalid(f"{where}.parts", "a non-empty list of parts is required")
        for j, p in enumerate(parts):
            if not isinstance(p, dict) or not any(get(p, k) is not None for k in _DATA_FIELDS):
                raise invalid(f"{where}.parts[{j}]", "a part needs one of " + ", ".join(_DATA_FIELDS))
            if not isinstance(p.get("text", ""), str):
                raise invalid(f"{where}.parts[{j}].text", "must be a string")
        if role == "model":
            msg: list[ir.Part] = []
            pending.clear()
            for j, p in enumerate(parts):
                fc = get(p, "functionCall")
                if fc is not None and (not isinstance(fc, dict) or not isinstance(fc.get("name"), str)):
                    raise invalid(f"{where}.parts[{j}].functionCall.name", "is required")
                got = part_in(p, role="model", call_seed=f"{i}:{len(pending)}")
                pending.extend(x for x in got if isinstance(x, ir.ToolCallPart))
                msg.extend(got)
            out.append(ir.Message(role="assistant", content=msg))
            continue
        user: list[ir.Part] = []
        for j, p in enumerate(parts):
            fr = get(p, "functionResponse")
            if fr is None:
                user.extend(part_in(p, role="user", where=f"{where}.parts[{j}]"))
                continue
            if user:
                out.append(ir.Message(role="user", content=user))
                user = []
            out.append(ir.Message(role="tool", content=[_result_in(fr, pending, f"{where}.parts[{j}]")]))
        if user:
            out.append(ir.Message(role="user", content=user))
    return out


def _system_in(system: Any) -> list[ir.Part]:
    if isinstance(system, str):
        return [ir.TextPart(text=system)]
    parts = system.get("parts") if isinstance(system, dict) else None
    if not isinstance(parts, list) or not all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in parts):
        raise invalid("systemInstruction.parts", "must be a list of text parts")
    return [ir.TextPart(text=p["text"]) for p in parts]


def _result_in(fr: Any, pending: list[ir.ToolCallPart], where: str) -> ir.ToolResultPart:
    if not isinstance(fr, dict) or not isinstance(fr.get("name"), str) or not fr["name"]:
        raise invalid(f"{where}.functionResponse.name", "the name of the function called is required")
    name = fr["name"]
    call_id = fr.get("id")
    if isinstance(call_id, str) and call_id:
        pending[:] = [c for c in pending if c.id != call_id]
    else:
        match = next((c for c in pending if c.name == name), None)
        if match is not None:
            pending.remove(match)
            call_id = match.id
        else:
            call_id = tool_call_id(f"result:{where}:{name}")
    response = fr.get("response")
    is_error = False
    structured = None
    if isinstance(response, dict) and len(response) == 1 and ("output" in response or "error" in response):
        is_error = "error" in response
        value = response.get("error") if is_error else response.get("output")
        text = value if isinstance(value, str) else dumps(value).decode()
    else:
        text = dumps(response if response is not None else {}).decode()
        # an object of the function's own shape goes back to Gemini as that object
        structured = response if isinstance(response, dict) else None
    content: list[ir.TextPart | ir.ImagePart | ir.FilePart] = [ir.TextPart(text=text)]
    for p in fr.get("parts") or []:
        media = _media_in(p, f"{where}.functionResponse.parts") if isinstance(p, dict) else None
        if media is not None:
            content.append(media)
    return ir.ToolResultPart(tool_call_id=call_id, content=content, is_error=is_error, name=name, structured=structured)


# ---------------------------------------------------------------- IR -> Gemini (client side, and responses)


def map_messages_out(messages: list[ir.Message]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """``(systemInstruction, contents)`` for IR messages; raises BadRequestError for an orphan tool result."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for i, m in enumerate(messages):
        if m.role in ("system", "developer"):
            system.extend({"text": p.text} for p in m.content if isinstance(p, ir.TextPart) and p.text)
            continue
        for c in m.tool_calls:
            names[c.id] = c.name
        parts = parts_out(m.content, names=names, where=f"messages[{i}]")
        if not parts:
            continue
        role = "model" if m.role == "assistant" else "user"
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return ({"parts": system} if system else None), contents


def parts_out(
    parts: list[ir.Part], *, names: dict[str, str] | None = None, where: str = "", any_signature: bool = False
) -> list[dict[str, Any]]:
    """Gemini parts for IR parts. ``names`` maps tool-call ids to function names for tool results."""
    out: list[dict[str, Any]] = []
    sig: str | None = None  # the signature of a visible text part, waiting for that text
    for p in parts:
        if sig is not None and not isinstance(p, ir.TextPart):
            out.append({"text": "", "thoughtSignature": sig})
            sig = None
        if isinstance(p, ir.TextPart):
            if not p.text and sig is None:
                continue  # Gemini rejects empty text parts
            d: dict[str, Any] = {"text": p.text}
            if sig is not None:
                d["thoughtSignature"] = sig
                sig = None
            out.append(d)
        elif isinstance(p, ir.ReasoningPart):
            # only Gemini's own signatures go back to it (another provider's would be rejected)
            own = p.signature if any_signature or p.provider == "gemini" else None
            if p.text:
                d = {"text": p.text, "thought": True}
                if own:
                    d["thoughtSignature"] = own
                out.append(d)
            elif own:
                sig = own
        elif isinstance(p, ir.ImagePart | ir.FilePart):
            out.append(media_out(p))
            if isinstance(p, ir.FilePart) and p.context:
                out.append({"text": p.context})  # what the caller wrote about the document
        elif isinstance(p, ir.ToolCallPart):
            fc: dict[str, Any] = {"name": p.name, "args": _args_object(p.arguments)}
            if p.id and not is_synthesized(p.id):
                fc = {"id": p.id, **fc}
            d = {"functionCall": fc}
            ts = (p.provider_specific or {}).get("thought_signature")
            if ts:
                d["thoughtSignature"] = ts
            out.append(d)
        elif isinstance(p, ir.ToolResultPart):
            out.extend(_result_out(p, names or {}, where))
        elif isinstance(p, ir.ProviderPart) and p.provider == "gemini":
            out.append(p.block)
        # RedactedReasoningPart and other providers' blocks mean nothing to Gemini
    if sig is not None:
        out.append({"text": "", "thoughtSignature": sig})
    return out


def _args_object(arguments: str) -> dict[str, Any]:
    value = loads_lenient(arguments) if arguments else {}
    if isinstance(value, dict):
        return value
    # Gemini's args is an object: keep anything else (a model's broken JSON) visible under one key
    return {} if value is None and not arguments.strip() else {"arguments": value if value is not None else arguments}


def media_out(p: ir.ImagePart | ir.FilePart) -> dict[str, Any]:
    """``inlineData`` for inline base64, ``fileData`` for a URL or an uploaded file."""
    default = "image/jpeg" if isinstance(p, ir.ImagePart) else "application/pdf"
    own = (p.provider_specific or {}).get("gemini") or {}
    if p.data is not None:
        return {"inlineData": {"mimeType": p.media_type or default, "data": p.data}, **own}
    uri = p.url
    if uri is None and isinstance(p, ir.FilePart) and p.file_id:
        fid = p.file_id
        uri = fid if "://" in fid else f"https://generativelanguage.googleapis.com/v1beta/{fid}"
    mime = p.media_type or (mimetypes.guess_type(uri)[0] if uri else None) or default
    return {"fileData": {"mimeType": mime, "fileUri": uri or ""}, **own}


def _result_out(p: ir.ToolResultPart, names: dict[str, str], where: str) -> list[dict[str, Any]]:
    name = p.name or names.get(p.tool_call_id)
    if not name:
        raise invalid(
            f"{where}.tool_call_id",
            f"no earlier tool call has id {p.tool_call_id!r}; Gemini needs the function's name for its result",
        )
    response = p.structured if p.structured is not None else {"error" if p.is_error else "output": p.text}
    fr: dict[str, Any] = {"name": name, "response": response}
    if not is_synthesized(p.tool_call_id):
        fr = {"id": p.tool_call_id, **fr}
    out: list[dict[str, Any]] = [{"functionResponse": fr}]
    # images a tool returned go along as ordinary parts of the same user turn (every model reads those)
    out.extend(media_out(m) for m in p.content if isinstance(m, ir.ImagePart | ir.FilePart))
    return out
