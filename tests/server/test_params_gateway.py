"""The policy for parameters a deployment cannot take, through the gateway, with the official SDKs as clients.

For each client dialect and each provider family (OpenAI, Anthropic, Gemini, and Groq as an
OpenAI-compatible preset) a request carries a parameter the target cannot take, written as that client
writes it:

- without drop_params: a 400 in the client's own error format naming the client's field and the
  deployment, and the upstream saw nothing;
- with drop_params on the deployment (``litellm_params``) and per call (the request body): a 200, the
  ``x-llmswitch-dropped-params`` header names the field, and the upstream body lacks it (and, for OpenAI
  and Anthropic, validates against the provider's published spec).

An Anthropic client to an Anthropic deployment, or a Gemini client to Gemini, writes only what that API
takes, so those two pairs have no such parameter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from gateway_harness import MASTER_KEY, ServedGateway, chat_request, dialect_error
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes
from jsonschema import Draft202012Validator

from llmswitch.testing import FakeUpstream, RecordedRequest, Reply

SHARED = Path(__file__).resolve().parents[3] / "shared"
MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-20250514",
    "gemini": "gemini/gemini-2.5-flash",
    "groq": "groq/llama-3.3-70b-versatile",
}
PROMPT = "Name a colour."


def _rows(up: FakeUpstream, prefix: str, extra: str) -> str:
    bases = {"openai": up.openai_base, "anthropic": up.anthropic_base, "gemini": up.gemini_base}
    bases["groq"] = up.openai_base
    return "".join(
        f"""  - model_name: {prefix}-{family}
    litellm_params:
      model: {model}
      api_base: "{bases[family]}"
      api_key: sk-up-{family}{extra}
