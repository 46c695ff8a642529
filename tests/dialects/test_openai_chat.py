"""OpenAI Chat Completions dialect: request/response round trips, validation, vendor quirks."""

from __future__ import annotations

import base64
import json
import string
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmswitch import ir
from llmswitch.dialects import openai_chat
from llmswitch.dialects._json import dumps, loads
from llmswitch.errors import APIStatusError, BadRequestError, InternalServerError
from llmswitch.providers.openai import OpenAIProvider

# ---------------------------------------------------------------- strategies: IR values the dialect can carry

texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=16)
names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
EPHEMERAL = {"type": "ephemeral"}
cache_controls = st.none() | st.just(EPHEMERAL)
# tool-call arguments are carried as the model's raw text: JSON or not, it must come back byte for byte
arguments = st.one_of(
    st.dictionaries(names, st.integers() | texts | st.booleans(), max_size=3).map(json.dumps),
    texts,
)
schemas = st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.dictionaries(names, st.just({"type": "string"}), max_size=2)}
)
b64 = st.binary(min_size=1, max_size=24).map(lambda b: base64.b64encode(b).decode())


def text_part(cache: st.SearchStrategy[Any] = cache_controls) -> st.SearchStrategy[ir.TextPart]:
    return st.builds(ir.TextPart, text=texts, cache_control=cache)


image_parts = st.one_of(
    st.builds(
        ir.ImagePart,
        url=names.map(lambda n: f"https://example.com/{n}.png"),
        detail=st.sampled_from([None, "low", "high", "auto"]),
        cache_control=cache_controls,
    ),
    st.builds(
        ir.ImagePart,
        data=b64,
        media_type=st.sampled_from(["image/png", "image/jpeg", "image/webp"]),
        detail=st.sampled_from([None, "low", "high"]),
    ),
)
file_parts = st.one_of(
    st.builds(ir.FilePart, file_id=names.map(lambda n: f"file-{n}"), filename=st.none() | names),
    st.builds(
        ir.FilePart,
        data=b64,
        media_type=st.sampled_from(["application/pdf", "text/plain"]),
        filename=st.none() | names.map(lambda n: f"{n}.pdf"),
    ),
)


def _force_typed(parts: list[Any]) -> list[Any]:
    # plain text parts alone go out as one string; give one a cache_control so the list form is kept
    if all(isinstance(p, ir.TextPart) and p.cache_control is None for p in parts):
        parts[0] = ir.TextPart(parts[0].text, cache_control=EPHEMERAL)
    return parts


def content(*, media: bool) -> st.SearchStrategy[list[Any]]:
    """One plain string, or a list of typed parts (text with cache_control, images and files for users)."""
    typed = text_part() | image_parts | file_parts if media else text_part()
    return st.one_of(
        text_part(st.none()).map(lambda p: [p]),
        st.lists(typed, min_size=1, max_size=4).map(_force_typed),
    )


tool_calls = st.builds(ir.ToolCallPart, id=names.map(lambda n: f"call_{n}"), name=names, arguments=arguments)


@st.composite
def assistant_messages(draw: st.DrawFn) -> ir.Message:
    parts: list[ir.Part] = draw(st.just([]) | content(media=False))
    parts += draw(st.lists(tool_calls, min_size=0 if parts else 1, max_size=3))
    return ir.Message(role="assistant", content=parts, name=draw(st.none() | names))


