"""The parameter policy as pure functions: what each provider takes, and map / drop / refuse."""

from __future__ import annotations

import doctest
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from llmswitch import ir
from llmswitch.dialects import anthropic_messages, drop_params, openai_chat, thinking
from llmswitch.errors import BadRequestError, UnsupportedParamsError
from llmswitch.providers import get_provider, params
from llmswitch.providers.params import ACCEPTS, PARAMS, apply, caller_field, passthrough_blockers

ANTHROPIC = "anthropic_messages"
SHARED = Path(__file__).resolve().parents[3] / "shared"


def request(**kw: Any) -> ir.Request:
    return ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart("hi")])], **kw)


def run(provider: str, req: ir.Request, **kw: Any) -> tuple[ir.Request, tuple[str, ...]]:
    return apply(req, provider, model="the-model", deployment="grp", dialect=get_provider(provider).dialect, **kw)


# ---------------------------------------------------------------- refused, naming the caller's own field


@pytest.mark.parametrize(
    ("provider", "fields", "client", "named"),
    [
        ("anthropic", {"seed": 3}, None, "seed"),
        ("anthropic", {"n": 2}, None, "n"),
        ("anthropic", {"logit_bias": {"1": 2.0}}, None, "logit_bias"),
        ("anthropic", {"n": 2}, "gemini", "generationConfig.candidateCount"),
        ("anthropic", {"presence_penalty": 0.5}, "gemini", "generationConfig.presencePenalty"),
        ("openai", {"top_k": 5}, ANTHROPIC, "top_k"),
        ("openai", {"top_k": 5}, "gemini", "generationConfig.topK"),
        ("gemini", {"logit_bias": {"1": 2.0}}, None, "logit_bias"),
        ("gemini", {"parallel_tool_calls": False}, ANTHROPIC, "tool_choice.disable_parallel_tool_use"),
        ("groq", {"logprobs": True}, None, "logprobs"),
        ("groq", {"n": 3}, "gemini", "generationConfig.candidateCount"),
        ("deepseek", {"seed": 1}, None, "seed"),
        ("mistral", {"top_logprobs": 2}, None, "top_logprobs"),
        ("ollama", {"logit_bias": {"1": 1.0}}, None, "logit_bias"),
    ],
)
def test_refused_naming_the_callers_field(
    provider: str, fields: dict[str, Any], client: str | None, named: str
) -> None:
    req = request(client_dialect=client, **fields)
    with pytest.raises(UnsupportedParamsError) as info:
        run(provider, req)
    err = info.value
    assert isinstance(err, BadRequestError)
    assert err.status_code == 400 and err.param == named and err.params == (named,)
    assert f"'{named}'" in str(err) and "'grp'" in str(err) and f"{provider}/the-model" in str(err)
    assert "drop_params" in str(err)
    assert err.should_retry is False


@pytest.mark.parametrize(
    ("provider", "fields"),
    [
        ("anthropic", {"n": 1, "logprobs": False, "parallel_tool_calls": True, "temperature": 0.3, "top_k": 4}),
        ("gemini", {"n": 2, "seed": 3, "top_k": 4, "presence_penalty": 0.1, "logprobs": True, "top_logprobs": 3}),
        ("openai", {"seed": 3, "n": 2, "logit_bias": {"1": 1.0}, "reasoning_effort": "low"}),
        ("hosted_vllm", {"top_k": 4}),
        ("together_ai", {"top_k": 4}),
        ("groq", {"n": 1, "user": "u", "metadata": {"a": "b"}}),
    ],
)
def test_what_a_target_takes_passes_unchanged(provider: str, fields: dict[str, Any]) -> None:
    req = request(**fields)
    out, dropped = run(provider, req)
    assert out is req and dropped == ()


def test_every_unsupported_field_is_listed() -> None:
    with pytest.raises(UnsupportedParamsError) as info:
        run("anthropic", request(seed=1, frequency_penalty=0.2, logprobs=True, top_logprobs=3))
    assert info.value.params == ("seed", "frequency_penalty", "logprobs", "top_logprobs")


# ---------------------------------------------------------------- dropped and reported


def test_drop_params_clears_and_reports() -> None:
    req = request(seed=1, temperature=0.2, client_dialect="gemini", drop_params=True)
    out, dropped = run("anthropic", req)
    assert (out.seed, out.temperature) == (None, 0.2)
    assert dropped == ("generationConfig.seed",)
    assert out.drop_params is None and out.additional_drop_params is None


