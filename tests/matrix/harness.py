"""The feature matrix of issue 14: each feature, from each client, to each provider family, through the gateway.

Dimensions (a test module takes the slice its feature family applies to):

- client: the official ``openai``, ``anthropic`` and ``google-genai`` SDKs talking to the gateway, and
  ``llmswitch.completion`` (``sdk``), which calls the provider itself;
- family: OpenAI, Anthropic, Gemini and Ollama's native ``/api/chat``, all served by one
  :class:`~llmswitch.testing.FakeUpstream`, which records every request;
- whole or streamed answers; the policy's refusal (deployments ``m-<family>``) and its ``drop_params``
  path (deployments ``d-<family>``, and ``drop_params`` in the body / keyword).

A case writes its request in each client's own form (:class:`Ask`), :func:`ask` sends it and reads the
answer back through the client's own types into one shape (:class:`Seen`), and
:func:`upstream_problems` judges what the upstream received against the provider's published spec
(``../shared/specs``: OpenAI's and Anthropic's OpenAPI documents) or, for Gemini and Ollama, their
documented request rules. The gateway itself comes from ``tests/server/gateway_harness.py``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes
from jsonschema import Draft202012Validator

import llmswitch
from llmswitch.testing import FakeUpstream, RecordedRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from gateway_harness import MASTER_KEY, ServedGateway

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs"

CLIENTS = ("openai", "anthropic", "gemini", "sdk")
FAMILIES = ("openai", "anthropic", "gemini", "ollama")
MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-20250514",
    "gemini": "gemini/gemini-2.5-flash",
    "ollama": "ollama/qwen3:14b",
}
# also served: ``ollama_chat/``, always Ollama's native API (``ollama/`` is native too, but under an
# api_base ending in /v1 the OpenAI-compatible one, so the policy lets it take only what both take)
MORE_MODELS = {"ollama_chat": "ollama_chat/qwen3:14b"}
KEYS = {family: f"sk-up-{family}-matrix" for family in FAMILIES}
# the fake upstream's face that answers each family
FACE = {"ollama_chat": "ollama"}


def base_of(up: FakeUpstream, family: str) -> str:
    """The ``api_base`` a deployment of ``family`` takes (Ollama's is the server root)."""
    return {"openai": up.openai_base, "anthropic": up.anthropic_base, "gemini": up.gemini_base}.get(family, up.url)


def gateway_config(up: FakeUpstream, store: str) -> str:
    """``m-<family>`` deployments refuse what they cannot take; ``d-<family>`` ones drop it (``drop_params``)."""
    rows = []
    for prefix, extra in (("m", ""), ("d", "\n      drop_params: true")):
        for family, model in (MODELS | MORE_MODELS).items():
            key = "" if family.startswith("ollama") else f"\n      api_key: {KEYS[family]}"
            rows.append(
                f"""  - model_name: {prefix}-{family}
    litellm_params:
      model: {model}
      api_base: "{base_of(up, family)}"{key}{extra}
"""
            )
    return (
        "model_list:\n"
        + "".join(rows)
        + f"general_settings:\n  master_key: {MASTER_KEY}\n  store_path: {json.dumps(store)}\n"
        + "router_settings:\n  num_retries: 0\n"
    )


def matrix(
    clients: tuple[str, ...] = CLIENTS, families: tuple[str, ...] = FAMILIES, streams: tuple[bool, ...] = (False, True)
) -> Iterator[Any]:
    """``pytest.param(client, family, stream)`` for every combination, with readable ids."""
    for client in clients:
        for family in families:
            for stream in streams:
                yield pytest.param(client, family, stream, id=f"{client}-to-{family}-{'stream' if stream else 'whole'}")


# ---------------------------------------------------------------- one request, in each client's own form


@dataclass
class Ask:
    """A request as each client writes it; a client with no way to write it is left ``None``.

    - ``openai``: keywords of ``client.chat.completions.create`` (``model`` is filled in); also the
      keywords of ``llmswitch.completion`` unless ``sdk`` says otherwise;
    - ``anthropic``: keywords of ``client.messages.create``;
    - ``gemini``: ``{"contents": ..., "config": {...}}`` for ``client.models.generate_content``.
    """

    openai: dict[str, Any] | None = None
    anthropic: dict[str, Any] | None = None
    gemini: dict[str, Any] | None = None
    sdk: dict[str, Any] | None = None

    def for_client(self, client: str) -> dict[str, Any] | None:
        if client == "sdk":
            return self.sdk if self.sdk is not None else self.openai
        got: dict[str, Any] | None = getattr(self, client)
        return got


def plain(text: str) -> Ask:
    """A one-message request with no settings, in every client's form."""
    return Ask(
        openai={"messages": [{"role": "user", "content": text}]},
        anthropic={"max_tokens": 256, "messages": [{"role": "user", "content": text}]},
        gemini={"contents": text, "config": {}},
    )


@dataclass
class Seen:
    """What a client got back, in one shape for every client.

    ``status`` is 200 or the error's status (``error`` its message, with the field it names); the
    rest is read through the client's own types: visible ``text``; OpenAI's ``refusal``, ``logprobs``
    (``content`` entries), ``audio``, legacy ``function_call`` and ``tool_calls`` as (name, arguments
    text); ``finish`` in the client's own words; ``headers`` of the HTTP answer (gateway clients).
    ``raw`` holds the SDK's own result object(s) for whatever else a test looks at.
    """

    status: int = 200
    error: str = ""
    text: str = ""
    refusal: str | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    function_call: tuple[str, str] | None = None
    finish: str | None = None
    logprobs: list[dict[str, Any]] | None = None
    audio: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: list[Any] = field(default_factory=list)


def ask(
    client: str,
    group: str,
    request: Ask,
    *,
    stream: bool = False,
    gw: ServedGateway | None = None,
    up: FakeUpstream | None = None,
    drop: bool = False,
) -> Seen:
    """Send ``request`` from ``client`` to the deployment ``group`` (``m-<family>`` or ``d-<family>``).

    Gateway clients need ``gw``; ``sdk`` calls the provider of ``group`` at ``up`` directly, with
    ``drop_params=True`` for a ``d-`` group or when ``drop`` is set (the body's ``drop_params`` for the
    gateway's clients).
    """
    kwargs = request.for_client(client)
    assert kwargs is not None, f"no {client} form of this request"
    kwargs = json.loads(json.dumps(kwargs))  # the case's dicts stay unchanged
    if client == "sdk":
        assert up is not None
        return _ask_sdk(up, group, kwargs, stream=stream, drop=drop or group.startswith("d-"))
    assert gw is not None
    return ASKERS[client](gw, group, kwargs, stream, drop)


def _openai_message(seen: Seen, msg: Any) -> None:
    seen.text += msg.content or ""
    seen.refusal = msg.refusal
    seen.tool_calls = [_call_of(c) for c in msg.tool_calls or []]
    if getattr(msg, "function_call", None) is not None:
        seen.function_call = (msg.function_call.name or "", msg.function_call.arguments or "")
    if getattr(msg, "audio", None) is not None:
        seen.audio = msg.audio if isinstance(msg.audio, dict) else msg.audio.model_dump()


def _call_of(c: Any) -> tuple[str, str]:
    if getattr(c, "type", "function") == "custom":
        custom = c.custom if isinstance(c.custom, dict) else c.custom.model_dump()
        return custom["name"], custom["input"]
    return c.function.name or "", c.function.arguments or ""


def _dump(obj: Any) -> Any:
    if obj is None or isinstance(obj, dict | list):
        return obj
    return obj.model_dump(exclude_none=True)


def _openai_chunks(seen: Seen, chunks: list[Any]) -> None:
    """A stream's chunks added up the way the openai SDK's users add them up."""
    calls: dict[int, list[str]] = {}
    refusal: str | None = None
    fc: list[str] | None = None
    audio: dict[str, Any] = {}
    for chunk in chunks:
        seen.raw.append(chunk)
        if chunk.usage is not None:
            seen.usage = _dump(chunk.usage)
        for choice in chunk.choices:
            d = choice.delta
            seen.text += d.content or ""
            if d.refusal is not None:
                refusal = (refusal or "") + d.refusal
            for t in d.tool_calls or []:
                name_args = calls.setdefault(t.index, ["", ""])
                custom = getattr(t, "custom", None)
                if isinstance(custom, dict):
                    name_args[0] += custom.get("name") or ""
                    name_args[1] += custom.get("input") or ""
                elif t.function is not None:
                    name_args[0] += t.function.name or ""
                    name_args[1] += t.function.arguments or ""
            f = getattr(d, "function_call", None)
            if f is not None:
                fc = fc or ["", ""]
                f = _dump(f)
                fc[0] += f.get("name") or ""
                fc[1] += f.get("arguments") or ""
            a = getattr(d, "audio", None)
            if a is not None:
                for k, v in _dump(a).items():
                    audio[k] = audio.get(k, "") + v if k in ("data", "transcript") else v
            lp = _dump(choice.logprobs)
            if lp and lp.get("content"):
                seen.logprobs = (seen.logprobs or []) + list(lp["content"])
            if choice.finish_reason is not None:
                seen.finish = choice.finish_reason
    seen.refusal = refusal
    seen.tool_calls = [(n, a) for _, (n, a) in sorted(calls.items())]
    seen.function_call = (fc[0], fc[1]) if fc is not None else None
    seen.audio = audio or None


def _openai_result(seen: Seen, r: Any) -> None:
    seen.raw.append(r)
    (choice,) = r.choices
    _openai_message(seen, choice.message)
    seen.finish = choice.finish_reason
    lp = _dump(choice.logprobs)
    seen.logprobs = list(lp["content"]) if lp and lp.get("content") is not None else None
    seen.usage = _dump(r.usage)


def _ask_openai(gw: ServedGateway, group: str, kwargs: dict[str, Any], stream: bool, drop: bool) -> Seen:
    if drop:
        kwargs["extra_body"] = {**(kwargs.get("extra_body") or {}), "drop_params": True}
    seen = Seen()
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as client:
        try:
            raw = client.chat.completions.with_raw_response.create(model=group, stream=stream, **kwargs)
        except openai.APIStatusError as exc:
            return Seen(status=exc.status_code, error=json.dumps(exc.body))
        seen.headers = {k.lower(): v for k, v in raw.headers.items()}
        result = raw.parse()
        if stream:
            _openai_chunks(seen, list(result))
        else:
            _openai_result(seen, result)
    return seen


def _ask_sdk(up: FakeUpstream, group: str, kwargs: dict[str, Any], *, stream: bool, drop: bool) -> Seen:
    family = group.split("-", 1)[1]
    extra = kwargs.pop("extra_body", None) or {}
    kwargs.update(extra)
    if drop:
        kwargs["drop_params"] = True
    seen = Seen()
    try:
        result = llmswitch.completion(
            (MODELS | MORE_MODELS)[family],
            stream=stream,
            api_base=base_of(up, family),
            api_key=KEYS.get(family),
            num_retries=0,
            **kwargs,
        )
        if stream:
            with result:
                _openai_chunks(seen, list(result))
        else:
            _openai_result(seen, result)
    except llmswitch.APIStatusError as exc:
        return Seen(status=exc.status_code, error=f"{getattr(exc, 'param', None)}|{exc}")
    seen.headers = {"x-llmswitch-dropped-params": ", ".join(seen.raw[0]._hidden_params["dropped_params"])}
    return seen


def _ask_anthropic(gw: ServedGateway, group: str, kwargs: dict[str, Any], stream: bool, drop: bool) -> Seen:
    if drop:
        kwargs["extra_body"] = {**(kwargs.get("extra_body") or {}), "drop_params": True}
    seen = Seen()
    with anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0) as client:
        try:
            if stream:
                with client.messages.stream(model=group, **kwargs) as s:
                    seen.headers = {k.lower(): v for k, v in s.response.headers.items()}
                    streamed = "".join(s.text_stream)
                    message = s.get_final_message()
            else:
                raw = client.messages.with_raw_response.create(model=group, **kwargs)
                seen.headers = {k.lower(): v for k, v in raw.headers.items()}
                message = raw.parse()
                streamed = None
        except anthropic.APIStatusError as exc:
            return Seen(status=exc.status_code, error=json.dumps(exc.body))
    seen.raw.append(message)
    for block in message.content:
        if block.type == "text":
            seen.text += block.text
        elif block.type == "tool_use":
            seen.tool_calls.append((block.name, json.dumps(block.input)))
    if streamed is not None:
        assert streamed == seen.text, (streamed, seen.text)  # the deltas add up to the final message
    seen.finish = message.stop_reason
    seen.usage = message.usage.model_dump(exclude_none=True)
    return seen