tool_messages = st.builds(
    lambda call_id, result: ir.Message(role="tool", content=[ir.ToolResultPart(tool_call_id=call_id, content=result)]),
    names,
    st.just([]) | content(media=True),
)
messages = st.one_of(
    st.builds(
        ir.Message, role=st.sampled_from(["system", "developer"]), content=content(media=False), name=st.none() | names
    ),
    st.builds(ir.Message, role=st.just("user"), content=content(media=True), name=st.none() | names),
    assistant_messages(),
    tool_messages,
)
tools = st.one_of(
    st.builds(ir.Tool, name=names, description=st.none() | texts, parameters=schemas, strict=st.none() | st.booleans()),
    st.sampled_from(["web_search_preview", "code_interpreter"]).map(lambda t: ir.Tool(name=t, builtin={"type": t})),
)
tool_choices = st.one_of(
    st.none(),
    st.sampled_from(["auto", "none", "required"]).map(lambda m: ir.ToolChoice(mode=m)),
    names.map(lambda n: ir.ToolChoice(mode="tool", name=n)),
)
response_formats = st.one_of(
    st.none(),
    st.sampled_from(["text", "json_object"]).map(lambda t: ir.ResponseFormat(type=t)),
    st.builds(
        ir.ResponseFormat,
        type=st.just("json_schema"),
        schema=schemas,
        name=names,
        strict=st.none() | st.booleans(),
        description=st.none() | texts,
    ),
)
floats = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def requests(draw: st.DrawFn) -> ir.Request:
    req_tools = draw(st.none() | st.lists(tools, min_size=1, max_size=3))
    return ir.Request(
        model=draw(names),
        messages=draw(st.lists(messages, min_size=1, max_size=6)),
        stream=draw(st.booleans()),
        tools=req_tools,
        tool_choice=draw(tool_choices),
        parallel_tool_calls=draw(st.none() | st.booleans()) if req_tools else None,
        response_format=draw(response_formats),
        temperature=draw(st.none() | st.floats(0, 2)),
        top_p=draw(st.none() | st.floats(0, 1)),
        max_tokens=draw(st.none() | st.integers(1, 10**6)),
        stop=draw(st.none() | st.lists(texts, min_size=1, max_size=4)),
        seed=draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
        n=draw(st.none() | st.integers(1, 8)),
        presence_penalty=draw(st.none() | st.floats(-2, 2)),
        frequency_penalty=draw(st.none() | st.floats(-2, 2)),
        logit_bias=draw(st.none() | st.dictionaries(st.integers(0, 10**5).map(str), st.floats(-100, 100), max_size=3)),
        logprobs=draw(st.none() | st.booleans()),
        top_logprobs=draw(st.none() | st.integers(0, 20)),
        user=draw(st.none() | texts),
        metadata=draw(st.none() | st.dictionaries(names, texts, max_size=3)),
        reasoning_effort=draw(st.none() | st.sampled_from(["none", "minimal", "low", "medium", "high", "xhigh"])),
        extra=draw(
            st.none() | st.dictionaries(names.map(lambda n: f"x_{n}"), st.integers() | texts, min_size=1, max_size=3)
        ),
    )


def _over_the_wire(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = loads(dumps(body))
    return out


# ---------------------------------------------------------------- request round trip


def _named(p: ir.Part) -> ir.Part:
    """``p`` as it comes back from OpenAI: inline file data needs a filename (a default one is sent), and a
    plain-text file is sent as text."""
    if isinstance(p, ir.ToolResultPart):
        return msgspec.structs.replace(p, content=[_named(c) for c in p.content])
    if isinstance(p, ir.FilePart) and p.data is not None and p.media_type == "text/plain":
        # Chat Completions reads PDF files only: a text file goes as its text
        return ir.TextPart(text=base64.b64decode(p.data).decode("utf-8", "replace"))
    if isinstance(p, ir.FilePart) and p.data is not None and p.filename is None:
        return msgspec.structs.replace(p, filename="document.pdf")
    return p


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.sampled_from(["max_tokens", "max_completion_tokens"]))
def test_request_round_trip(req: ir.Request, max_tokens_key: str) -> None:
    body = openai_chat.encode_request(req, model="provider-model", max_tokens_key=max_tokens_key)
    back = openai_chat.decode_request(_over_the_wire(body))

    expected = msgspec.structs.replace(req, model="provider-model", include_usage=req.stream)
    for m in expected.messages:
        m.content = [_named(p) for p in m.content]
    if expected.tool_choice is not None and expected.parallel_tool_calls is not None:
        expected.tool_choice = msgspec.structs.replace(expected.tool_choice, parallel=expected.parallel_tool_calls)
    assert back == expected


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_encoded_request_uses_the_chosen_max_tokens_key_and_stream_usage(req: ir.Request) -> None:
    body = openai_chat.encode_request(req, model="m", max_tokens_key="max_completion_tokens", stream_usage=False)
    assert "max_tokens" not in body
    assert body.get("max_completion_tokens") == req.max_tokens
    assert "stream_options" not in body
    assert openai_chat.decode_request(_over_the_wire(body)).include_usage is False