def test_the_deployments_drop_setting() -> None:
    out, dropped = run("openai", request(top_k=3), drop=True)
    assert out.top_k is None and dropped == ("top_k",)


@pytest.mark.parametrize(
    ("names", "client", "dropped"),
    [
        (["temperature"], None, ("temperature",)),
        (["generationConfig.temperature"], "gemini", ("generationConfig.temperature",)),
        (["temperature"], "gemini", ("generationConfig.temperature",)),
        (["thinking"], ANTHROPIC, ("thinking",)),
        (["stop_sequences"], ANTHROPIC, ("stop_sequences",)),
        (["user"], None, ("user",)),
        (["top_p"], None, ()),  # not set: nothing to drop or report
    ],
)
def test_additional_drop_params_always_drops(names: list[str], client: str | None, dropped: tuple[str, ...]) -> None:
    req = request(temperature=0.3, thinking_budget=2048, stop=["x"], user="u", client_dialect=client)
    out, got = run("anthropic", req, additional=names)
    assert got == dropped
    if dropped:
        name = {"thinking": "thinking_budget", "stop_sequences": "stop"}.get(names[0], names[0]).split(".")[-1]
        assert getattr(out, name) is None


def test_additional_drop_params_of_the_request_and_an_extra() -> None:
    req = request(extra={"store": True, "safe_prompt": True}, additional_drop_params=["safe_prompt"])
    out, dropped = run("mistral", req)
    assert out.extra == {"store": True} and dropped == ("safe_prompt",)


# ---------------------------------------------------------------- extras


@pytest.mark.parametrize(
    "key", ["store", "prediction", "modalities", "audio", "web_search_options", "safety_identifier"]
)
@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
def test_openai_only_keys_are_refused_by_anthropic_and_gemini(provider: str, key: str) -> None:
    with pytest.raises(UnsupportedParamsError) as info:
        run(provider, request(extra={key: True}))
    assert info.value.param == key
    out, dropped = run(provider, request(extra={key: True, "labels": {"a": "b"}}, drop_params=True))
    # Gemini has labels, Anthropic does not
    assert dropped == ((key,) if provider == "gemini" else (key, "labels"))
    assert out.extra == ({"labels": {"a": "b"}} if provider == "gemini" else None)


def test_service_tier_reaches_anthropic_only_with_its_values() -> None:
    out, _ = run("anthropic", request(extra={"service_tier": "auto"}))
    assert out.extra == {"service_tier": "auto"}
    with pytest.raises(UnsupportedParamsError):
        run("anthropic", request(extra={"service_tier": "flex"}))


def test_vendor_extras_pass_to_openai_compatible_servers() -> None:
    req = request(extra={"safe_prompt": True, "repetition_penalty": 1.1})
    assert run("mistral", req)[0] is req
    assert run("hosted_vllm", req)[0] is req


def test_another_dialects_extras_are_refused_or_dropped_by_name() -> None:
    req = request(
        extra={"safetySettings": [], "generationConfig": {"responseModalities": ["TEXT"]}},
        extra_dialect="gemini",
        client_dialect="gemini",
    )
    with pytest.raises(UnsupportedParamsError) as info:
        run("openai", req)
    assert info.value.params == ("safetySettings", "generationConfig.responseModalities")
    out, dropped = run("anthropic", req, drop=True)
    assert out.extra is None and dropped == ("safetySettings", "generationConfig.responseModalities")
    # ... and kept for the provider whose format they are
    assert run("gemini", req)[0].extra == req.extra


def test_openai_refuses_a_vendor_thinking_switch() -> None:
    with pytest.raises(UnsupportedParamsError, match="'thinking'"):
        run("openai", request(extra={"thinking": {"type": "enabled"}}))
    assert run("deepseek", request(extra={"thinking": {"type": "enabled"}}))[1] == ()


# ---------------------------------------------------------------- mapped


@pytest.mark.parametrize(
    ("budget", "effort"),
    [(1024, "low"), (2048, "low"), (4096, "medium"), (8192, "high"), (32000, "high"), (-1, "medium")],
)
@pytest.mark.parametrize("provider", ["openai", "azure", "groq", "xai"])
def test_a_thinking_budget_becomes_an_effort(provider: str, budget: int, effort: str) -> None:
    out, dropped = run(provider, request(thinking_budget=budget, client_dialect=ANTHROPIC))
    assert (out.thinking_budget, out.reasoning_effort, dropped) == (None, effort, ())
    body = openai_chat.encode_request(out, model="o3")
    assert body["reasoning_effort"] == effort and "thinking" not in body


