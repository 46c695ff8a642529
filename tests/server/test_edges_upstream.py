"""The gateway when the upstream fails: rate limits and errors reach the client in its dialect (with
Retry-After), a stream that breaks after its first byte ends with an error the official SDK raises (never a
silently short answer), one that breaks before it is retried invisibly, and a client that hangs up cancels the
upstream call.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import anthropic
import openai
import pytest
from gateway_harness import (
    FACES,
    GROUPS,
    MASTER_KEY,
    UPSTREAM_KEYS,
    ServedGateway,
    chat_request,
    dialect_error,
    gateway_config,
)
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

from llmswitch.testing import FakeUpstream, Reply

PROVIDERS = ("openai", "anthropic", "gemini")
STORY = "Once upon a time a gateway relayed every byte it was given, in order, and told the truth when it could not."


@pytest.fixture(scope="module")
def retrying_gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    """The module's gateway (``gw``, see conftest) has no retries; this one retries twice."""
    db = tmp_path_factory.mktemp("edges-retry") / "keys.db"
    with ServedGateway(gateway_config(upstream, str(db), num_retries=2)) as served:
        yield served


# ---------------------------------------------------------------- upstream faults


FAULT_CASES = [pytest.param(f, p, id=f"{f}-{p}") for f in FACES for p in PROVIDERS]


@pytest.mark.parametrize(("face", "provider"), FAULT_CASES)
def test_upstream_429_reaches_the_client_with_retry_after(
    gw: ServedGateway, up: FakeUpstream, face: str, provider: str
) -> None:
    up.script(Reply(status=429, retry_after=7))
    path, body = chat_request(face, GROUPS[provider])
    r = gw.call("POST", path, body)
    assert r.status == 429
    assert r.headers["retry-after"] == "7"
    kind, _ = dialect_error(face, r)
    assert kind == {"openai": "rate_limit_error", "anthropic": "rate_limit_error", "gemini": "RESOURCE_EXHAUSTED"}[face]
    assert len(up.requests) == 1