def test_top_k_reaches_the_provider() -> None:
    req = openai_chat.decode_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_k": 40})
    assert openai_chat.encode_request(req, model="m").get("top_k") == 40


def test_thinking_switch_reaches_the_provider() -> None:
    thinking = {"type": "enabled"}
    req = openai_chat.decode_request(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "thinking": thinking}
    )
    assert openai_chat.encode_request(req, model="m").get("thinking") == thinking


def test_a_file_by_url_is_read_but_never_sent_as_file_data() -> None:
    # a caller's URL in file_data is kept (Anthropic and Gemini can fetch it); OpenAI's file_data must be
    # base64, so encoding one for OpenAI is refused (the parameter policy refuses it first, naming the field)
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": [{"type": "file", "file": {"file_data": "https://example.com/report.pdf"}}]}
        ],
    }
    req = openai_chat.decode_request(body)
    assert req.messages[0].content == [ir.FilePart(url="https://example.com/report.pdf")]
    with pytest.raises(BadRequestError, match="not by URL"):
        openai_chat.encode_request(req, model="m")


# ---------------------------------------------------------------- request encoding details


def test_tool_results_inside_a_user_message_become_tool_messages_before_it() -> None:
    msg = ir.Message(
        role="user",
        content=[
            ir.ToolResultPart(tool_call_id="call_1", content=[ir.TextPart("42")]),
            ir.ToolResultPart(tool_call_id="call_2", content=[ir.TextPart("43")]),
            ir.TextPart("and now?"),
        ],
    )
    body = openai_chat.encode_request(ir.Request(model="m", messages=[msg]), model="m")
    assert body["messages"] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "tool", "tool_call_id": "call_2", "content": "43"},
        {"role": "user", "content": "and now?"},
    ]


def test_tool_without_parameters_gets_an_empty_object_schema_and_parallel_needs_tools() -> None:
    req = ir.Request(
        model="m",
        messages=[ir.Message(role="user", content=[ir.TextPart("x")])],
        tools=[ir.Tool(name="now")],
        parallel_tool_calls=False,
    )
    body = openai_chat.encode_request(req, model="m")
    assert body["tools"] == [
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
    ]
    assert body["parallel_tool_calls"] is False
    req.tools = None
    assert "parallel_tool_calls" not in openai_chat.encode_request(req, model="m")


def test_reasoning_and_provider_blocks_are_not_sent_to_an_openai_upstream() -> None:
    msg = ir.Message(
        role="assistant",
        content=[
            ir.ReasoningPart("thinking", signature="sig"),
            ir.RedactedReasoningPart("opaque"),
            ir.ProviderPart(provider="anthropic", block={"type": "server_tool_use"}),
            ir.TextPart("answer"),
        ],
    )
    body = openai_chat.encode_request(ir.Request(model="m", messages=[msg]), model="m")
    assert body["messages"] == [{"role": "assistant", "content": "answer"}]


# ---------------------------------------------------------------- decode_request: what clients write


def _decode(**body: Any) -> ir.Request:
    return openai_chat.decode_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], **body})