def test_thinking_off_sends_nothing_to_openai_and_an_effort_wins() -> None:
    out, _ = run("openai", request(thinking_budget=0))
    assert (out.thinking_budget, out.reasoning_effort) == (None, None)
    out, _ = run("openai", request(thinking_budget=9000, reasoning_effort="low"))
    assert (out.thinking_budget, out.reasoning_effort) == (None, "low")


def test_a_gemini_dynamic_budget_to_anthropic_is_the_documented_default() -> None:
    out, _ = run("anthropic", request(thinking_budget=-1, client_dialect="gemini"))
    body = anthropic_messages.encode_request(out, model="claude-sonnet-4-5")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["max_tokens"] > 4096


def test_mistral_seed_is_random_seed() -> None:
    out, dropped = run("mistral", request(seed=42))
    assert out.seed is None and out.extra == {"random_seed": 42} and dropped == ()
    assert openai_chat.encode_request(out, model="mistral-large")["random_seed"] == 42


# ---------------------------------------------------------------- the table and the fast path


def test_a_provider_without_a_row_takes_everything() -> None:
    req = request(top_k=1, logit_bias={"1": 1.0}, drop_params=True, extra={"vendor_knob": 3})
    out, dropped = apply(req, "someone-elses", model="x", deployment="x", dialect="openai_chat")
    assert dropped == () and out.top_k == 1 and out.extra == {"vendor_knob": 3} and out.drop_params is None


def test_a_provider_without_a_row_still_refuses_another_formats_extras() -> None:
    req = request(extra={"safetySettings": []}, extra_dialect="gemini", client_dialect="gemini", top_k=2)
    with pytest.raises(UnsupportedParamsError, match="'safetySettings'"):
        apply(req, "someone-elses", model="x", deployment="x", dialect="openai_chat")
    out, dropped = apply(req, "someone-elses", model="x", deployment="x", dialect="openai_chat", drop=True)
    assert dropped == ("safetySettings",) and out.extra is None and out.top_k == 2
    assert apply(req, "someone-elses", model="x", deployment="x", dialect="gemini")[0].extra == req.extra


def test_every_row_names_known_parameters_and_every_provider_has_a_row() -> None:
    from llmswitch.providers import known_providers

    for name, row in ACCEPTS.items():
        assert row.params <= PARAMS, name
    assert set(known_providers()) == set(ACCEPTS)


def test_passthrough_blockers() -> None:
    openai = passthrough_blockers("openai")
    assert {"top_k", "thinking", "drop_params", "additional_drop_params"} <= openai
    assert not {"temperature", "seed", "logit_bias", "store"} & openai
    assert "top_k" not in passthrough_blockers("hosted_vllm")
    assert "user" in passthrough_blockers("hosted_vllm", frozenset({"user"}))
    assert passthrough_blockers("openai") is openai  # computed once


def test_caller_field() -> None:
    assert caller_field("n", "gemini") == "generationConfig.candidateCount"
    assert caller_field("stop", ANTHROPIC) == "stop_sequences"
    assert caller_field("thinking_budget", None) == "thinking"
    assert caller_field("seed", None) == "seed"


def test_a_gemini_thinking_config_leftover_is_named_to_the_leaf() -> None:
    req = request(
        extra={"generationConfig": {"thinkingConfig": {"includeThoughts": True}}},
        extra_dialect="gemini",
        client_dialect="gemini",
    )
    with pytest.raises(UnsupportedParamsError) as info:
        run("anthropic", req)
    assert info.value.params == ("generationConfig.thinkingConfig.includeThoughts",)


@pytest.mark.parametrize("module", [params, thinking, drop_params], ids=lambda m: m.__name__)
def test_the_docstring_examples_hold(module: Any) -> None:
    failures, tried = doctest.testmod(module)
    assert tried and not failures


@pytest.mark.parametrize(
    ("extra", "provider", "effort", "budget"),
    [
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}, "openai", "high", None),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}, "groq", "xhigh", None),
        ({"thinking": {"type": "adaptive"}}, "openai", "medium", None),
        ({"thinking": {"type": "adaptive"}}, "gemini", None, -1),
        ({"output_config": {"effort": "low"}}, "gemini", "low", None),
    ],
)
def test_anthropic_adaptive_thinking_and_effort_map_elsewhere(
    extra: dict[str, Any], provider: str, effort: str | None, budget: int | None
) -> None:
    req = request(extra=extra, extra_dialect=ANTHROPIC, client_dialect=ANTHROPIC)
    out, dropped = run(provider, req)
    assert (out.reasoning_effort, out.thinking_budget, out.extra, dropped) == (effort, budget, None, ())
    assert run("anthropic", req)[0].extra == extra  # Anthropic's own, for Anthropic