def test_upstream_429_is_a_rate_limit_error_in_the_openai_sdk(gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(status=429, retry_after=12))
    with (
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as oc,
        pytest.raises(openai.RateLimitError) as caught,
    ):
        oc.chat.completions.create(model="m-anthropic", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.response.headers["retry-after"] == "12"


def test_a_fractional_retry_after_is_rounded_up(gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(status=429, headers={"retry-after-ms": "2500"}))
    r = gw.call("POST", *chat_request("openai", GROUPS["openai"]))
    assert r.status == 429
    assert r.headers["retry-after"] == "3"


@pytest.mark.parametrize(("face", "provider"), FAULT_CASES)
def test_upstream_500_after_retries_is_a_5xx_in_the_clients_format(
    retrying_gw: ServedGateway, up: FakeUpstream, face: str, provider: str
) -> None:
    # a short Retry-After keeps the retries quick
    up.script(*[Reply(status=500, retry_after=0.01, message="upstream exploded")] * 3)
    path, body = chat_request(face, GROUPS[provider])
    r = retrying_gw.call("POST", path, body)
    assert 500 <= r.status < 600
    kind, message = dialect_error(face, r)
    assert kind == {"openai": "server_error", "anthropic": "api_error", "gemini": "INTERNAL"}[face]
    assert "upstream exploded" in message
    assert len(up.requests) == 3  # the first try and num_retries=2
    assert UPSTREAM_KEYS[provider] not in r.body.decode()


def test_upstream_500_then_success_is_retried_invisibly(retrying_gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(status=500, retry_after=0.01), Reply(status=503, retry_after=0.01), Reply(text="third time"))
    with anthropic.Anthropic(base_url=retrying_gw.url, api_key=MASTER_KEY, max_retries=0) as ac:
        m = ac.messages.create(model="m-gemini", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert [b.text for b in m.content if b.type == "text"] == ["third time"]
    assert len(up.requests) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("face", FACES)
def test_upstream_rejecting_the_deployment_key_is_not_a_401_for_the_client(
    gw: ServedGateway, up: FakeUpstream, face: str, provider: str
) -> None:
    up.script(Reply(status=401))
    path, body = chat_request(face, GROUPS[provider])
    r = gw.call("POST", path, body)
    assert r.status == 502
    dialect_error(face, r)
    assert UPSTREAM_KEYS[provider] not in r.body.decode()


# ---------------------------------------------------------------- streams that break


def stream_through_sdk(face: str, gw: ServedGateway, group: str) -> tuple[str, BaseException | None]:
    """Read a streamed answer through the official SDK of ``face``: (the text received, the error raised)."""
    text = ""
    try:
        if face == "openai":
            with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as oc:
                for chunk in oc.chat.completions.create(
                    model=group, messages=[{"role": "user", "content": "tell me"}], stream=True
                ):
                    text += "".join(c.delta.content or "" for c in chunk.choices)
        elif face == "anthropic":
            with (
                anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0) as ac,
                ac.messages.stream(model=group, max_tokens=256, messages=[{"role": "user", "content": "tell me"}]) as s,
            ):
                for piece in s.text_stream:
                    text += piece
        else:
            options = gtypes.HttpOptions(base_url=gw.url, api_version="v1beta")
            with genai.Client(api_key=MASTER_KEY, http_options=options) as gc:
                for chunk in gc.models.generate_content_stream(model=group, contents="tell me"):
                    text += chunk.text or ""
    except Exception as exc:
        return text, exc
    return text, None


SDK_ERRORS: dict[str, type[Exception]] = {
    "openai": openai.APIError,
    "anthropic": anthropic.APIError,
    "gemini": genai_errors.APIError,
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("face", FACES)
def test_a_stream_cut_after_its_first_byte_ends_with_an_error_the_sdk_raises(
    retrying_gw: ServedGateway, up: FakeUpstream, face: str, provider: str
) -> None:
    up.script(Reply(text=STORY, chunk_size=6, cut_after=3))
    text, error = stream_through_sdk(face, retrying_gw, GROUPS[provider])
    assert isinstance(error, SDK_ERRORS[face]), repr(error)
    assert STORY.startswith(text) and len(text) < len(STORY)
    assert len(up.requests) == 1  # after the first byte there is no invisible retry


@pytest.mark.parametrize(
    ("face", "provider"),
    [pytest.param(f, p, id=f"{f}-{p}") for f in FACES for p in PROVIDERS],
)
def test_a_stream_that_ends_before_the_answer_does_is_an_error(
    retrying_gw: ServedGateway, up: FakeUpstream, face: str, provider: str
) -> None:
    up.script(Reply(text=STORY, chunk_size=6, end_after=3))
    text, error = stream_through_sdk(face, retrying_gw, GROUPS[provider])
    assert isinstance(error, SDK_ERRORS[face]), f"no error after {text!r}"
    assert STORY.startswith(text) and len(text) < len(STORY)
    assert len(up.requests) == 1


@pytest.mark.parametrize(("face", "provider"), [(f, p) for f in FACES for p in PROVIDERS])
def test_a_stream_that_fails_before_its_first_byte_is_retried_invisibly(
    retrying_gw: ServedGateway, up: FakeUpstream, face: str, provider: str
) -> None:
    # the cut comes first: its backoff is the shortest (the 503's Retry-After keeps the second wait short too)
    up.script(Reply(text=STORY, cut_after=0), Reply(status=503, retry_after=0.01), Reply(text=STORY, chunk_size=6))
    text, error = stream_through_sdk(face, retrying_gw, GROUPS[provider])
    assert error is None
    assert text == STORY
    assert len(up.requests) == 3


def _stream_raw(port: int, face: str, group: str) -> socket.socket:
    """Start a streamed request on a raw socket and read until the first body bytes arrive."""
    path, body = chat_request(face, group, stream=True)
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {MASTER_KEY}\r\ncontent-length: {len(data)}\r\n\r\n".encode()
        + data
    )
    got = b""
    while b"\r\n\r\n" not in got or len(got.split(b"\r\n\r\n", 1)[1]) == 0:
        piece = sock.recv(65536)
        assert piece, "the gateway closed the connection before streaming"
        got += piece
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    return sock


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("face", FACES)
def test_a_client_that_hangs_up_cancels_the_upstream_call(
    gw: ServedGateway, up: FakeUpstream, face: str, provider: str
) -> None:
    # about 20 s of stream if nobody stops it
    up.script(Reply(text="z" * 400, chunk_size=2, chunk_delay=0.1))
    sock = _stream_raw(gw.port, face, GROUPS[provider])
    sock.close()
    assert up.wait_for_disconnects(1, timeout=5), "the upstream call went on after the client left"
    # the gateway is still fine
    assert gw.call("POST", *chat_request(face, GROUPS[provider], "after")).status == 200


def test_gemini_stream_without_alt_sse_is_a_json_array(gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(text=STORY, chunk_size=20))
    path, body = chat_request("gemini", GROUPS["anthropic"])
    r = gw.call("POST", path.replace(":generateContent", ":streamGenerateContent"), body)
    assert r.status == 200
    assert r.headers["content-type"].startswith("application/json")
    chunks = r.json()
    assert isinstance(chunks, list) and len(chunks) > 1
    parts = [p for c in chunks for cand in c.get("candidates", []) for p in cand.get("content", {}).get("parts", [])]
    assert "".join(p.get("text", "") for p in parts) == STORY
