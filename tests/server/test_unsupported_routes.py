"""Requests no route takes: 405 with Allow for a wrong method, 501 for an endpoint of the OpenAI, Anthropic or
Gemini APIs that llmswitch does not implement yet, 404 otherwise — each in the caller's dialect, naming the
endpoint, as the official SDKs raise it."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest
from gateway_harness import MASTER_KEY, ServedGateway, dialect_error
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from llmswitch.testing import FakeUpstream

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": MASTER_KEY}


def openai_client(gw: ServedGateway, sent: list[httpx.Request]) -> openai.OpenAI:
    """The SDK with its default retries, counting what it sends (a 501 must not be retried)."""
    http_client = httpx.Client(event_hooks={"request": [sent.append]})
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, http_client=http_client)


# ---------------------------------------------------------------- 501, through the official SDKs


@pytest.mark.parametrize(
    ("call", "endpoint"),
    [
        (lambda c: c.images.generate(prompt="a cat", model="m-openai"), "POST /v1/images/generations"),
        (lambda c: c.moderations.create(input="hello"), "POST /v1/moderations"),
        (lambda c: c.completions.create(model="m-openai", prompt="hi"), "POST /v1/completions"),
        (lambda c: c.uploads.cancel("upload_abc"), "POST /v1/uploads/upload_abc/cancel"),
        (lambda c: c.responses.input_tokens.count(model="m-openai", input="hi"), "POST /v1/responses/input_tokens"),
        (lambda c: c.audio.speech.create(model="tts-1", voice="alloy", input="hi"), "POST /v1/audio/speech"),
        (lambda c: c.fine_tuning.jobs.list(), "GET /v1/fine_tuning/jobs"),
        (lambda c: c.models.retrieve("m-openai"), "GET /v1/models/m-openai"),
    ],
    ids=["images", "moderations", "completions", "uploads", "responses", "speech", "fine_tuning", "model"],
)
def test_openai_sdk_raises_501_naming_the_endpoint_without_retrying(
    gw: ServedGateway, up: FakeUpstream, call: Any, endpoint: str
) -> None:
    sent: list[httpx.Request] = []
    with openai_client(gw, sent) as client, pytest.raises(openai.InternalServerError) as caught:
        call(client)
    assert caught.value.status_code == 501
    assert f"{endpoint} (" in caught.value.message and "is not supported by llmswitch yet" in caught.value.message
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "unsupported_endpoint"
    assert len(sent) == 1  # x-should-retry: false keeps the SDK from asking again
    assert up.requests == []


def test_anthropic_sdk_raises_501_for_its_files_api(gw: ServedGateway, up: FakeUpstream) -> None:
    # count_tokens and message batches are served now (test_count_tokens.py, test_batch_anthropic.py)
    with anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY) as client:
        # the Files API shares OpenAI's path; the anthropic-version header says whose error to answer with
        with pytest.raises(anthropic.InternalServerError) as caught:
            client.beta.files.list()
        assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "error"
        assert "GET /v1/files (the Files API)" in caught.value.message
    assert up.requests == []


@pytest.mark.parametrize(
    ("call", "endpoint"),
    [
        # countTokens, embedContent and batchEmbedContents are served now (test_count_tokens.py, test_gemini_embed.py)
        (lambda c: list(c.files.list()), "GET /v1beta/files"),
        (lambda c: list(c.caches.list()), "GET /v1beta/cachedContents"),
    ],
    ids=["files", "caches"],
)
def test_genai_sdk_raises_501_unimplemented(gw: ServedGateway, up: FakeUpstream, call: Any, endpoint: str) -> None:
    options = gtypes.HttpOptions(base_url=gw.url, api_version="v1beta")
    with genai.Client(api_key=MASTER_KEY, http_options=options) as client, pytest.raises(genai_errors.ServerError) as e:
        call(client)
    assert (e.value.code, e.value.status) == (501, "UNIMPLEMENTED")
    assert endpoint in (e.value.message or "")
    assert "is not supported by llmswitch yet" in (e.value.message or "")
    assert up.requests == []


@pytest.mark.parametrize(
    ("method", "path", "headers", "face"),
    [
        ("POST", "/v1beta/models/m-gemini:predict", {}, "gemini"),
        ("GET", "/v1beta/models", {}, "gemini"),
        ("POST", "/v1beta/tunedModels/my-tuned:generateContent", {}, "gemini"),
        ("POST", "/v1/skills/skill_1/versions", {}, "anthropic"),
        ("POST", "/v1/complete", {}, "anthropic"),
        ("POST", "/v1/assistants", {}, "openai"),
        ("POST", "/images/generations", {}, "openai"),
        ("GET", "/v1/files/file-abc/content", ANTHROPIC_HEADERS, "anthropic"),
        ("GET", "/model/info", {}, "openai"),
        ("POST", "/key/block", {}, "openai"),
        ("GET", "/global/spend/report", {}, "openai"),
    ],
)
def test_known_unbuilt_endpoints_are_501_in_the_callers_dialect(
    gw: ServedGateway, up: FakeUpstream, method: str, path: str, headers: dict[str, str], face: str
) -> None:
    r = gw.call(method, path, {"x": 1} if method == "POST" else None, headers=headers)
    assert r.status == 501
    kind, message = dialect_error(face, r)
    assert kind == {"gemini": "UNIMPLEMENTED"}.get(face, "invalid_request_error")
    assert message.startswith(f"{method} {path} (") and message.endswith("is not supported by llmswitch yet")
    assert r.headers["x-should-retry"] == "false"
    assert up.requests == []


# ---------------------------------------------------------------- 405 and 404


@pytest.mark.parametrize(
    ("method", "path", "face", "allow"),
    [
        ("GET", "/v1/chat/completions", "openai", "POST"),
        ("DELETE", "/v1/models", "openai", "GET"),
        ("GET", "/v1/messages", "anthropic", "POST"),
        ("GET", "/v1beta/models/m-gemini:generateContent", "gemini", "POST"),
        ("POST", "/health/liveliness", "openai", "GET"),
    ],
)
def test_a_wrong_method_on_a_served_path_is_405_with_allow(
    gw: ServedGateway, method: str, path: str, face: str, allow: str
) -> None:
    r = gw.call(method, path, {"model": "m"} if method == "POST" else None)
    assert r.status == 405
    assert r.headers["allow"] == allow
    kind, message = dialect_error(face, r)
    assert kind == {"gemini": "INVALID_ARGUMENT"}.get(face, "invalid_request_error")
    assert message == f"{method} {path}: method not allowed; this endpoint takes {allow}"


def test_the_openai_sdk_reads_a_405(gw: ServedGateway) -> None:
    with (
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as client,
        pytest.raises(openai.APIStatusError) as caught,
    ):
        client.get("/chat/completions", cast_to=httpx.Response)
    assert caught.value.status_code == 405
    assert caught.value.message.endswith(" - GET /v1/chat/completions: method not allowed; this endpoint takes POST")


@pytest.mark.parametrize(
    ("path", "headers", "face", "message"),
    [
        (
            "/v1/chat/completion",
            {},
            "openai",
            "unknown endpoint POST /v1/chat/completion; did you mean '/v1/chat/completions'?",
        ),
        ("/v2/nothing", {}, "openai", "unknown endpoint POST /v2/nothing"),
        (
            "/v1/messages/extra",
            {},
            "anthropic",
            "unknown endpoint POST /v1/messages/extra; did you mean '/v1/messages'?",
        ),
        ("/v1/whatever", ANTHROPIC_HEADERS, "anthropic", "unknown endpoint POST /v1/whatever"),
        ("/v1beta/nothing", {}, "gemini", "unknown endpoint POST /v1beta/nothing"),
        (
            "/v1alpha/models/m-gemini:generateContent",
            {},
            "gemini",
            "unknown endpoint POST /v1alpha/models/m-gemini:generateContent",
        ),
    ],
)
def test_an_unknown_path_is_404_in_the_callers_dialect(
    gw: ServedGateway, up: FakeUpstream, path: str, headers: dict[str, str], face: str, message: str
) -> None:
    r = gw.call("POST", path, {"model": "m"}, headers=headers)
    assert r.status == 404
    assert dialect_error(face, r) == ({"gemini": "NOT_FOUND"}.get(face, "not_found_error"), message)
    assert up.requests == []


def test_the_openai_sdk_raises_not_found_for_an_unknown_path(gw: ServedGateway) -> None:
    with (
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as client,
        pytest.raises(openai.NotFoundError) as caught,
    ):
        client.post("/nothing-here", cast_to=httpx.Response, body={})
    assert caught.value.message.endswith(" - unknown endpoint POST /v1/nothing-here")
