"""Usage beyond plain tokens reaches every client, whole and streamed, through the gateway.

Each provider family answers (over real HTTP, from a loopback server that sends the bytes given, as a
recording is replayed: ``FakeUpstream`` writes its answers with our own dialects) with the usage
fields it reports — OpenAI's audio and predicted-output counts, Anthropic's billed web searches and fetches
with the service tier and inference region, Gemini's tool-use prompt and per-modality counts — written as
the provider writes them. The official SDK of each client dialect reads the answer; the test checks what
that client sees: the fields its dialect can carry, and totals that stay right where it cannot. Whole
answers also carry the cost the gateway charged, with web searches and the tool-use prompt priced.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import openai
import pytest
from gateway_harness import MASTER_KEY, ServedGateway
from google import genai
from google.genai import types as gtypes

from llmswitch.cost import lookup, per_million

MODELS = {
    "openai": "openai/gpt-4o",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
}

OPENAI_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 80,
    "total_tokens": 200,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 45},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 60,
        "accepted_prediction_tokens": 9,
        "rejected_prediction_tokens": 11,
    },
}
ANTHROPIC_START_USAGE = {
    "input_tokens": 2000,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 500,
    "output_tokens": 1,
    "service_tier": "priority",
    "inference_geo": "us",
}
ANTHROPIC_FINAL_USAGE = {"output_tokens": 300, "server_tool_use": {"web_search_requests": 3, "web_fetch_requests": 1}}
GEMINI_USAGE = {
    "promptTokenCount": 100,
    "candidatesTokenCount": 30,
    "toolUsePromptTokenCount": 40,
    "cachedContentTokenCount": 20,
    "totalTokenCount": 170,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 70}, {"modality": "AUDIO", "tokenCount": 30}],
    "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 30}],
    "toolUsePromptTokensDetails": [{"modality": "TEXT", "tokenCount": 40}],
}


def _sse(events: list[tuple[str | None, dict[str, Any]]]) -> bytes:
    return b"".join(
        (f"event: {name}\n" if name else "").encode() + b"data: " + json.dumps(data).encode() + b"\n\n"
        for name, data in events
    )


@dataclass
class Raw:
    body: bytes
    content_type: str


class RawUpstream:
    """Answers each request with the next queued bytes and keeps what it was sent (path, JSON body)."""

    def __init__(self) -> None:
        self.queue: list[Raw] = []
        self.requests: list[tuple[str, Any]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("content-length") or 0))
                upstream.requests.append((self.path, json.loads(data or b"null")))
                raw = upstream.queue.pop(0)
                self.send_response(200)
                self.send_header("content-type", raw.content_type)
                self.send_header("content-length", str(len(raw.body)))
                self.end_headers()
                self.wfile.write(raw.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def upstream_reply(family: str, stream: bool) -> Raw:
    """The provider's answer as it writes it, usage included."""
    if family == "openai":
        head = {"id": "chatcmpl-u1", "created": 1, "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1"}
        if not stream:
            msg = {"role": "assistant", "content": "Teal.", "refusal": None}
            choice = {"index": 0, "message": msg, "finish_reason": "stop", "logprobs": None}
            body = head | {"object": "chat.completion", "choices": [choice], "usage": OPENAI_USAGE}
            return Raw(json.dumps(body).encode(), "application/json")
        chunk = head | {"object": "chat.completion.chunk"}
        events = [
            (
                None,
                chunk | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Teal."}}], "usage": None},
            ),
            (None, chunk | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None}),
            (None, chunk | {"choices": [], "usage": OPENAI_USAGE}),
        ]
        return Raw(_sse(events) + b"data: [DONE]\n\n", "text/event-stream")
    if family == "anthropic":
        message = {"id": "msg_u1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929"}
        if not stream:
            body = message | {
                "content": [{"type": "text", "text": "Teal."}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": ANTHROPIC_START_USAGE | ANTHROPIC_FINAL_USAGE,
            }
            return Raw(json.dumps(body).encode(), "application/json")
        start = message | {"content": [], "stop_reason": None, "stop_sequence": None, "usage": ANTHROPIC_START_USAGE}
        events = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Teal."}},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": ANTHROPIC_FINAL_USAGE,
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return Raw(_sse(events), "text/event-stream")
    candidate = {"content": {"role": "model", "parts": [{"text": "Teal."}]}, "finishReason": "STOP", "index": 0}
    body = {
        "candidates": [candidate],
        "usageMetadata": GEMINI_USAGE,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1",
    }
    if not stream:
        return Raw(json.dumps(body).encode(), "application/json")
    return Raw(_sse([(None, body)]), "text/event-stream")


@pytest.fixture(scope="module")
def raw_upstream() -> Iterator[RawUpstream]:
    up = RawUpstream()
    yield up
    up.close()


@pytest.fixture(scope="module")
def ugw(raw_upstream: RawUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    base = raw_upstream.url
    bases = {"openai": f"{base}/v1", "anthropic": base, "gemini": base}
    db = tmp_path_factory.mktemp("usage") / "keys.db"
    rows = "".join(
        f"""  - model_name: u-{family}
    litellm_params:
      model: {model}
      api_base: "{bases[family]}"
      api_key: sk-up-{family}
"""
        for family, model in MODELS.items()
    )
    # an OpenAI audio model, whose audio tokens have their own prices
    rows += f"""  - model_name: u-openai-audio
    litellm_params:
      model: openai/gpt-4o-audio-preview
      api_base: "{bases["openai"]}"
      api_key: sk-up-openai
"""
    text = (
        f"model_list:\n{rows}general_settings:\n  master_key: {MASTER_KEY}\n  store_path: {json.dumps(str(db))}\n"
        "router_settings:\n  num_retries: 0\n"
    )
    with ServedGateway(text) as served:
        yield served


# ---------------------------------------------------------------- each client through its official SDK


def ask_openai(gw: ServedGateway, group: str, stream: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """(usage as the client got it, response headers); the service tier rides in the usage dict as ``_tier``."""
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as client:
        messages: Any = [{"role": "user", "content": "Name a colour."}]
        if not stream:
            raw = client.chat.completions.with_raw_response.create(model=group, messages=messages)
            r = raw.parse()
            assert r.usage is not None
            return r.usage.model_dump() | {"_tier": r.service_tier}, dict(raw.headers)
        usage: dict[str, Any] = {}
        for chunk in client.chat.completions.create(
            model=group, messages=messages, stream=True, stream_options={"include_usage": True}
        ):
            if chunk.usage is not None:
                usage = chunk.usage.model_dump()
        return usage, {}


def ask_anthropic(gw: ServedGateway, group: str, stream: bool) -> tuple[dict[str, Any], dict[str, str]]:
    with anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0) as client:
        messages: Any = [{"role": "user", "content": "Name a colour."}]
        if not stream:
            raw = client.messages.with_raw_response.create(model=group, max_tokens=64, messages=messages)
            return raw.parse().usage.model_dump(), dict(raw.headers)
        usage: dict[str, Any] = {}
        for ev in client.messages.create(model=group, max_tokens=64, messages=messages, stream=True):
            # as the SDK's own accumulator does: message_delta's running totals replace message_start's
            if ev.type == "message_start":
                usage.update({k: v for k, v in ev.message.usage.model_dump().items() if v is not None})
            elif ev.type == "message_delta":
                usage.update({k: v for k, v in ev.usage.model_dump().items() if v is not None})
        return usage, {}


def ask_gemini(gw: ServedGateway, group: str, stream: bool) -> tuple[dict[str, Any], dict[str, str]]:
    client = genai.Client(api_key=MASTER_KEY, http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta"))
    with client:
        if not stream:
            r = client.models.generate_content(model=group, contents="Name a colour.")
            assert r.usage_metadata is not None and r.sdk_http_response is not None
            return r.usage_metadata.model_dump(exclude_none=True), dict(r.sdk_http_response.headers or {})
        last: dict[str, Any] = {}
        for chunk in client.models.generate_content_stream(model=group, contents="Name a colour."):
            if chunk.usage_metadata is not None:
                last = chunk.usage_metadata.model_dump(exclude_none=True)
        return last, {}


ASK = {"openai": ask_openai, "anthropic": ask_anthropic, "gemini": ask_gemini}


def _modalities(details: list[dict[str, Any]] | None) -> dict[str, int]:
    return {str(d["modality"]).split(".")[-1]: d["token_count"] for d in details or []}


def check_openai(family: str, u: dict[str, Any], stream: bool) -> None:
    pd, cd = u["prompt_tokens_details"], u["completion_tokens_details"]
    if family == "openai":
        assert (u["prompt_tokens"], u["completion_tokens"], pd["audio_tokens"]) == (120, 80, 45)
        assert (cd["audio_tokens"], cd["accepted_prediction_tokens"], cd["rejected_prediction_tokens"]) == (60, 9, 11)
    elif family == "anthropic":
        assert (u["prompt_tokens"], pd["cached_tokens"], u["completion_tokens"]) == (2500, 500, 300)
        assert u["server_tool_use"] == {"web_search_requests": 3, "web_fetch_requests": 1}
        if not stream:
            assert u["_tier"] == "priority"
    else:
        # the tool-use prompt is input; the audio of the prompt is told apart as OpenAI tells it
        assert (u["prompt_tokens"], pd["cached_tokens"], pd["audio_tokens"], u["completion_tokens"]) == (
            140,
            20,
            30,
            30,
        )


def check_anthropic(family: str, u: dict[str, Any], stream: bool) -> None:
    if family == "openai":
        # Anthropic's usage has no audio or prediction counts: the totals stay whole
        assert (u["input_tokens"], u["output_tokens"]) == (120, 80)
    elif family == "anthropic":
        assert (u["input_tokens"], u["cache_read_input_tokens"], u["output_tokens"]) == (2000, 500, 300)
        assert u["server_tool_use"] == {"web_search_requests": 3, "web_fetch_requests": 1}
        assert (u["service_tier"], u["inference_geo"]) == ("priority", "us")
    else:
        assert (u["input_tokens"], u["cache_read_input_tokens"], u["output_tokens"]) == (120, 20, 30)


def check_gemini(family: str, u: dict[str, Any], stream: bool) -> None:
    if family == "openai":
        assert (u["prompt_token_count"], u["candidates_token_count"]) == (120, 80)
        assert _modalities(u["prompt_tokens_details"]) == {"TEXT": 75, "AUDIO": 45}
        assert _modalities(u["candidates_tokens_details"]) == {"TEXT": 20, "AUDIO": 60}
    elif family == "anthropic":
        assert (u["prompt_token_count"], u["cached_content_token_count"], u["candidates_token_count"]) == (
            2500,
            500,
            300,
        )
    else:
        assert (u["prompt_token_count"], u["tool_use_prompt_token_count"], u["total_token_count"]) == (100, 40, 170)
        assert _modalities(u["prompt_tokens_details"]) == {"TEXT": 70, "AUDIO": 30}
        assert _modalities(u["tool_use_prompt_tokens_details"]) == {"TEXT": 40}
        assert _modalities(u["candidates_tokens_details"]) == {"TEXT": 30}


CHECK = {"openai": check_openai, "anthropic": check_anthropic, "gemini": check_gemini}


def _expected_cost(family: str) -> Decimal | None:
    if family == "anthropic":  # 1,500 uncached + 500 cache reads + 300 output, and 3 web searches at $10/1,000
        return 2000 * per_million(3) + 500 * per_million("0.30") + 300 * per_million(15) + 3 * Decimal("0.01")
    if family == "gemini":  # 140 input (40 of them the tool-use prompt) of which 30 audio and 20 cached
        return 90 * per_million("0.30") + 30 * per_million("1.00") + 20 * per_million("0.03") + 30 * per_million("2.50")
    return None


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("family", list(MODELS))
@pytest.mark.parametrize("client", list(ASK))
def test_the_client_sees_the_usage_fields_its_dialect_carries(
    ugw: ServedGateway, raw_upstream: RawUpstream, client: str, family: str, stream: bool
) -> None:
    raw_upstream.requests.clear()
    raw_upstream.queue[:] = [upstream_reply(family, stream)]
    usage, headers = ASK[client](ugw, f"u-{family}", stream)
    assert len(raw_upstream.requests) == 1 and not raw_upstream.queue
    CHECK[client](family, usage, stream)
    want = _expected_cost(family)
    if not stream and want is not None:
        assert lookup(MODELS[family]) is not None
        assert Decimal(headers["x-llmswitch-cost"]) == want.quantize(Decimal("1e-10"))


@pytest.mark.parametrize("client", list(ASK))
def test_openai_audio_tokens_are_charged_at_the_audio_rates(
    ugw: ServedGateway, raw_upstream: RawUpstream, client: str
) -> None:
    # the OpenAI client's request is relayed as it is (the fast path), the others are translated: the
    # charge is the same, 75 text + 45 audio prompt tokens, 20 text + 60 audio completion tokens
    raw_upstream.requests.clear()
    raw_upstream.queue[:] = [upstream_reply("openai", stream=False)]
    _, headers = ASK[client](ugw, "u-openai-audio", False)
    want = 75 * per_million("2.50") + 45 * per_million(40) + 20 * per_million(10) + 60 * per_million(80)
    assert Decimal(headers["x-llmswitch-cost"]) == want.quantize(Decimal("1e-10"))
