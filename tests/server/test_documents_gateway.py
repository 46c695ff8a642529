"""Documents and audio through the gateway, with the official SDKs as clients.

An Anthropic client's PDF ``document`` (with title, context and citations) reaches an OpenAI deployment
as a ``file`` part and a Gemini one as ``inlineData``; the citations ask, which neither can honour, is
refused in the Anthropic error format naming the caller's field, or dropped and reported with
``drop_params``. An OpenAI client's ``input_audio`` reaches Gemini as inline audio and is refused for
Anthropic. The requests sent upstream are checked against the providers' published specs.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from gateway_harness import MASTER_KEY, ServedGateway
from jsonschema import Draft202012Validator

from llmswitch.testing import FakeUpstream, Reply

SHARED = Path(__file__).resolve().parents[3] / "shared"
MODELS = {
    "openai": "openai/gpt-4o",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
}
PDF = base64.b64encode(b"%PDF-1.4 a tiny pdf").decode()
DOC = {
    "type": "document",
    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
    "title": "report.pdf",
    "context": "Written in 2024 by the finance team.",
    "citations": {"enabled": True},
}
AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}


@cache
def spec(name: str, schema: str) -> Draft202012Validator:
    doc = json.loads((SHARED / "specs" / f"{name}-openapi.json").read_text())
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]})


@pytest.fixture(scope="module")
def dgw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    bases = {"openai": upstream.openai_base, "anthropic": upstream.anthropic_base, "gemini": upstream.gemini_base}
    db = tmp_path_factory.mktemp("documents") / "keys.db"
    rows = "".join(
        f"""  - model_name: doc-{family}
    litellm_params:
      model: {model}
      api_base: "{bases[family]}"
      api_key: sk-up-{family}