def test_decode_request_accepts_legacy_functions() -> None:
    req = openai_chat.decode_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": None, "function_call": {"name": "get", "arguments": "{}"}},
                {"role": "function", "name": "get", "content": "sunny"},
            ],
            "functions": [{"name": "get", "parameters": {"type": "object"}}],
            "function_call": {"name": "get"},
        }
    )
    assert [t.name for t in req.tools or []] == ["get"]
    assert req.tool_choice == ir.ToolChoice(mode="tool", name="get")
    assert req.messages[1].tool_calls == [ir.ToolCallPart(id="get", name="get", arguments="{}")]
    assert req.messages[2].content == [
        ir.ToolResultPart(tool_call_id="get", content=[ir.TextPart("sunny")], name="get")
    ]


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ({"stop": "END"}, "stop", ["END"]),
        ({"stop": []}, "stop", None),
        ({"max_completion_tokens": 7}, "max_tokens", 7),
        ({"max_tokens": 5, "max_completion_tokens": 9}, "max_tokens", 9),
        ({"tool_choice": "any"}, "tool_choice", ir.ToolChoice(mode="required")),
        (
            {"tool_choice": {"type": "function", "function": {"name": "f"}}},
            "tool_choice",
            ir.ToolChoice(mode="tool", name="f"),
        ),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "thinking_budget", 2048),
        ({"thinking": {"type": "disabled"}}, "thinking_budget", 0),
        ({"temperature": 1}, "temperature", 1.0),
        ({"stream": True, "stream_options": {"include_usage": True}}, "include_usage", True),
        ({"safe_prompt": True}, "extra", {"safe_prompt": True}),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format",
            ir.ResponseFormat(type="json_schema", name="x"),
        ),
    ],
)
def test_decode_request_reads(body: dict[str, Any], field: str, value: Any) -> None:
    assert getattr(_decode(**body), field) == value


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        (
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD", "detail": "low"}},
            ir.ImagePart(data="QUJD", media_type="image/jpeg", detail="low"),
        ),
        ({"type": "image_url", "image_url": "https://x/y.png"}, ir.ImagePart(url="https://x/y.png")),
        (
            {"type": "input_audio", "input_audio": {"data": "UklG", "format": "mp3"}},
            ir.FilePart(data="UklG", media_type="audio/mp3"),
        ),
        (
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
            ir.FilePart(data="JVBE", media_type="application/pdf", filename="a.pdf"),
        ),
        ({"type": "file", "file": {"file_id": "file-1"}}, ir.FilePart(file_id="file-1")),
        ({"type": "text", "text": "t", "cache_control": EPHEMERAL}, ir.TextPart("t", cache_control=EPHEMERAL)),
        ("bare string part", ir.TextPart("bare string part")),
    ],
)
def test_decode_request_user_content_parts(part: Any, expected: ir.Part) -> None:
    req = openai_chat.decode_request({"model": "m", "messages": [{"role": "user", "content": [part]}]})
    assert req.messages[0].content == [expected]


def test_decode_request_reads_litellm_reasoning_fields_on_assistant_messages() -> None:
    req = openai_chat.decode_request(
        {
            "model": "m",
            "messages": [
                {
                    "role": "assistant",
                    "content": "4",
                    "reasoning_content": "ignored when blocks are given",
                    "thinking_blocks": [
                        {"type": "thinking", "thinking": "2+2", "signature": "sig=="},
                        {"type": "redacted_thinking", "data": "opaque"},
                    ],
                },
                {"role": "assistant", "content": "5", "reasoning_content": "plain"},
            ],
        }
    )
    assert req.messages[0].content == [
        ir.ReasoningPart("2+2", signature="sig=="),
        ir.RedactedReasoningPart("opaque"),
        ir.TextPart("4"),
    ]
    assert req.messages[1].content == [ir.ReasoningPart("plain"), ir.TextPart("5")]


def test_decode_request_takes_result_objects_as_messages() -> None:
    """``messages.append(r.choices[0].message)`` works with our results and the openai SDK's."""
    from openai.types.chat import ChatCompletionMessage

    from llmswitch import convert

    resp = ir.Response(
        id="r",
        model="m",
        created=1,
        choices=[
            ir.Choice(parts=[ir.ToolCallPart(id="call_1", name="f", arguments='{"a": 1}')], finish_reason="tool_calls")
        ],
    )
    ours = convert.model_response(resp).choices[0].message
    theirs = ChatCompletionMessage.model_validate(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
        }
    )
    for m in (ours, theirs):
        req = openai_chat.decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}, m]})
        assert req.messages[1].tool_calls == [ir.ToolCallPart(id="call_1", name="f", arguments='{"a": 1}')]


# ---------------------------------------------------------------- decode_request: errors name the field


def _msgs(*ms: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(ms)}