"""
        for family, model in MODELS.items()
    )


@pytest.fixture(scope="module")
def pgw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    """``p-<family>`` deployments refuse; ``d-<family>`` ones have ``drop_params: true``."""
    db = tmp_path_factory.mktemp("params") / "keys.db"
    text = (
        "model_list:\n"
        + _rows(upstream, "p", "")
        + _rows(upstream, "d", "\n      drop_params: true")
        + f"general_settings:\n  master_key: {MASTER_KEY}\n  store_path: {json.dumps(str(db))}\n"
        + "router_settings:\n  num_retries: 0\n"
    )
    with ServedGateway(text) as served:
        yield served


# ---------------------------------------------------------------- each client, as its SDK writes the field


@dataclass
class Outcome:
    status: int
    message: str = ""
    headers: dict[str, str] | None = None


def ask_openai(gw: ServedGateway, group: str, params: dict[str, Any], drop: bool) -> Outcome:
    extra_body = {k: v for k, v in params.items() if k not in ("logit_bias",)}
    if drop:
        extra_body["drop_params"] = True
    kwargs: dict[str, Any] = {"logit_bias": params["logit_bias"]} if "logit_bias" in params else {}
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as client:
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=group, messages=[{"role": "user", "content": PROMPT}], extra_body=extra_body or None, **kwargs
            )
        except openai.BadRequestError as exc:
            assert isinstance(exc.body, dict)
            return Outcome(exc.status_code, f"{exc.body.get('param')}|{exc.body.get('message')}")
        raw.parse()
        return Outcome(raw.status_code, headers=dict(raw.headers))


def ask_anthropic(gw: ServedGateway, group: str, params: dict[str, Any], drop: bool) -> Outcome:
    # this SDK's create() no longer lists the sampling fields (top_k …): the API still takes them
    extra_body = {**params, "drop_params": True} if drop else params
    with anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0) as client:
        try:
            raw = client.messages.with_raw_response.create(
                model=group, max_tokens=64, messages=[{"role": "user", "content": PROMPT}], extra_body=extra_body
            )
        except anthropic.BadRequestError as exc:
            assert exc.body is not None and exc.body["type"] == "error"
            return Outcome(exc.status_code, exc.body["error"]["message"])
        raw.parse()
        return Outcome(raw.status_code, headers=dict(raw.headers))


def ask_gemini(gw: ServedGateway, group: str, params: dict[str, Any], drop: bool) -> Outcome:
    http = gtypes.HttpOptions(base_url=gw.url, api_version="v1beta")
    client = genai.Client(api_key=MASTER_KEY, http_options=http)
    config = gtypes.GenerateContentConfig(
        **params,
        http_options=gtypes.HttpOptions(extra_body={"drop_params": True}) if drop else None,
    )
    with client:
        try:
            r = client.models.generate_content(model=group, contents=PROMPT, config=config)
        except genai_errors.ClientError as exc:
            return Outcome(exc.code, str(exc.message))
    assert r.sdk_http_response is not None
    return Outcome(200, headers=dict(r.sdk_http_response.headers or {}))


ASK = {"openai": ask_openai, "anthropic": ask_anthropic, "gemini": ask_gemini}

# client -> family -> (the parameter as the client's SDK takes it, the client's name for it, the key
# that must not reach the upstream body)
CASES: dict[str, dict[str, tuple[dict[str, Any], str, str]]] = {
    "openai": {
        "openai": ({"top_k": 40}, "top_k", "top_k"),  # the fast path's body
        "anthropic": ({"logit_bias": {"50256": -100}}, "logit_bias", "logit_bias"),
        "gemini": ({"logit_bias": {"50256": -100}}, "logit_bias", "logit_bias"),
        "groq": ({"logprobs": True, "top_logprobs": 2}, "logprobs", "logprobs"),
    },
    "anthropic": {
        "openai": ({"top_k": 5}, "top_k", "top_k"),
        "gemini": ({"service_tier": "standard_only"}, "service_tier", "service_tier"),
        "groq": ({"top_k": 5}, "top_k", "top_k"),
    },
    "gemini": {
        "openai": ({"top_k": 40}, "generationConfig.topK", "top_k"),
        "anthropic": ({"candidate_count": 2}, "generationConfig.candidateCount", "n"),
        "groq": ({"candidate_count": 2}, "generationConfig.candidateCount", "n"),
    },
}


def cases() -> Iterator[Any]:
    for client, families in CASES.items():
        for family in families:
            yield pytest.param(client, family, id=f"{client}-sdk-to-{family}")


@cache
def spec(name: str, schema: str) -> Draft202012Validator:
    doc = json.loads((SHARED / "specs" / f"{name}-openapi.json").read_text())
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]})


def assert_valid_upstream(family: str, rec: RecordedRequest) -> None:
    if family in ("openai", "groq"):
        problems = [e.message[:200] for e in spec("openai", "CreateChatCompletionRequest").iter_errors(rec.json)]
    elif family == "anthropic":
        problems = [e.message[:200] for e in spec("anthropic", "CreateMessageParams").iter_errors(rec.json)]
    else:
        problems = []  # no Gemini spec in ../shared/specs: the fake upstream's own decoder judged it
    assert not problems, problems


def sent_keys(family: str, rec: RecordedRequest) -> set[str]:
    body = rec.json
    assert isinstance(body, dict)
    if family == "gemini":
        gc = body.get("generationConfig") or {}
        return set(body) | {_snake(k) for k in gc}
    return set(body)


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key).replace("candidate_count", "n")


@pytest.mark.parametrize(("client", "family"), list(cases()))
def test_refused_in_the_clients_dialect_naming_its_field(
    pgw: ServedGateway, up: FakeUpstream, client: str, family: str
) -> None:
    params, field, _ = CASES[client][family]
    got = ASK[client](pgw, f"p-{family}", params, drop=False)
    assert got.status == 400
    assert field in got.message
    assert f"p-{family}" in got.message  # the deployment
    assert "drop_params" in got.message  # and how to have it dropped
    assert up.requests == []


@pytest.mark.parametrize("how", ["deployment", "per-call"])
@pytest.mark.parametrize(("client", "family"), list(cases()))
def test_dropped_and_reported(pgw: ServedGateway, up: FakeUpstream, client: str, family: str, how: str) -> None:
    params, field, key = CASES[client][family]
    up.script(Reply(text="Teal."))
    group = f"d-{family}" if how == "deployment" else f"p-{family}"
    got = ASK[client](pgw, group, params, drop=how == "per-call")
    assert got.status == 200, got.message
    assert got.headers is not None
    assert field in got.headers["x-llmswitch-dropped-params"].split(", ")
    (rec,) = up.requests
    assert rec.text == PROMPT
    sent = sent_keys(family, rec)
    assert key not in sent
    assert not sent & {"drop_params", "additional_drop_params"}
    assert_valid_upstream(family, rec)


def test_nothing_dropped_no_header(pgw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(text="Teal."))
    got = ask_openai(pgw, "d-anthropic", {"top_k": 3}, drop=False)
    assert got.status == 200
    assert got.headers is not None and "x-llmswitch-dropped-params" not in got.headers
    assert up.requests[0].json["top_k"] == 3


# ---------------------------------------------------------------- raw HTTP: streams, the fast path, settings


@pytest.mark.parametrize("face", ["openai", "anthropic", "gemini"])
def test_a_stream_reports_the_dropped_field_too(pgw: ServedGateway, up: FakeUpstream, face: str) -> None:
    up.script(Reply(text="Teal.", chunk_size=2))
    path, body = chat_request(face, "d-openai", PROMPT, stream=True)
    if face in ("openai", "anthropic"):
        body["top_k"] = 7
    else:
        body["generationConfig"] = {"topK": 7}
    r = pgw.call("POST", path, body)
    assert r.status == 200, r.body
    expected = "generationConfig.topK" if face == "gemini" else "top_k"
    assert r.headers["x-llmswitch-dropped-params"] == expected
    assert "top_k" not in up.requests[0].json


def test_the_fast_path_refuses_before_any_upstream_call(pgw: ServedGateway, up: FakeUpstream) -> None:
    path, body = chat_request("openai", "p-openai", PROMPT, stream=True)
    body["thinking"] = {"type": "enabled"}  # DeepSeek's switch: OpenAI refuses it
    r = pgw.call("POST", path, body)
    assert r.status == 400
    kind, message = dialect_error("openai", r)
    assert kind == "invalid_request_error" and "'thinking'" in message
    assert r.json()["error"]["param"] == "thinking"
    assert up.requests == []


def test_the_fast_path_relays_a_body_with_nothing_to_check(pgw: ServedGateway, up: FakeUpstream) -> None:
    """A body the policy has nothing to say about reaches OpenAI as the client wrote it (vendor extras too)."""
    up.script(Reply(text="Teal."))
    path, body = chat_request("openai", "p-openai", PROMPT)
    body["store"] = False
    body["temperature"] = 0.5
    r = pgw.call("POST", path, body)
    assert r.status == 200, r.body
    assert up.requests[0].json == {**body, "model": "gpt-4o-mini"}
    assert "x-llmswitch-dropped-params" not in r.headers


def test_an_anthropic_thinking_budget_reaches_openai_as_an_effort(pgw: ServedGateway, up: FakeUpstream) -> None:
    up.script(Reply(text="Teal."))
    path, body = chat_request("anthropic", "p-openai", PROMPT)
    body["max_tokens"] = 9000
    body["thinking"] = {"type": "enabled", "budget_tokens": 8192}
    r = pgw.call("POST", path, body)
    assert r.status == 200, r.body
    sent = up.requests[0].json
    assert sent["reasoning_effort"] == "high"
    assert "thinking" not in sent
    assert "x-llmswitch-dropped-params" not in r.headers
    assert_valid_upstream("openai", up.requests[0])


def test_a_gemini_dynamic_budget_reaches_anthropic_as_the_documented_default(
    pgw: ServedGateway, up: FakeUpstream
) -> None:
    up.script(Reply(text="Teal."))
    path, body = chat_request("gemini", "p-anthropic", PROMPT)
    body["generationConfig"] = {"thinkingConfig": {"thinkingBudget": -1}}
    r = pgw.call("POST", path, body)
    assert r.status == 200, r.body
    sent = up.requests[0].json
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert sent["max_tokens"] > 4096
    assert_valid_upstream("anthropic", up.requests[0])


@pytest.mark.parametrize("family", ["anthropic", "gemini"])
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("store", True),
        ("service_tier", "flex"),
        ("prediction", {"type": "content", "content": "x"}),
        ("modalities", ["text", "audio"]),
        ("audio", {"voice": "alloy", "format": "wav"}),
        # web_search_options is mapped to their web search tools (tests/matrix/test_matrix_web_search.py)
        ("safety_identifier", "u-1"),
    ],
)
def test_openai_only_keys_never_reach_anthropic_or_gemini(
    pgw: ServedGateway, up: FakeUpstream, family: str, key: str, value: Any
) -> None:
    path, body = chat_request("openai", f"p-{family}", PROMPT)
    r = pgw.call("POST", path, {**body, key: value})
    assert r.status == 400
    assert r.json()["error"]["param"] == key
    assert up.requests == []
    up.script(Reply(text="Teal."))
    r = pgw.call("POST", path, {**body, key: value, "drop_params": True})
    assert r.status == 200, r.body
    assert r.headers["x-llmswitch-dropped-params"] == key
    assert key not in up.requests[0].json


def test_additional_drop_params_per_call(pgw: ServedGateway, up: FakeUpstream) -> None:
    """Always dropped, even where the target takes them; named as the caller wrote them."""
    up.script(Reply(text="Teal."))
    path, body = chat_request("gemini", "p-gemini", PROMPT)
    body["generationConfig"] = {"temperature": 0.3, "topK": 5}
    body["additional_drop_params"] = ["generationConfig.topK"]
    r = pgw.call("POST", path, body)
    assert r.status == 200, r.body
    assert r.headers["x-llmswitch-dropped-params"] == "generationConfig.topK"
    assert up.requests[0].json["generationConfig"] == {"temperature": 0.3}


@pytest.mark.parametrize(
    ("body_extra", "param"),
    [({"drop_params": "yes"}, "drop_params"), ({"additional_drop_params": "top_k"}, "additional_drop_params")],
)
@pytest.mark.parametrize("face", ["openai", "anthropic", "gemini"])
def test_bad_drop_settings_are_the_callers_mistake(
    pgw: ServedGateway, up: FakeUpstream, face: str, body_extra: dict[str, Any], param: str
) -> None:
    path, body = chat_request(face, "p-openai", PROMPT)
    r = pgw.call("POST", path, {**body, **body_extra})
    assert r.status == 400
    _, message = dialect_error(face, r)
    assert param in message
    assert up.requests == []


def test_litellm_settings_drop_params_and_deployment_additional_drop_params(
    upstream: FakeUpstream, up: FakeUpstream, tmp_path: Path
) -> None:
    text = f"""model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-20250514
      api_base: "{upstream.anthropic_base}"
      api_key: sk-up
      additional_drop_params: ["temperature"]