def _ask_gemini(gw: ServedGateway, group: str, kwargs: dict[str, Any], stream: bool, drop: bool) -> Seen:
    config = dict(kwargs.get("config") or {})
    config.setdefault("automatic_function_calling", {"disable": True})
    if drop:
        config["http_options"] = {"extra_body": {"drop_params": True}}
    http = gtypes.HttpOptions(base_url=gw.url, api_version="v1beta")
    seen = Seen()
    with genai.Client(api_key=MASTER_KEY, http_options=http) as client:
        try:
            if stream:
                chunks = list(
                    client.models.generate_content_stream(model=group, contents=kwargs["contents"], config=config)
                )
            else:
                chunks = [client.models.generate_content(model=group, contents=kwargs["contents"], config=config)]
        except genai_errors.APIError as exc:
            return Seen(status=exc.code, error=f"{exc.status}|{exc.message}")
    for chunk in chunks:
        seen.raw.append(chunk)
        if chunk.sdk_http_response is not None and not seen.headers:
            seen.headers = {k.lower(): v for k, v in (chunk.sdk_http_response.headers or {}).items()}
        for cand in chunk.candidates or []:
            for part in (cand.content.parts if cand.content else None) or []:
                if part.text and not part.thought:
                    seen.text += part.text
                if part.function_call is not None:
                    seen.tool_calls.append((part.function_call.name or "", json.dumps(part.function_call.args or {})))
            if cand.finish_reason is not None:
                seen.finish = cand.finish_reason.value
            if cand.logprobs_result is not None:
                chosen = cand.logprobs_result.chosen_candidates or []
                seen.logprobs = (seen.logprobs or []) + [
                    {"token": c.token, "logprob": c.log_probability} for c in chosen
                ]
        if chunk.usage_metadata is not None:
            seen.usage = chunk.usage_metadata.model_dump(exclude_none=True)
    return seen