USER = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param([], "body", id="body-not-object"),
        pytest.param({"messages": [USER]}, "model", id="model-missing"),
        pytest.param({"model": "", "messages": [USER]}, "model", id="model-empty"),
        pytest.param({"model": "m"}, "messages", id="messages-missing"),
        pytest.param(_msgs(), "messages", id="messages-empty"),
        pytest.param({"model": "m", "messages": "hi"}, "messages", id="messages-string"),
        pytest.param(_msgs(42), "messages[0]", id="message-not-object"),
        pytest.param(_msgs({"role": "robot", "content": "x"}), "messages[0].role", id="bad-role"),
        pytest.param(_msgs({"content": "x"}), "messages[0].role", id="role-missing"),
        pytest.param(_msgs({"role": "user"}), "messages[0].content", id="user-content-missing"),
        pytest.param(_msgs({"role": "user", "content": 5}), "messages[0].content", id="content-number"),
        pytest.param(_msgs(USER, {"role": "assistant"}), "messages[1].content", id="assistant-empty"),
        pytest.param(_msgs(USER, {"role": "tool", "content": "x"}), "messages[1].tool_call_id", id="tool-without-id"),
        pytest.param(
            _msgs({"role": "user", "content": [{"type": "video", "video": {}}]}),
            "messages[0].content[0].type",
            id="unknown-part-type",
        ),
        pytest.param(
            _msgs({"role": "user", "content": [{"type": "text", "text": 3}]}),
            "messages[0].content[0].text",
            id="text-part-not-string",
        ),
        pytest.param(
            _msgs({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}),
            "messages[0].content[0].image_url.url",
            id="image-without-url",
        ),
        pytest.param(
            _msgs({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}),
            "messages[0].content[0]",
            id="image-in-system-message",
        ),
        pytest.param(
            _msgs(USER, {"role": "assistant", "tool_calls": {"id": "c"}}),
            "messages[1].tool_calls",
            id="tool-calls-not-list",
        ),
        pytest.param(
            _msgs(USER, {"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}),
            "messages[1].tool_calls[0].function",
            id="tool-call-without-name",
        ),
        pytest.param(
            _msgs(USER, {"role": "assistant", "content": "x", "thinking_blocks": ["t"]}),
            "messages[1].thinking_blocks",
            id="thinking-block-not-object",
        ),
        pytest.param({**_msgs(USER), "tools": {"type": "function"}}, "tools", id="tools-not-list"),
        pytest.param({**_msgs(USER), "tools": ["f"]}, "tools[0]", id="tool-not-object"),
        pytest.param(
            {**_msgs(USER), "tools": [{"type": "function", "function": {"description": "no name"}}]},
            "tools[0].function.name",
            id="tool-without-name",
        ),
        pytest.param(
            {**_msgs(USER), "tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
            "tools[0].function.parameters",
            id="tool-parameters-not-object",
        ),
        pytest.param({**_msgs(USER), "tool_choice": "sometimes"}, "tool_choice", id="tool-choice-unknown-word"),
        pytest.param(
            {**_msgs(USER), "tool_choice": {"type": "function"}}, "tool_choice", id="tool-choice-without-name"
        ),
        pytest.param({**_msgs(USER), "stop": 5}, "stop", id="stop-number"),
        pytest.param({**_msgs(USER), "stop": ["a", 1]}, "stop", id="stop-list-with-number"),
        pytest.param({**_msgs(USER), "max_tokens": 0}, "max_tokens", id="max-tokens-zero"),
        pytest.param({**_msgs(USER), "max_tokens": -5}, "max_tokens", id="max-tokens-negative"),
        pytest.param({**_msgs(USER), "max_tokens": True}, "max_tokens", id="max-tokens-bool"),
        pytest.param({**_msgs(USER), "max_tokens": "100"}, "max_tokens", id="max-tokens-string"),
        pytest.param(
            {**_msgs(USER), "response_format": {"type": "xml"}}, "response_format", id="response-format-bad-type"
        ),
        pytest.param({**_msgs(USER), "response_format": "json"}, "response_format", id="response-format-string"),
        pytest.param(
            {**_msgs(USER), "response_format": {"type": "json_schema"}},
            "response_format.json_schema",
            id="json-schema-missing",
        ),
        pytest.param(
            {**_msgs(USER), "response_format": {"type": "json_schema", "json_schema": {"schema": []}}},
            "response_format.json_schema",
            id="json-schema-schema-not-object",
        ),
        pytest.param({**_msgs(USER), "temperature": "hot"}, "temperature", id="temperature-string"),
        pytest.param({**_msgs(USER), "top_p": True}, "top_p", id="top-p-bool"),
        pytest.param({**_msgs(USER), "seed": 1.5}, "seed", id="seed-float"),
        pytest.param({**_msgs(USER), "n": True}, "n", id="n-bool"),
        pytest.param({**_msgs(USER), "logprobs": "yes"}, "logprobs", id="logprobs-string"),
        pytest.param({**_msgs(USER), "stream": "yes"}, "stream", id="stream-string"),
        pytest.param({**_msgs(USER), "stream_options": ["include_usage"]}, "stream_options", id="stream-options-list"),
        pytest.param({**_msgs(USER), "reasoning_effort": "extreme"}, "reasoning_effort", id="reasoning-effort-unknown"),
        pytest.param({**_msgs(USER), "user": 7}, "user", id="user-number"),
        pytest.param({**_msgs(USER), "metadata": "x"}, "metadata", id="metadata-string"),
        pytest.param({**_msgs(USER), "logit_bias": [1]}, "logit_bias", id="logit-bias-list"),
    ],
)
def test_decode_request_errors_name_the_field(body: Any, param: str) -> None:
    with pytest.raises(BadRequestError) as info:
        openai_chat.decode_request(body)
    err = info.value
    assert (err.status_code, err.param, err.type) == (400, param, "invalid_request_error")
    assert f"'{param}'" in str(err)
    status, envelope = openai_chat.encode_error(err)
    assert status == 400
    assert envelope["error"]["param"] == param


def test_invalid_max_completion_tokens_names_that_field() -> None:
    with pytest.raises(BadRequestError) as info:
        _decode(max_completion_tokens=0)
    assert info.value.param == "max_completion_tokens"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 2.5),
        ("temperature", -0.1),
        ("top_p", 1.5),
        ("n", 0),
        ("presence_penalty", 3),
        ("top_logprobs", 21),
    ],
)
def test_decode_request_rejects_out_of_range_values(field: str, value: float) -> None:
    with pytest.raises(BadRequestError) as info:
        _decode(**{field: value})
    assert info.value.param == field


