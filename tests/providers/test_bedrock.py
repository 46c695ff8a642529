"""Amazon Bedrock: ``bedrock/<modelId>`` through Converse and ConverseStream (AWS event-stream frames),
``bedrock/invoke/<modelId>`` through InvokeModel with Anthropic's body, every call signed with Signature V4.

The fake upstream plays Bedrock Runtime. Signatures are checked by an implementation of AWS's documented
algorithm written here from the specification (checked first against AWS's own worked example), so a
mistake in how calls are signed, or in which bytes, shows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

import llmswitch
from llmswitch import ir
from llmswitch.dialects import bedrock_converse
from llmswitch.errors import AuthenticationError, BadRequestError, RateLimitError
from llmswitch.testing import FakeUpstream, Reply

KEY, SECRET, REGION = "AKIDTESTBEDROCK00001", "test/secret+key/for-bedrock", "eu-central-1"
CLAUDE = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-lite-v1:0"
MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]


# ---------------------------------------------------------------- an independent SigV4 verifier


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signature(
    secret: str, method: str, path: str, query: str, headers: dict[str, str], signed: list[str], body: bytes,
    amz_date: str, scope: str,
) -> str:  # fmt: skip
    """AWS Signature Version 4 (docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html)."""
    canonical_query = "&".join(sorted(query.split("&"))) if query else ""
    canonical_headers = "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed)
    canonical = "\n".join(
        [method, path, canonical_query, canonical_headers, ";".join(signed), hashlib.sha256(body).hexdigest()]
    )
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    day, region, service, _ = scope.split("/")
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), day), region), service), "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_the_verifier_reproduces_aws_s_worked_example() -> None:
    # the GET ListUsers example of AWS's Signature V4 documentation
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8", "host": "iam.amazonaws.com",
               "x-amz-date": "20150830T123600Z"}  # fmt: skip
    got = signature(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "GET", "/", "Action=ListUsers&Version=2010-05-08", headers,
        ["content-type", "host", "x-amz-date"], b"", "20150830T123600Z", "20150830/us-east-1/iam/aws4_request",
    )  # fmt: skip
    assert got == "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"


def assert_signed(rec: Any, url: str) -> None:
    """The recorded call carries a SigV4 signature by KEY/SECRET for bedrock in REGION over its bytes."""
    auth = rec.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 "), auth
    fields = dict(part.strip().split("=", 1) for part in auth.removeprefix("AWS4-HMAC-SHA256 ").split(","))
    key, scope = fields["Credential"].split("/", 1)
    assert key == KEY and scope.endswith(f"/{REGION}/bedrock/aws4_request"), fields
    signed = fields["SignedHeaders"].split(";")
    assert "host" in signed and "x-amz-date" in signed
    headers = {**rec.headers, "host": urlsplit(url).netloc}
    # Bedrock is not S3: the path is the one sent, percent-encoded once more
    path = quote(rec.path_raw, safe="/~")
    want = signature(SECRET, rec.method, path, "", headers, signed, rec.body, rec.headers["x-amz-date"], scope)
    assert fields["Signature"] == want


# ---------------------------------------------------------------- calls through the fake


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


def call(up: FakeUpstream, model: str, **kw: Any) -> Any:
    return llmswitch.completion(
        f"bedrock/{model}",
        kw.pop("messages", MSGS),
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        aws_region_name=REGION,
        api_base=up.url,
        num_retries=0,
        **kw,
    )


def test_converse_sends_bedrock_s_body_signed_and_reads_the_answer(up: FakeUpstream) -> None:
    up.script(Reply(text="Hi there", usage=(11, 3)))
    r = call(up, CLAUDE, max_tokens=50, temperature=0.2, top_k=5, stop=["END"])
    assert r.choices[0].message.content == "Hi there"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (11, 3)
    [rec] = up.requests
    assert rec.path == f"/model/{CLAUDE}/converse"
    assert rec.path_raw == "/model/eu.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    assert rec.json == {
        "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.2, "stopSequences": ["END"]},
        "additionalModelRequestFields": {"top_k": 5},
    }
    assert not any(k.startswith("aws") for k in rec.json)
    assert_signed(rec, up.url)


def test_a_tool_loop_goes_through_converse_s_tool_blocks(up: FakeUpstream) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    up.script(Reply(tool_calls=[("weather", {"city": "Bonn"})]), Reply(text="Sunny in Bonn"))
    r = call(up, NOVA, tools=tools, tool_choice="required")
    tc = r.choices[0].message.tool_calls[0]
    assert (tc.function.name, json.loads(tc.function.arguments)) == ("weather", {"city": "Bonn"})
    assert r.choices[0].finish_reason == "tool_calls"
    first = up.requests[0].json
    assert first["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": tools[0]["function"]["parameters"]}}}],
        "toolChoice": {"any": {}},
    }
    history = [*MSGS, r.choices[0].message.model_dump(), {"role": "tool", "tool_call_id": tc.id, "content": "sunny"},
               {"role": "user", "content": "And so?"}]  # fmt: skip
    r2 = call(up, NOVA, tools=tools, messages=history)
    assert r2.choices[0].message.content == "Sunny in Bonn"
    sent = up.requests[1].json["messages"]
    # the tool's result and the next user turn are one user message: Converse alternates roles
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == [{"toolUse": {"toolUseId": tc.id, "name": "weather", "input": {"city": "Bonn"}}}]
    assert sent[2]["content"] == [
        {"toolResult": {"toolUseId": tc.id, "content": [{"text": "sunny"}]}},
        {"text": "And so?"},
    ]


def test_converse_stream_reads_event_stream_frames(up: FakeUpstream) -> None:
    up.script(Reply(text="one two three", usage=(9, 4)))
    chunks = list(call(up, NOVA, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if c.usage]
    assert (usage[-1].prompt_tokens, usage[-1].completion_tokens) == (9, 4)
    [rec] = up.requests
    assert rec.path == f"/model/{NOVA}/converse-stream"
    assert_signed(rec, up.url)


def test_a_streamed_tool_call_arrives_whole(up: FakeUpstream) -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    up.script(Reply(tool_calls=[("weather", {"city": "Oslo"})]))
    args, names = "", ""
    for c in call(up, NOVA, stream=True, tools=tools):
        for t in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            names += t.function.name or ""
            args += t.function.arguments or ""
    assert (names, json.loads(args)) == ("weather", {"city": "Oslo"})


def test_invoke_sends_anthropic_s_body_with_bedrock_s_version(up: FakeUpstream) -> None:
    up.script(Reply(text="native claude", usage=(7, 2)))
    r = call(up, f"invoke/{CLAUDE}", max_tokens=40)
    assert r.choices[0].message.content == "native claude"
    [rec] = up.requests
    assert rec.path == f"/model/{CLAUDE}/invoke"
    body = rec.json
    assert "model" not in body and "stream" not in body
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert body["system"] == "Be brief." and body["max_tokens"] == 40
    assert_signed(rec, up.url)


def test_invoke_stream_reads_anthropic_events_inside_chunk_frames(up: FakeUpstream) -> None:
    up.script(Reply(text="streamed natively", usage=(5, 3)))
    chunks = list(call(up, f"invoke/{CLAUDE}", stream=True, max_tokens=40))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed natively"
    assert up.requests[0].path == f"/model/{CLAUDE}/invoke-with-response-stream"


@pytest.mark.parametrize(
    ("status", "exception", "error"),
    [
        (400, "ValidationException", BadRequestError),
        (403, "UnrecognizedClientException", AuthenticationError),
        (429, "ThrottlingException", RateLimitError),
    ],
)
def test_errors_are_classed_by_bedrock_s_exception_type(
    up: FakeUpstream, status: int, exception: str, error: type[Exception]
) -> None:
    up.script(Reply(status=status, message="nope", error_type=exception))
    with pytest.raises(error) as err:
        call(up, NOVA)
    assert "nope" in str(err.value) and err.value.status_code == status  # type: ignore[attr-defined]


def test_an_exception_frame_mid_stream_ends_the_stream_with_its_error() -> None:
    from llmswitch.dialects.bedrock_server import StreamEncoder, event
    from llmswitch.dialects.bedrock_stream import ConverseStreamDecoder

    enc = StreamEncoder(ir.StreamMeta())
    data = enc.encode(ir.StreamEvent(text="partial")) + enc.error(RateLimitError("slow down", status_code=429))
    dec = ConverseStreamDecoder(model=NOVA)
    events = dec.feed(data[:7]) + dec.feed(data[7:])
    assert "".join(e.text or "" for e in events) == "partial"
    with pytest.raises(RateLimitError, match="slow down"):
        dec.feed(event("contentBlockStop", {"contentBlockIndex": 0}))


def test_a_corrupt_frame_is_an_unreadable_answer_not_garbage_text() -> None:
    from llmswitch.dialects.bedrock_server import event
    from llmswitch.dialects.bedrock_stream import ConverseStreamDecoder
    from llmswitch.errors import APIResponseValidationError

    frame = bytearray(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}))
    frame[-6] ^= 0x55  # a payload byte: the message CRC no longer matches
    with pytest.raises(APIResponseValidationError):
        ConverseStreamDecoder().feed(bytes(frame))


def test_a_bedrock_api_key_is_a_bearer_token_without_a_signature(up: FakeUpstream) -> None:
    llmswitch.completion(f"bedrock/{NOVA}", MSGS, api_key="bedrock-api-key-1", api_base=up.url, num_retries=0)
    [rec] = up.requests
    assert rec.headers["authorization"] == "Bearer bedrock-api-key-1"
    assert "x-amz-date" not in rec.headers


def test_cache_markers_become_cache_points_after_their_block() -> None:
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(role="system", content=[ir.TextPart(text="long rules", cache_control={"type": "ephemeral"})]),
            ir.Message(role="user", content=[ir.TextPart(text="q", cache_control={"type": "ephemeral"})]),
        ],
    )
    body = bedrock_converse.encode_request(req)
    assert body["system"] == [{"text": "long rules"}, {"cachePoint": {"type": "default"}}]
    assert body["messages"][0]["content"] == [{"text": "q"}, {"cachePoint": {"type": "default"}}]


def test_an_image_by_url_is_refused_naming_the_part() -> None:
    req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.ImagePart(url="https://x/cat.png")])])
    with pytest.raises(BadRequestError, match=r"messages\[0\]\.content\[0\]"):
        bedrock_converse.encode_request(req)


def test_usage_counts_cache_reads_and_writes_as_input() -> None:
    u = bedrock_converse.decode_usage(
        {"inputTokens": 10, "outputTokens": 5, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 20}
    )
    assert u is not None
    assert (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens) == (130, 100, 20, 5)