ASKERS: dict[str, Callable[[ServedGateway, str, dict[str, Any], bool, bool], Seen]] = {
    "openai": _ask_openai,
    "anthropic": _ask_anthropic,
    "gemini": _ask_gemini,
}


# an OpenAI client to an OpenAI deployment is relayed as it is (the fast path) unless the policy must read
# the body (drop_params in it: the full path), which must show the same; the SDK always takes the full path
OPENAI_PATHS = [
    pytest.param("openai", "fast", id="openai-fast"),
    pytest.param("openai", "full", id="openai-full"),
    pytest.param("sdk", "full", id="sdk"),
]


def ask_openai_family(
    client: str, path: str, request: Ask, *, stream: bool, gw: ServedGateway, up: FakeUpstream
) -> tuple[Seen, dict[str, Any]]:
    """``request`` from an OpenAI client or the SDK to the OpenAI deployment by ``path`` (see OPENAI_PATHS):
    the answer (a 200) and the body the upstream received (valid by OpenAI's spec)."""
    seen = ask(client, "m-openai", request, stream=stream, gw=gw, up=up, drop=path == "full")
    assert seen.status == 200, seen.error
    body: dict[str, Any] = the_request(up, "openai").json
    return seen, body


def refused_then_dropped(
    client: str, family: str, request: Ask, *, gw: ServedGateway, up: FakeUpstream
) -> tuple[Seen, Seen, dict[str, Any]]:
    """The policy's two answers to a request ``family`` cannot take all of: from ``m-<family>`` a 400 with
    nothing sent upstream; from ``d-<family>`` (drop_params) a 200, answered by the reply the test
    scripted, and the body the upstream received (valid by its provider's rules)."""
    refused = ask(client, f"m-{family}", request, gw=gw, up=up)
    assert refused.status == 400, refused
    assert up.requests == []
    kept = ask(client, f"d-{family}", request, gw=gw, up=up)
    assert kept.status == 200, kept.error
    body: dict[str, Any] = the_request(up, family).json
    return refused, kept, body


