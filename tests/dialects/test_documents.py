"""Documents and audio carried faithfully between dialects, or refused/dropped by the parameter policy.

Anthropic ``document`` blocks (PDF by base64 or URL, plain text, with ``citations``, ``context`` and
``title``) reach OpenAI as ``file`` parts and Gemini as ``inlineData`` / ``fileData``; OpenAI
``input_audio`` stays ``input_audio`` and becomes Gemini audio; what a target cannot take (a URL for
OpenAI's ``file_data``, citations outside Anthropic, audio for Anthropic) goes through the policy.
"""

from __future__ import annotations

import base64
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from llmswitch import ir
from llmswitch.dialects import anthropic_messages, gemini_request, openai_chat
from llmswitch.dialects.content_support import unsupported_content
from llmswitch.errors import UnsupportedParamsError
from llmswitch.providers import params

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs"
PDF = base64.b64encode(b"%PDF-1.4 a tiny pdf").decode()
TEXT = "The grass is green. The sky is blue."


@cache
def _spec(name: str, schema: str) -> Draft202012Validator:
    doc = json.loads((SPECS / f"{name}-openapi.json").read_text())
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]})


def anthropic_request(*blocks: dict[str, Any]) -> ir.Request:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": [*blocks, {"type": "text", "text": "Summarise."}]}],
    }
    return anthropic_messages.decode_request(body)


PDF_DOC = {
    "type": "document",
    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
    "title": "report.pdf",
    "context": "Written in 2024 by the finance team.",
    "citations": {"enabled": True},
}
TEXT_DOC = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": TEXT}, "title": "notes"}
URL_DOC = {"type": "document", "source": {"type": "url", "url": "https://example.com/report.pdf"}}
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOCX = {"type": "document", "source": {"type": "base64", "media_type": DOCX_TYPE, "data": "UEsDBA=="}}
CONTENT_DOC = {
    "type": "document",
    "source": {"type": "content", "content": [{"type": "text", "text": "First chunk."}]},
    "citations": {"enabled": True},
}


# ---------------------------------------------------------------- Anthropic documents -> IR -> each provider


def test_every_anthropic_document_field_is_decoded() -> None:
    req = anthropic_request(PDF_DOC, TEXT_DOC, URL_DOC)
    parts = req.messages[0].content
    assert parts[0] == ir.FilePart(
        data=PDF,
        media_type="application/pdf",
        filename="report.pdf",
        context="Written in 2024 by the finance team.",
        citations={"enabled": True},
    )
    assert parts[1] == ir.FilePart(
        data=base64.b64encode(TEXT.encode()).decode(), media_type="text/plain", filename="notes"
    )
    assert parts[2] == ir.FilePart(url="https://example.com/report.pdf")


def test_anthropic_documents_come_back_to_anthropic_unchanged() -> None:
    req = anthropic_request(PDF_DOC, TEXT_DOC, URL_DOC)
    body = anthropic_messages.encode_request(req, model="claude-sonnet-4-5")
    assert body["messages"][0]["content"][:3] == [PDF_DOC, TEXT_DOC, URL_DOC]
    assert not list(_spec("anthropic", "CreateMessageParams").iter_errors(body))


def test_anthropic_documents_reach_openai_as_file_parts() -> None:
    req = anthropic_request(PDF_DOC, TEXT_DOC)
    req, dropped = params.apply(req, "openai", model="gpt-4o", deployment="d", drop=True, dialect="openai_chat")
    assert dropped == ("messages[0].content[0].citations",)
    body = openai_chat.encode_request(req, model="gpt-4o")
    content = body["messages"][0]["content"]
    assert content[0] == {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "report.pdf"},
    }
    assert content[1] == {"type": "text", "text": "Written in 2024 by the finance team."}
    # Chat Completions reads PDF files only; OpenAI documents sending a text file's contents as text
    assert content[2] == {"type": "text", "text": TEXT}
    assert content[3] == {"type": "text", "text": "Summarise."}
    assert not list(_spec("openai", "CreateChatCompletionRequest").iter_errors(body))