# ---------------------------------------------------------------- response round trip


@st.composite
def usages(draw: st.DrawFn) -> ir.Usage:
    inp = draw(st.integers(0, 10**6))
    read = draw(st.integers(0, inp))
    out = draw(st.integers(0, 10**5))
    return ir.Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=read,
        cache_write_tokens=draw(st.integers(0, inp - read)),
        reasoning_tokens=draw(st.integers(0, out)),
    )


@st.composite
def choices(draw: st.DrawFn, index: int) -> ir.Choice:
    parts: list[ir.Part] = []
    if draw(st.booleans()):
        parts.append(ir.ReasoningPart(draw(texts)))
    if draw(st.booleans()):
        parts.append(ir.TextPart(draw(texts)))
    if draw(st.booleans()):
        parts.append(ir.TextPart(draw(texts), refusal=True))
    calls = st.builds(
        ir.ToolCallPart,
        id=names,
        name=names,
        arguments=arguments,
        provider_specific=st.none() | st.fixed_dictionaries({"thought_signature": names}),
    )
    parts += draw(st.lists(calls, max_size=3))
    return ir.Choice(
        index=index,
        parts=parts,
        finish_reason=draw(st.none() | st.sampled_from(["stop", "length", "tool_calls", "content_filter", "error"])),
        logprobs=draw(st.none() | st.just({"content": [], "refusal": None})),
        audio=draw(st.none() | st.fixed_dictionaries({"id": names, "data": texts, "transcript": texts})),
    )


