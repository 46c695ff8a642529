"""llmswitch.providers.paths: a model or deployment name is one percent-encoded path segment, or a 400.

Through the SDK to a raw loopback server that records the request line exactly as it arrived.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

import llmswitch
from llmswitch.errors import BadRequestError
from llmswitch.providers import resolve_model
from llmswitch.providers.paths import path_segment

GEMINI_ANSWER = json.dumps(
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
    }
).encode()
OPENAI_ANSWER = json.dumps(
    {
        "id": "c1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()  # fmt: skip


@asynccontextmanager
async def recording(answer: bytes) -> AsyncIterator[tuple[str, list[str]]]:
    """A raw HTTP server on 127.0.0.1 answering every request with ``answer``; yields (base URL, request lines)."""
    lines: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
                size = next(
                    (int(h.split(b":", 1)[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")),
                    0,
                )
                await reader.readexactly(size)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(answer), answer)
                )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", lines
    finally:
        server.close()
        await llmswitch.transport.close_session()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("models/gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("tunedModels/my-tune-7", "/v1beta/tunedModels/my-tune-7:generateContent"),
        ("gem?ini", "/v1beta/models/gem%3Fini:generateContent"),
        ("a#b c", "/v1beta/models/a%23b%20c:generateContent"),
        ("x%2F..%2Fy", "/v1beta/models/x%252F..%252Fy:generateContent"),
        ("v:streamGenerateContent", "/v1beta/models/v%3AstreamGenerateContent:generateContent"),
        ("modèle", "/v1beta/models/mod%C3%A8le:generateContent"),
    ],
)
def test_a_gemini_model_name_reaches_the_upstream_as_one_encoded_segment(model: str, path: str) -> None:
    async def main() -> None:
        async with recording(GEMINI_ANSWER) as (base, lines):
            r = await llmswitch.acompletion(
                model=f"gemini/{model}", messages=[{"role": "user", "content": "Hi"}], api_base=base, api_key="k"
            )
            assert r.choices[0].message.content == "ok"
            assert lines == [f"POST {path} HTTP/1.1"]

    asyncio.run(main())


@pytest.mark.parametrize(
    "model",
    ["x/../../v1beta/cachedContents?", "..", ".", "models/..", "a/b", "tunedModels/a/b", "a\\b", "bad\x00name"],
)
def test_a_gemini_model_name_that_would_leave_its_segment_is_refused_and_nothing_is_sent(model: str) -> None:
    async def main() -> None:
        async with recording(GEMINI_ANSWER) as (base, lines):
            with pytest.raises(BadRequestError, match=r"gemini: the model name .* cannot be part of a URL path") as e:
                await llmswitch.acompletion(
                    model=f"gemini/{model}", messages=[{"role": "user", "content": "Hi"}], api_base=base, api_key="k"
                )
            assert e.value.status_code == 400 and lines == []

    asyncio.run(main())


def test_an_azure_deployment_name_is_one_encoded_segment_or_refused() -> None:
    async def main() -> None:
        async with recording(OPENAI_ANSWER) as (base, lines):
            messages = [{"role": "user", "content": "Hi"}]
            await llmswitch.acompletion(
                model="azure/my dep?x", messages=messages, api_base=base, api_key="k", api_version="2024-10-21"
            )
            assert lines == ["POST /openai/deployments/my%20dep%3Fx/chat/completions?api-version=2024-10-21 HTTP/1.1"]
            with pytest.raises(BadRequestError, match=r"azure: the deployment name '\.\./admin' cannot be part"):
                await llmswitch.acompletion(
                    model="azure/../admin", messages=messages, api_base=base, api_key="k", api_version="2024-10-21"
                )
            assert len(lines) == 1

    asyncio.run(main())


def test_embeddings_build_their_paths_the_same_way() -> None:
    provider, _ = resolve_model("gemini/x")
    endpoint = provider.endpoint(api_base="http://127.0.0.1:9", api_key="k")
    with pytest.raises(BadRequestError):
        provider.embedding_call(
            llmswitch.ir.EmbeddingRequest(model="x", input=["a"]), model="x/../../y", endpoint=endpoint
        )


@pytest.mark.parametrize("name", ["gemini-2.5-flash", "a_b.c-d", "...", "x..y"])
def test_safe_names_are_kept_as_written(name: str) -> None:
    assert path_segment(name, provider="p", what="model") == name