def dropped(seen: Seen) -> set[str]:
    """The fields the gateway (header) or the SDK (``_hidden_params``) reported dropped."""
    value = seen.headers.get("x-llmswitch-dropped-params", "")
    return {f.strip() for f in value.split(",") if f.strip()}


# ---------------------------------------------------------------- what the upstream received, judged


@cache
def spec(name: str, schema: str) -> Draft202012Validator:
    """A validator for one schema of a provider's published OpenAPI document in ``../shared/specs``."""
    doc = json.loads((SPECS / f"{name}-openapi.json").read_text())
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]})


# Gemini's generateContent request (ai.google.dev/api/generate-content#request-body, Vertex AI alike)
GEMINI_REQUEST_KEYS = frozenset(
    ("contents", "tools", "toolConfig", "safetySettings", "systemInstruction", "generationConfig", "cachedContent")
)
# a Part holds exactly one of these (ai.google.dev/api/caching#Part), beside its metadata
GEMINI_PART_DATA = frozenset(
    ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult")
)
GEMINI_PART_META = frozenset(("thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"))
GEMINI_GENERATION_KEYS = frozenset(
    (
        *("stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities"),
        *("candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty"),
        *("frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers", "speechConfig"),
        *("thinkingConfig", "imageConfig", "mediaResolution", "_responseJsonSchema"),
    )
)
GEMINI_MODES = frozenset(("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"))
# Ollama's /api/chat (docs.ollama.com/api/chat)
OLLAMA_REQUEST_KEYS = frozenset(
    ("model", "messages", "tools", "format", "options", "stream", "keep_alive", "think", "logprobs", "top_logprobs")
)
OLLAMA_MESSAGE_KEYS = frozenset(("role", "content", "images", "tool_calls", "thinking", "tool_name"))