def test_anthropic_documents_reach_gemini_as_inline_data_and_file_data() -> None:
    req = anthropic_request(PDF_DOC, URL_DOC)
    req, dropped = params.apply(req, "gemini", model="gemini-2.5-flash", deployment="d", drop=True, dialect="gemini")
    assert dropped == ("messages[0].content[0].citations",)
    parts = gemini_request.encode_request(req, model="gemini-2.5-flash")["contents"][0]["parts"]
    assert parts[0] == {"inlineData": {"mimeType": "application/pdf", "data": PDF}}
    assert parts[1] == {"text": "Written in 2024 by the finance team."}
    assert parts[2] == {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/report.pdf"}}


@pytest.mark.parametrize(
    ("blocks", "provider", "dialect", "fields"),
    [
        ([URL_DOC], "openai", "openai_chat", ["messages[0].content[0]"]),
        ([PDF_DOC], "openai", "openai_chat", ["messages[0].content[0].citations"]),
        ([PDF_DOC], "gemini", "gemini", ["messages[0].content[0].citations"]),
        (
            [{"type": "document", "source": {"type": "file", "file_id": "file_011"}}],
            "gemini",
            "gemini",
            ["messages[0].content[0]"],
        ),
        ([CONTENT_DOC], "openai", "openai_chat", ["messages[0].content[0]"]),
        ([CONTENT_DOC], "gemini", "gemini", ["messages[0].content[0]"]),
        ([DOCX], "openai", "openai_chat", ["messages[0].content[0]"]),
    ],
    ids=[
        "url-to-openai",
        "citations-to-openai",
        "citations-to-gemini",
        "anthropic-file-id-to-gemini",
        "content-document-to-openai",
        "content-document-to-gemini",
        "docx-to-openai",
    ],
)
def test_what_the_target_cannot_express_is_refused_naming_the_callers_field(
    blocks: list[dict[str, Any]], provider: str, dialect: str, fields: list[str]
) -> None:
    req = anthropic_request(*blocks)
    with pytest.raises(UnsupportedParamsError) as exc:
        params.apply(req, provider, model="m", deployment="d", dialect=dialect)
    assert list(exc.value.params) == fields
    assert fields[0] in str(exc.value)
    # with drop_params it is dropped and reported, and what is left encodes
    out, dropped = params.apply(req, provider, model="m", deployment="d", drop=True, dialect=dialect)
    assert list(dropped) == fields
    assert not unsupported_content(out, dialect)


def test_anthropic_takes_every_document_form() -> None:
    req = anthropic_request(PDF_DOC, TEXT_DOC, URL_DOC, CONTENT_DOC)
    assert unsupported_content(req, "anthropic_messages") == []


# ---------------------------------------------------------------- OpenAI input_audio and files


def openai_request(*parts: dict[str, Any]) -> ir.Request:
    return openai_chat.decode_request(
        {"model": "gpt-4o-audio-preview", "messages": [{"role": "user", "content": list(parts)}]}
    )


AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}


def test_input_audio_stays_input_audio_for_openai() -> None:
    req = openai_request(AUDIO, {"type": "text", "text": "What is said?"})
    body = openai_chat.encode_request(req, model="gpt-4o-audio-preview")
    assert body["messages"][0]["content"][0] == AUDIO
    assert not list(_spec("openai", "CreateChatCompletionRequest").iter_errors(body))


def test_mp3_audio_stays_mp3() -> None:
    mp3 = {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}}
    body = openai_chat.encode_request(openai_request(mp3), model="gpt-4o-audio-preview")
    assert body["messages"][0]["content"][0] == mp3


def test_input_audio_reaches_gemini_as_inline_audio() -> None:
    parts = gemini_request.encode_request(openai_request(AUDIO), model="gemini-2.5-flash")["contents"][0]["parts"]
    assert parts == [{"inlineData": {"mimeType": "audio/wav", "data": "UklGRiQAAABXQVZF"}}]


def test_input_audio_for_anthropic_goes_through_the_policy() -> None:
    req = openai_request({"type": "text", "text": "Listen:"}, AUDIO)
    with pytest.raises(UnsupportedParamsError) as exc:
        params.apply(req, "anthropic", model="claude-sonnet-4-5", deployment="d", dialect="anthropic_messages")
    assert exc.value.params == ("messages[0].content[1]",)
    out, dropped = params.apply(
        req, "anthropic", model="claude-sonnet-4-5", deployment="d", drop=True, dialect="anthropic_messages"
    )
    assert dropped == ("messages[0].content[1]",)
    body = anthropic_messages.encode_request(out, model="claude-sonnet-4-5")
    assert body["messages"] == [{"role": "user", "content": "Listen:"}]


def test_gemini_audio_for_openai_is_input_audio_and_video_is_refused() -> None:
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"inlineData": {"mimeType": "audio/mp3", "data": "SUQz"}},
                    {"inlineData": {"mimeType": "video/mp4", "data": "AAAA"}},
                ],
            }
        ]
    }
    req = gemini_request.decode_request(body, model="gemini-2.5-flash")
    req.client_dialect = "gemini"  # as the gateway's Gemini face marks it: errors name the caller's own fields
    with pytest.raises(UnsupportedParamsError) as exc:
        params.apply(req, "openai", model="gpt-4o", deployment="d", dialect="openai_chat")
    assert exc.value.params == ("contents[0].parts[1]",)
    out, _ = params.apply(req, "openai", model="gpt-4o", deployment="d", drop=True, dialect="openai_chat")
    sent = openai_chat.encode_request(out, model="gpt-4o")["messages"][0]["content"]
    assert sent == [{"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}}]


def test_inline_file_data_to_openai_always_has_a_filename() -> None:
    req = openai_request({"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}"}})
    body = openai_chat.encode_request(req, model="gpt-4o")
    assert body["messages"][0]["content"][0]["file"] == {
        "file_data": f"data:application/pdf;base64,{PDF}",
        "filename": "document.pdf",
    }
