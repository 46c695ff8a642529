"""Content a provider's wire format cannot carry, found before the request is encoded.

The parameter policy (``providers.params``) refuses what is found with a 400 naming the caller's own
field, or drops it and reports it with ``drop_params``, so no document, recording or option is lost
silently while the client gets a 200:

- OpenAI Chat Completions takes PDF files inline (base64 ``file_data``) or by uploaded ``file_id``, never
  by URL, and plain text as text; audio only as ``input_audio`` in wav or mp3; no video, no other file
  types, no document citations.
- Gemini takes files inline or by URI, but has no document citations, and no file id of another API.
- Only Anthropic takes a document made of the caller's own content blocks (``source.type: content``).
- Anthropic takes no audio or video, and cannot narrow a tool choice to some of the tools.
- Ollama's ``/api/chat`` takes text and images only: no documents, audio or video.
- An earlier spoken answer (an assistant message's ``audio`` id) means something to OpenAI alone.

    >>> req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.FilePart(url="https://x/a.pdf")])])
    >>> [f.field for f in unsupported_content(req, "openai_chat")]
    ['messages[0].content[0]']
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import msgspec

from llmswitch import ir
from llmswitch.dialects.openai_messages import AUDIO_FORMATS


class Finding(NamedTuple):
    """One thing the target cannot take: the IR message and part, the caller's name for it, and what
    dropping it removes (the whole part, or only its ask for citations)."""

    message: int
    part: int
    field: str
    drops: Literal["part", "citations"]


def unsupported_content(req: ir.Request, dialect: str) -> list[Finding]:
    """What of ``req``'s content ``dialect`` (the provider's wire format) cannot carry."""
    found: list[Finding] = []
    systems = 0
    for mi, m in enumerate(req.messages):
        if m.role == "system":
            systems += 1
        for pi, p in enumerate(m.content):
            foreign_document = (
                isinstance(p, ir.ProviderPart)
                and p.provider == "anthropic"
                and p.block.get("type") == "document"
                and dialect != "anthropic_messages"
            )
            if isinstance(p, ir.ProviderPart) and p.provider == "openai" and dialect != "openai_chat":
                # an earlier spoken answer of OpenAI's, by its id (only an OpenAI caller writes one)
                found.append(Finding(mi, pi, f"messages[{mi}].audio", "part"))
                continue
            if not isinstance(p, ir.FilePart) and not foreign_document:
                continue
            # Anthropic and Gemini callers write the system prompt outside their messages
            lifted = systems if req.client_dialect in ("anthropic_messages", "gemini") and m.role != "system" else 0
            where = _caller_field(req.client_dialect, mi - lifted, pi)
            if not isinstance(p, ir.FilePart):
                # a document of the caller's own chunks (source type "content"): Anthropic's alone
                found.append(Finding(mi, pi, where, "part"))
            elif not _can_carry(p, dialect):
                found.append(Finding(mi, pi, where, "part"))
            elif p.citations is not None and dialect != "anthropic_messages":
                found.append(Finding(mi, pi, f"{where}.citations", "citations"))
    return found


def without(req: ir.Request, findings: list[Finding]) -> ir.Request:
    """``req`` without what ``findings`` name (parts removed, or their citation ask cleared)."""
    by_message: dict[int, dict[int, Finding]] = {}
    for f in findings:
        by_message.setdefault(f.message, {})[f.part] = f
    messages = list(req.messages)
    for mi, parts in by_message.items():
        content: list[ir.Part] = []
        for pi, p in enumerate(messages[mi].content):
            hit = parts.get(pi)
            if hit is None:
                content.append(p)
            elif hit.drops == "citations" and isinstance(p, ir.FilePart):
                content.append(msgspec.structs.replace(p, citations=None))
        messages[mi] = msgspec.structs.replace(messages[mi], content=content)
    kept = [m for m in messages if m.content or m.role not in ("user", "assistant")]
    return msgspec.structs.replace(req, messages=kept)


def _can_carry(p: ir.FilePart, dialect: str) -> bool:
    media = (p.media_type or "").lower()
    if dialect == "anthropic_messages":
        return not media.startswith(("audio/", "video/"))
    if dialect == "gemini":
        # a file id of another API (Anthropic's file_…, OpenAI's file-…) names nothing at Gemini
        return p.data is not None or p.url is not None or (p.file_id or "").startswith(("files/", "https://"))
    if dialect == "openai_chat":
        if media.startswith("video/"):
            return False
        if media.startswith("audio/"):
            return p.data is not None and media in AUDIO_FORMATS
        if media not in ("", "application/pdf", "text/plain"):
            return False  # Chat Completions reads PDF files only (plain text goes as a text part)
        return p.data is not None or p.file_id is not None
    # Ollama's /api/chat takes text and images only
    return dialect != "ollama_chat"


def _caller_field(dialect: str | None, message: int, part: int) -> str:
    if dialect == "gemini":
        return f"contents[{message}].parts[{part}]"
    return f"messages[{message}].content[{part}]"


def unsupported_tool_choice(req: ir.Request, dialect: str) -> str | None:
    """The caller's field for a tool choice ``dialect`` cannot express, else None: Anthropic's
    ``tool_choice`` names one tool or any, never a set of them (Gemini's ``allowedFunctionNames``);
    Ollama has no tool choice at all, so cannot be made to call a tool (``auto`` over some tools is
    offering it only those, and ``none`` offering none)."""
    tc = req.tool_choice
    if tc is None:
        return None
    if dialect == "ollama_chat" and req.tools and tc.mode in ("required", "tool"):
        if req.client_dialect == "gemini":
            return "toolConfig.functionCallingConfig.mode"
        if req.client_dialect == "anthropic_messages":
            return "tool_choice"
        return "function_call" if req.legacy_functions else "tool_choice"
    if not tc.allowed or dialect != "anthropic_messages":
        return None
    if req.client_dialect == "gemini":
        return "toolConfig.functionCallingConfig.allowedFunctionNames"
    return "tool_choice.allowed_tools"


def choice_without_narrowing(tc: ir.ToolChoice, dialect: str) -> ir.ToolChoice:
    """The tool choice left when what :func:`unsupported_tool_choice` found is dropped: for Anthropic the
    same choice over every tool; for Ollama the model may call (only) the tools it was to choose from."""
    if dialect == "ollama_chat":
        allowed = [tc.name] if tc.mode == "tool" and tc.name else tc.allowed
        return ir.ToolChoice(mode="auto", allowed=allowed, parallel=tc.parallel)
    return msgspec.structs.replace(tc, allowed=None)