def gemini_problems(body: Any) -> list[str]:
    """Gemini's documented request rules (there is no published OpenAPI document of it in ../shared/specs)."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    out = [f"unknown top-level key {k!r}" for k in body if k not in GEMINI_REQUEST_KEYS]
    for i, c in enumerate(body.get("contents") or [None]):
        if not isinstance(c, dict) or c.get("role") not in ("user", "model"):
            out.append(f"contents[{i}]: role must be user or model")
            continue
        for j, p in enumerate(c.get("parts") or [None]):
            data = set(p or {}) & GEMINI_PART_DATA
            if not isinstance(p, dict) or len(data) != 1 or set(p) - GEMINI_PART_DATA - GEMINI_PART_META:
                out.append(f"contents[{i}].parts[{j}] is not one of Part's data fields: {p}")
    gc = body.get("generationConfig") or {}
    out += [f"unknown generationConfig key {k!r}" for k in gc if k not in GEMINI_GENERATION_KEYS]
    fcc = (body.get("toolConfig") or {}).get("functionCallingConfig")
    if fcc is not None:
        if fcc.get("mode") not in GEMINI_MODES:
            out.append(f"functionCallingConfig.mode {fcc.get('mode')!r}")
        if fcc.get("allowedFunctionNames") and fcc.get("mode") not in ("ANY", "VALIDATED"):
            out.append("allowedFunctionNames is only for the ANY and VALIDATED modes")
    for t in body.get("tools") or []:
        if not isinstance(t, dict) or not t:
            out.append(f"a tool that is not an object: {t}")
    return out


def ollama_problems(body: Any) -> list[str]:
    """Ollama's documented ``/api/chat`` request."""
    if not isinstance(body, dict):
        return ["the body is not a JSON object"]
    out = [f"unknown top-level key {k!r}" for k in body if k not in OLLAMA_REQUEST_KEYS]
    for i, m in enumerate(body.get("messages") or []):
        if m.get("role") not in ("system", "user", "assistant", "tool"):
            out.append(f"messages[{i}].role {m.get('role')!r}")
        out += [f"messages[{i}] has an unknown key {k!r}" for k in m if k not in OLLAMA_MESSAGE_KEYS]
        if not isinstance(m.get("content", ""), str):
            out.append(f"messages[{i}].content must be a string")
    return out


def upstream_problems(rec: RecordedRequest) -> list[str]:
    """What is wrong with a chat request the upstream received, by its provider's spec or documented rules."""
    if rec.face == "openai":
        validator = spec("openai", "CreateChatCompletionRequest")
    elif rec.face == "anthropic":
        validator = spec("anthropic", "CreateMessageParams")
    elif rec.face == "gemini":
        return gemini_problems(rec.json)
    else:
        return ollama_problems(rec.json)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(rec.json)]