@st.composite
def responses(draw: st.DrawFn) -> ir.Response:
    n = draw(st.integers(1, 3))
    return ir.Response(
        id=draw(names),
        model=draw(names),
        created=draw(st.integers(1, 2**33)),
        choices=[draw(choices(i)) for i in range(n)],
        usage=draw(st.none() | usages()),
        system_fingerprint=draw(st.none() | names),
        service_tier=draw(st.none() | st.sampled_from(["default", "flex", "priority"])),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses())
def test_response_round_trip(resp: ir.Response) -> None:
    back = openai_chat.decode_response(_over_the_wire(openai_chat.encode_response(resp)))
    expected = msgspec.structs.replace(
        resp,
        choices=[msgspec.structs.replace(c, native_finish_reason=c.finish_reason) for c in resp.choices],
        # the OpenAI usage object always carries reasoning_tokens, so after a trip it is "reported"
        usage=msgspec.structs.replace(resp.usage, reasoning_reported=True) if resp.usage else None,
    )
    assert back == expected


def test_response_round_trip_keeps_reasoning_signatures() -> None:
    parts: list[ir.Part] = [
        ir.ReasoningPart("2+2", signature="sig=="),
        ir.RedactedReasoningPart("opaque"),
        ir.TextPart("4"),
    ]
    resp = ir.Response(id="r", model="m", created=1, choices=[ir.Choice(parts=parts, finish_reason="stop")])
    back = openai_chat.decode_response(openai_chat.encode_response(resp))
    assert back.choices[0].parts == parts


def test_encode_response_shape() -> None:
    resp = ir.Response(
        id="chatcmpl-1",
        model="gpt-4o",
        created=1700000000,
        choices=[
            ir.Choice(
                parts=[
                    ir.ReasoningPart("r", signature="s"),
                    ir.TextPart("a"),
                    ir.TextPart("b"),
                    ir.ToolCallPart(id="c", name="f"),
                ],
                finish_reason="tool_calls",
            )
        ],
        usage=ir.Usage(input_tokens=10, output_tokens=5, cache_read_tokens=4, cache_write_tokens=2, reasoning_tokens=3),
    )
    assert openai_chat.encode_response(resp) == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "ab",
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                    "reasoning_content": "r",
                    "thinking_blocks": [{"type": "thinking", "thinking": "r", "signature": "s"}],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
    }


# ---------------------------------------------------------------- decode_response: vendor quirks


def _body(message: dict[str, Any], finish: str | None = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        **extra,
    }