litellm_settings:
  drop_params: true
general_settings:
  master_key: {MASTER_KEY}
  store_path: {json.dumps(str(tmp_path / "keys.db"))}
"""
    with ServedGateway(text) as gw:
        up.script(Reply(text="Teal."))
        path, body = chat_request("openai", "claude", PROMPT)
        r = gw.call("POST", path, {**body, "seed": 7, "temperature": 0.2, "top_p": 0.9})
    assert r.status == 200, r.body
    assert r.headers["x-llmswitch-dropped-params"] == "temperature, seed"
    sent = up.requests[0].json
    assert "seed" not in sent and "temperature" not in sent and sent["top_p"] == 0.9
    assert not {"drop_params", "additional_drop_params"} & set(sent)
    assert_valid_upstream("anthropic", up.requests[0])


@pytest.mark.parametrize(
    ("family", "thinking", "sent"),
    [
        ("openai", {"output_config": {"effort": "low"}}, ("reasoning_effort", "low")),
        ("openai", {}, ("reasoning_effort", "medium")),
        ("gemini", {}, ("thinkingBudget", -1)),
    ],
)
def test_anthropic_adaptive_thinking_reaches_other_providers(
    pgw: ServedGateway, up: FakeUpstream, family: str, thinking: dict[str, Any], sent: tuple[str, Any]
) -> None:
    up.script(Reply(text="Teal."))
    with anthropic.Anthropic(base_url=pgw.url, api_key=MASTER_KEY, max_retries=0) as client:
        raw = client.messages.with_raw_response.create(
            model=f"p-{family}",
            max_tokens=2048,
            messages=[{"role": "user", "content": PROMPT}],
            thinking={"type": "adaptive"},
            **thinking,
        )
    assert raw.status_code == 200 and "x-llmswitch-dropped-params" not in raw.headers
    body = up.requests[0].json
    key, value = sent
    got = body[key] if family == "openai" else body["generationConfig"]["thinkingConfig"][key]
    assert got == value
    assert "thinking" not in body and "output_config" not in body
    assert_valid_upstream(family, up.requests[0])


@pytest.mark.parametrize(
    ("face", "family", "setting", "field", "kind"),
    [
        ("openai", "anthropic", {"logit_bias": {"1": 5}}, "logit_bias", "invalid_request_error"),
        ("anthropic", "groq", {"top_k": 3}, "top_k", "invalid_request_error"),
        ("gemini", "anthropic", {"candidateCount": 2}, "generationConfig.candidateCount", "INVALID_ARGUMENT"),
    ],
)
def test_the_refusal_is_exactly_the_clients_error_envelope(
    pgw: ServedGateway, up: FakeUpstream, face: str, family: str, setting: dict[str, Any], field: str, kind: str
) -> None:
    path, body = chat_request(face, f"p-{family}", PROMPT)
    if face == "gemini":
        body["generationConfig"] = setting
    else:
        body.update(setting)
    r = pgw.call("POST", path, body)
    assert r.status == 400
    got_kind, message = dialect_error(face, r)
    assert got_kind == kind
    assert f"'{field}'" in message and f"'p-{family}' ({MODELS[family]})" in message
    if face == "openai":
        assert r.json()["error"]["param"] == field
    assert up.requests == []