def the_request(up: FakeUpstream, family: str) -> RecordedRequest:
    """The one chat request the upstream received, asserted valid for its provider, in ``family``'s own API."""
    chats = [r for r in up.requests if r.method == "POST"]
    assert len(chats) == 1, [r.path for r in chats]
    (rec,) = chats
    assert rec.face == FACE.get(family, family), (rec.face, rec.path)
    problems = upstream_problems(rec)
    assert not problems, (problems, rec.json)
    return rec


# ---------------------------------------------------------------- a provider's own answer, byte for byte
# (for what a scripted Reply cannot say: refusals, logprobs, audio, custom tool calls), as its API documents it

OPENAI_HEAD = {"id": "chatcmpl-matrix1", "created": 1764979200, "model": "gpt-4o-mini-2024-07-18"}
OPENAI_USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


def openai_answer(message: dict[str, Any], *, logprobs: Any = None, finish: str = "stop") -> str:
    """A Chat Completions response body (``message`` gets ``role`` and ``content: null`` unless given)."""
    msg = {"role": "assistant", "content": None, "refusal": None, **message}
    choice = {"index": 0, "message": msg, "logprobs": logprobs, "finish_reason": finish}
    body = {**OPENAI_HEAD, "object": "chat.completion", "choices": [choice], "usage": OPENAI_USAGE}
    return json.dumps(body | {"system_fingerprint": "fp_matrix"})


def openai_stream(deltas: list[dict[str, Any]], *, logprobs: list[Any] | None = None, finish: str = "stop") -> str:
    """A Chat Completions stream: one chunk per delta (with ``logprobs[i]`` when given), the finish, the usage."""
    head = {**OPENAI_HEAD, "object": "chat.completion.chunk", "system_fingerprint": "fp_matrix"}
    chunks = []
    for i, delta in enumerate(deltas):
        lp = logprobs[i] if logprobs is not None else None
        chunks.append(head | {"choices": [{"index": 0, "delta": delta, "logprobs": lp, "finish_reason": None}]})
    chunks.append(head | {"choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]})
    chunks.append(head | {"choices": [], "usage": OPENAI_USAGE})
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


GEMINI_USAGE = {"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13}


def gemini_candidate(parts: list[dict[str, Any]], finish: str | None = None, **more: Any) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0, **more}
    if finish is not None:
        cand["finishReason"] = finish
    return cand


def gemini_answer(*candidates: dict[str, Any]) -> str:
    """A generateContent response body."""
    body = {"candidates": list(candidates), "usageMetadata": GEMINI_USAGE, "modelVersion": "gemini-2.5-flash"}
    return json.dumps(body | {"responseId": "matrix-gemini-1"})


def gemini_stream(*candidates: dict[str, Any]) -> str:
    """A streamGenerateContent (``alt=sse``) body: one chunk per candidate; usage rides on each."""
    chunks = [
        {"candidates": [c], "usageMetadata": GEMINI_USAGE, "modelVersion": "gemini-2.5-flash", "responseId": "m-g-1"}
        for c in candidates
    ]
    return "".join(f"data: {json.dumps(c)}\r\n\r\n" for c in chunks)


def ollama_lines(*messages: dict[str, Any], **last: Any) -> list[dict[str, Any]]:
    """/api/chat answer objects, one per message fragment; the last one is ``done`` with ``last``'s fields."""
    base = {"model": "qwen3:14b", "created_at": "2026-12-06T00:00:00Z"}
    out = [base | {"message": {"role": "assistant", "content": "", **m}, "done": False} for m in messages]
    out[-1] |= {"done": True, "done_reason": "stop", "prompt_eval_count": 9, "eval_count": 4, **last}
    return out


def ollama_answer(*messages: dict[str, Any], **last: Any) -> str:
    """A non-streamed /api/chat body: the fragments' text joined into one message."""
    lines = ollama_lines(*messages, **last)
    whole = lines[-1] | {"message": {"role": "assistant", "content": "".join(m.get("content", "") for m in messages)}}
    return json.dumps(whole)


def ollama_stream(*messages: dict[str, Any], **last: Any) -> str:
    return "".join(json.dumps(line) + "\n" for line in ollama_lines(*messages, **last))