"""
        for family, model in MODELS.items()
    )
    text = (
        f"model_list:\n{rows}general_settings:\n  master_key: {MASTER_KEY}\n  store_path: {json.dumps(str(db))}\n"
        "router_settings:\n  num_retries: 0\n"
    )
    with ServedGateway(text) as served:
        yield served


def ask_anthropic(gw: ServedGateway, group: str, drop: bool) -> tuple[int, str, dict[str, str]]:
    content: Any = [DOC, {"type": "text", "text": "Summarise."}]
    with anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0) as client:
        try:
            raw = client.messages.with_raw_response.create(
                model=group,
                max_tokens=64,
                messages=[{"role": "user", "content": content}],
                extra_body={"drop_params": True} if drop else None,
            )
        except anthropic.BadRequestError as exc:
            assert exc.body is not None and exc.body["type"] == "error"
            return exc.status_code, exc.body["error"]["message"], {}
        raw.parse()
        return raw.status_code, "", dict(raw.headers)


def ask_openai(gw: ServedGateway, group: str, drop: bool) -> tuple[int, str, dict[str, str]]:
    content: Any = [{"type": "text", "text": "What is said?"}, AUDIO]
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as client:
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=group,
                messages=[{"role": "user", "content": content}],
                extra_body={"drop_params": True} if drop else None,
            )
        except openai.BadRequestError as exc:
            assert isinstance(exc.body, dict)
            return exc.status_code, str(exc.body.get("message")), {}
        raw.parse()
        return raw.status_code, "", dict(raw.headers)


def test_an_anthropic_document_with_citations_to_openai_is_refused_naming_the_field(
    dgw: ServedGateway, up: FakeUpstream
) -> None:
    status, message, _ = ask_anthropic(dgw, "doc-openai", drop=False)
    assert status == 400
    assert "messages[0].content[0].citations" in message
    assert up.requests == []


def test_an_anthropic_document_reaches_openai_as_a_file_part(dgw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(text="A report."))
    status, _, headers = ask_anthropic(dgw, "doc-openai", drop=True)
    assert status == 200
    assert headers["x-llmswitch-dropped-params"] == "messages[0].content[0].citations"
    body = up.requests[-1].json
    assert body["messages"][0]["content"][:2] == [
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "report.pdf"}},
        {"type": "text", "text": "Written in 2024 by the finance team."},
    ]
    assert not [e.message for e in spec("openai", "CreateChatCompletionRequest").iter_errors(body)]


def test_an_anthropic_document_reaches_gemini_as_inline_data(dgw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(text="A report."))
    status, _, headers = ask_anthropic(dgw, "doc-gemini", drop=True)
    assert status == 200
    assert headers["x-llmswitch-dropped-params"] == "messages[0].content[0].citations"
    parts = up.requests[-1].json["contents"][0]["parts"]
    assert parts[:2] == [
        {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
        {"text": "Written in 2024 by the finance team."},
    ]


def test_an_anthropic_document_to_anthropic_keeps_every_field(dgw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(text="A report."))
    status, _, _ = ask_anthropic(dgw, "doc-anthropic", drop=False)
    assert status == 200
    body = up.requests[-1].json
    assert body["messages"][0]["content"][0] == DOC
    assert not [e.message for e in spec("anthropic", "CreateMessageParams").iter_errors(body)]


def test_openai_input_audio_reaches_gemini_as_inline_audio(dgw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(text="Hello."))
    status, _, _ = ask_openai(dgw, "doc-gemini", drop=False)
    assert status == 200
    parts = up.requests[-1].json["contents"][0]["parts"]
    assert parts == [{"text": "What is said?"}, {"inlineData": {"mimeType": "audio/wav", "data": "UklGRiQAAABXQVZF"}}]


def test_openai_input_audio_to_anthropic_goes_through_the_policy(dgw: ServedGateway, up: FakeUpstream) -> None:
    status, message, _ = ask_openai(dgw, "doc-anthropic", drop=False)
    assert status == 400 and "messages[0].content[1]" in message
    assert up.requests == []
    up.script(Reply(text="Nothing to hear."))
    status, _, headers = ask_openai(dgw, "doc-anthropic", drop=True)
    assert status == 200
    assert headers["x-llmswitch-dropped-params"] == "messages[0].content[1]"
    body = up.requests[-1].json
    assert body["messages"] == [{"role": "user", "content": "What is said?"}]
    assert not [e.message for e in spec("anthropic", "CreateMessageParams").iter_errors(body)]


# ---------------------------------------------------------------- each provider's own fields, back to it

WEATHER = {"type": "object", "properties": {"city": {"type": "string", "minLength": 1}}, "required": ["city"]}


def test_gemini_native_fields_reach_gemini_unchanged(dgw: ServedGateway, up: FakeUpstream) -> None:
    video = {
        "fileData": {"mimeType": "video/mp4", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/v1"},
        "videoMetadata": {"startOffset": "10s", "endOffset": "20s"},
        "mediaResolution": {"level": "MEDIA_RESOLUTION_LOW"},
    }
    body = {
        "contents": [
            {"role": "user", "parts": [video, {"text": "Weather where this was filmed?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]},
        ],
        "tools": [
            {
                "functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": WEATHER}],
                "googleSearch": {},
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}},
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": WEATHER},
    }
    up.script(Reply(text='{"city": "Paris"}'))
    r = dgw.call("POST", "/v1beta/models/doc-gemini:generateContent", body)
    assert r.status == 200, r.body
    sent = up.requests[-1].json
    assert sent["contents"] == body["contents"]
    assert sent["tools"][0] == {"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": WEATHER}]}
    assert {"googleSearch": {}} in sent["tools"]
    assert sent["toolConfig"] == body["toolConfig"]
    assert sent["generationConfig"]["responseJsonSchema"] == WEATHER
    assert "responseSchema" not in sent["generationConfig"]


def test_anthropic_tool_fields_reach_anthropic_unchanged(dgw: ServedGateway, up: FakeUpstream) -> None:
    tool = {
        "name": "get_weather",
        "input_schema": WEATHER,
        "input_examples": [{"city": "Paris"}],
        "defer_loading": True,
        "eager_input_streaming": True,
        "allowed_callers": ["code_execution_20250825"],
    }
    caller = {"type": "code_execution_20250825", "tool_id": "srvtoolu_1"}
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}, "caller": caller}
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "21C"}]},
    ]
    up.script(Reply(text="21C in Paris."))
    r = dgw.call(
        "POST", "/v1/messages", {"model": "doc-anthropic", "max_tokens": 64, "tools": [tool], "messages": messages}
    )
    assert r.status == 200, r.body
    sent = up.requests[-1].json
    assert sent["tools"] == [tool]
    assert sent["messages"][1]["content"] == [use]
    assert not [e.message for e in spec("anthropic", "CreateMessageParams").iter_errors(sent)]