@pytest.mark.parametrize(
    ("body", "usage"),
    [
        pytest.param(
            _body(
                {"content": "hi"},
                x_groq={"id": "req_1", "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}},
            ),
            ir.Usage(input_tokens=9, output_tokens=3),
            id="groq-x_groq-usage",
        ),
        pytest.param(
            _body(
                {"content": "4", "reasoning_content": "r"},
                usage={
                    "prompt_tokens": 10,
                    "completion_tokens": 2,
                    "total_tokens": 212,
                    "completion_tokens_details": {"reasoning_tokens": 200},
                },
            ),
            ir.Usage(input_tokens=10, output_tokens=202, reasoning_tokens=200, reasoning_reported=True),
            id="xai-reasoning-outside-completion",
        ),
        pytest.param(
            _body(
                {"content": "4"},
                usage={
                    "prompt_tokens": 10,
                    "completion_tokens": 202,
                    "total_tokens": 212,
                    "completion_tokens_details": {"reasoning_tokens": 200},
                },
            ),
            ir.Usage(input_tokens=10, output_tokens=202, reasoning_tokens=200, reasoning_reported=True),
            id="openai-reasoning-inside-completion",
        ),
        pytest.param(
            _body(
                {"content": "4"},
                usage={
                    "prompt_tokens": 120,
                    "completion_tokens": 1,
                    "total_tokens": 121,
                    "prompt_cache_hit_tokens": 64,
                    "prompt_cache_miss_tokens": 56,
                },
            ),
            ir.Usage(input_tokens=120, output_tokens=1, cache_read_tokens=64),
            id="deepseek-prompt-cache-hit-tokens",
        ),
        pytest.param(
            _body(
                {"content": "4"},
                usage={
                    "prompt_tokens": 2000,
                    "completion_tokens": 1,
                    "total_tokens": 2001,
                    "prompt_tokens_details": {"cached_tokens": 1920},
                },
            ),
            ir.Usage(input_tokens=2000, output_tokens=1, cache_read_tokens=1920),
            id="openai-cached-tokens",
        ),
        pytest.param(_body({"content": "4"}), None, id="no-usage"),
    ],
)
def test_decode_response_usage_quirks(body: dict[str, Any], usage: ir.Usage | None) -> None:
    assert openai_chat.decode_response(body).usage == usage


@pytest.mark.parametrize(
    ("message", "parts"),
    [
        pytest.param(
            {
                "content": [
                    {
                        "type": "thinking",
                        "thinking": [{"type": "text", "text": "Let me "}, {"type": "text", "text": "add."}],
                    },
                    {"type": "text", "text": "4242"},
                ]
            },
            [ir.ReasoningPart("Let me add."), ir.TextPart("4242")],
            id="mistral-thinking-parts",
        ),
        pytest.param(
            {"content": "4", "reasoning_content": "r"},
            [ir.ReasoningPart("r"), ir.TextPart("4")],
            id="deepseek-reasoning_content",
        ),
        pytest.param(
            {"content": "4", "reasoning": "r"}, [ir.ReasoningPart("r"), ir.TextPart("4")], id="groq-ollama-reasoning"
        ),
        pytest.param({"content": ""}, [], id="empty-content"),
        pytest.param(
            {
                "content": None,
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}],
            },
            [ir.ToolCallPart(id="c", name="f", arguments='{"a":1}')],
            id="arguments-as-object",
        ),
        pytest.param(
            {"content": None, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]},
            [ir.ToolCallPart(id="c", name="f", arguments="{}")],
            id="arguments-missing",
        ),
    ],
)
def test_decode_response_message_quirks(message: dict[str, Any], parts: list[ir.Part]) -> None:
    assert openai_chat.decode_response(_body(message)).choices[0].parts == parts


@pytest.mark.parametrize(
    ("native", "finish"),
    [
        ("stop", "stop"),
        ("eos", "stop"),
        ("length", "length"),
        ("model_length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        (None, None),
    ],
)
def test_decode_response_finish_reasons(native: str | None, finish: str | None) -> None:
    choice = openai_chat.decode_response(_body({"content": "x"}, finish=native)).choices[0]
    assert (choice.finish_reason, choice.native_finish_reason) == (finish, native)


def test_decode_response_keeps_what_has_no_common_meaning() -> None:
    body = _body({"content": None, "refusal": "I can't help with that.", "annotations": [{"type": "url_citation"}]})
    body["choices"][0]["content_filter_results"] = {"hate": {"filtered": False, "severity": "safe"}}
    body["choices"][0]["native_finish_reason"] = "end_turn"
    choice = openai_chat.decode_response(body).choices[0]
    assert choice.provider_specific == {
        "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}},
        "native_finish_reason": "end_turn",
        "annotations": [{"type": "url_citation"}],
    }
    # a refusal is what the model said, marked as such (other dialects show it as text)
    assert choice.parts == [ir.TextPart("I can't help with that.", refusal=True)]
    assert choice.text == ""


def test_openrouter_leading_whitespace_body_decodes() -> None:
    raw = b"\n         \n\n         \n" + dumps(_body({"content": "4242"}))
    resp = OpenAIProvider().decode_chat(raw, model="m")
    assert resp.choices[0].text == "4242"


@pytest.mark.parametrize(
    ("raw", "cls", "text"),
    [
        (b'{"error": {"message": "upstream died", "code": 502}}', InternalServerError, "upstream died"),
        (b'{"error": {"message": "bad thing", "type": "invalid_request_error"}}', BadRequestError, "bad thing"),
    ],
)
def test_an_error_body_in_a_200_answer_raises(raw: bytes, cls: type[APIStatusError], text: str) -> None:
    with pytest.raises(cls, match=text):
        OpenAIProvider().decode_chat(raw, model="m")
