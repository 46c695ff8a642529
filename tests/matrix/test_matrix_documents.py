"""Documents and media (issue 14, section 2), from every client to every family.

A PDF, a document by URL and audio, each written the way its client writes it, reach each family as its
own part for it (OpenAI ``file`` / ``input_audio``, Anthropic ``document``, Gemini ``inlineData`` /
``fileData``), valid by the provider's spec; where the family's format cannot carry it the policy
refuses it naming the caller's own field, or drops it with drop_params and says so. Never a silent skip.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from harness import FAMILIES, Ask, ServedGateway, ask, dropped, refused_then_dropped, the_request

from llmswitch.testing import FakeUpstream, Reply

PDF = base64.b64encode(b"%PDF-1.4 a tiny pdf").decode()
WAV = "UklGRiQAAABXQVZF"
URL = "https://example.com/report.pdf"
QUESTION = "Summarize the attachment."


def attachment_ask(
    openai_part: dict[str, Any] | None, anthropic_block: dict[str, Any] | None, gemini_part: dict[str, Any]
) -> Ask:
    """The question with one attachment after it, as each client writes it (``None``: a client that cannot)."""

    def content(part: dict[str, Any] | None) -> list[dict[str, Any]] | None:
        return None if part is None else [{"role": "user", "content": [{"type": "text", "text": QUESTION}, part]}]

    openai_messages, anthropic_messages = content(openai_part), content(anthropic_block)
    return Ask(
        openai={"messages": openai_messages} if openai_messages else None,
        anthropic={"max_tokens": 256, "messages": anthropic_messages} if anthropic_messages else None,
        gemini={"contents": [{"role": "user", "parts": [{"text": QUESTION}, gemini_part]}], "config": {}},
    )


def pdf_ask() -> Ask:
    return attachment_ask(
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "report.pdf"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
            "title": "report.pdf",
        },
        {"inline_data": {"mime_type": "application/pdf", "data": PDF}},
    )


def url_ask() -> Ask:
    return attachment_ask(
        None,
        {"type": "document", "source": {"type": "url", "url": URL}},
        {"file_data": {"mime_type": "application/pdf", "file_uri": URL}},
    )


def audio_ask() -> Ask:
    return attachment_ask(
        {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
        None,
        {"inline_data": {"mime_type": "audio/wav", "data": WAV}},
    )


def the_attachment(family: str, body: dict[str, Any]) -> Any:
    """The part that carries the attachment in the family's request (after the question's text)."""
    if family == "gemini":
        return body["contents"][0]["parts"][1]
    content = body["messages"][0]["content"]
    return content[1]


def pdf_expected(family: str, client: str) -> Any:
    # a Gemini caller's inlineData has no name: OpenAI needs one with inline data
    name = "document.pdf" if client == "gemini" else "report.pdf"
    return {
        "openai": {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": name}},
        "anthropic": {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
        "gemini": {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
    }[family]


def same_part(family: str, got: dict[str, Any], expected: dict[str, Any]) -> bool:
    # Anthropic's document may carry the title the caller gave (another client's filename)
    if family == "anthropic":
        got = {k: v for k, v in got.items() if k != "title"}
    return got == expected


# what each client calls the attachment (the second part of its first message)
FIELD = {
    "openai": "messages[0].content[1]",
    "sdk": "messages[0].content[1]",
    "anthropic": "messages[0].content[1]",
    "gemini": "contents[0].parts[1]",
}
CARRIES_PDF = ("openai", "anthropic", "gemini")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("client", ["openai", "anthropic", "gemini", "sdk"])
def test_a_pdf(gw: ServedGateway, up: FakeUpstream, client: str, family: str) -> None:
    up.script(Reply(text="A tiny report."))
    if family not in CARRIES_PDF:
        refused, kept, body = refused_then_dropped(client, family, pdf_ask(), gw=gw, up=up)
        assert FIELD[client] in refused.error
        assert (kept.text, dropped(kept)) == ("A tiny report.", {FIELD[client]})
        assert body["messages"][0]["content"] == QUESTION
        return
    seen = ask(client, f"m-{family}", pdf_ask(), gw=gw, up=up)
    assert (seen.status, seen.text) == (200, "A tiny report."), seen.error
    body = the_request(up, family).json
    assert same_part(family, the_attachment(family, body), pdf_expected(family, client)), body


@pytest.mark.parametrize("family", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("client", ["anthropic", "gemini"])
def test_a_document_by_url(gw: ServedGateway, up: FakeUpstream, client: str, family: str) -> None:
    up.script(Reply(text="ok"))
    if family == "openai":
        # Chat Completions takes files inline or by id, never by URL
        refused, kept, body = refused_then_dropped(client, family, url_ask(), gw=gw, up=up)
        assert FIELD[client] in refused.error and dropped(kept) == {FIELD[client]}
        assert URL not in str(body)
        return
    seen = ask(client, f"m-{family}", url_ask(), gw=gw)
    assert seen.status == 200, seen.error
    part = the_attachment(family, the_request(up, family).json)
    if family == "anthropic":
        assert part["source"] == {"type": "url", "url": URL}
    else:
        assert part == {"fileData": {"mimeType": "application/pdf", "fileUri": URL}}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("client", ["openai", "gemini", "sdk"])
def test_audio(gw: ServedGateway, up: FakeUpstream, client: str, family: str) -> None:
    up.script(Reply(text="A beep."))
    if family not in ("openai", "gemini"):
        refused, kept, body = refused_then_dropped(client, family, audio_ask(), gw=gw, up=up)
        assert FIELD[client] in refused.error
        assert (kept.text, dropped(kept)) == ("A beep.", {FIELD[client]})
        assert WAV not in str(body)
        return
    seen = ask(client, f"m-{family}", audio_ask(), gw=gw, up=up)
    assert (seen.status, seen.text) == (200, "A beep."), seen.error
    expected = {
        "openai": {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
        "gemini": {"inlineData": {"mimeType": "audio/wav", "data": WAV}},
    }[family]
    assert the_attachment(family, the_request(up, family).json) == expected