def test_the_rest_of_an_anthropic_output_config_follows_the_policy() -> None:
    req = request(
        extra={"output_config": {"effort": "low", "task_budget": 9}}, extra_dialect=ANTHROPIC, client_dialect=ANTHROPIC
    )
    with pytest.raises(UnsupportedParamsError) as info:
        run("openai", req)
    assert info.value.params == ("output_config",)


@pytest.mark.parametrize(("key", "value"), [("store", False), ("modalities", ["text"]), ("service_tier", "default")])
@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
def test_an_openai_default_said_out_loud_is_not_sent_nor_refused(provider: str, key: str, value: Any) -> None:
    out, dropped = run(provider, request(extra={key: value}))
    assert out.extra is None and dropped == ()


# ---------------------------------------------------------------- properties

OPENAI_ONLY = {
    "store": True,
    "prediction": {"type": "content", "content": "x"},
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "wav"},
    "web_search_options": {},
    "safety_identifier": "u-1",
}
settings_st = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.floats(0, 1),
        "top_p": st.floats(0.1, 1),
        "top_k": st.integers(1, 50),
        "max_tokens": st.integers(1, 4000),
        "stop": st.lists(st.sampled_from(["END", "###"]), min_size=1, max_size=2),
        "seed": st.integers(0, 99),
        "n": st.integers(1, 3),
        "presence_penalty": st.floats(-1, 1),
        "frequency_penalty": st.floats(-1, 1),
        "logit_bias": st.just({"42": 1.0}),
        "logprobs": st.booleans(),
        "top_logprobs": st.integers(0, 5),
        "reasoning_effort": st.sampled_from(["low", "medium", "high"]),
        "thinking_budget": st.sampled_from([-1, 0, 1024, 5000, 20000]),
        "parallel_tool_calls": st.booleans(),
        "extra": st.lists(st.sampled_from(sorted(OPENAI_ONLY)), min_size=1, unique=True).map(
            lambda keys: {k: OPENAI_ONLY[k] for k in keys}
        ),
    },
)


@cache
def spec(name: str, schema: str) -> Draft202012Validator:
    doc = json.loads((SHARED / "specs" / f"{name}-openapi.json").read_text())
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]})


@settings(max_examples=150, deadline=None)
@given(fields=settings_st, provider=st.sampled_from(sorted(ACCEPTS)), client=st.sampled_from([None, "gemini"]))
def test_with_drop_params_what_is_sent_is_what_the_target_takes(
    fields: dict[str, Any], provider: str, client: str | None
) -> None:
    """Dropping never fails, leaves nothing the provider cannot take, and reports exactly what it removed;
    without drop_params the same request is refused exactly when something was dropped."""
    req = request(client_dialect=client, **fields)
    out, dropped = run(provider, req, drop=True)
    accepts = ACCEPTS[provider]
    for name in PARAMS - accepts.params:
        value = getattr(out, name)
        # only a value that asks nothing may stay
        assert value is None or repr(value) == {"n": "1", "logprobs": "False", "parallel_tool_calls": "True"}[name]
    assert len(dropped) == len(set(dropped))
    try:
        strict, nothing = run(provider, req)
    except UnsupportedParamsError as exc:
        assert list(exc.params) == list(dropped)
    else:
        assert dropped == nothing == () and strict == out
    p = get_provider(provider)
    if provider == "anthropic":
        body = anthropic_messages.encode_request(out, model="claude-sonnet-4-5")
        problems = [e.message[:200] for e in spec("anthropic", "CreateMessageParams").iter_errors(body)]
        assert not problems, problems
    elif p.dialect == "openai_chat":
        body = openai_chat.encode_request(out, model="m", max_tokens_key=getattr(p, "max_tokens_key", "max_tokens"))
        assert not (set(body) & {"top_k", "thinking"}) or "top_k" in accepts.params
        if provider in ("openai", "azure"):
            problems = [e.message[:200] for e in spec("openai", "CreateChatCompletionRequest").iter_errors(body)]
            assert not problems, problems
