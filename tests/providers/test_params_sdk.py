"""The parameter policy through the SDK (``llmswitch.completion`` and the Router), over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import llmswitch
from llmswitch.testing import FakeUpstream, Reply

MESSAGES = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def up(fake: FakeUpstream) -> Iterator[FakeUpstream]:
    fake.reset()
    yield fake
    fake.reset()


def bases(up: FakeUpstream) -> dict[str, str]:
    return {"openai": up.openai_base, "anthropic": up.anthropic_base, "gemini": up.gemini_base}


MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
}
# a parameter each provider cannot take, as SDK keywords
UNSUPPORTED: dict[str, dict[str, Any]] = {
    "openai": {"top_k": 40},
    "anthropic": {"seed": 7},
    "gemini": {"logit_bias": {"50256": -100}},
}


def call(up: FakeUpstream, family: str, **kw: Any) -> Any:
    return llmswitch.completion(MODELS[family], MESSAGES, api_base=bases(up)[family], api_key="k", num_retries=0, **kw)


@pytest.mark.parametrize("family", ["openai", "anthropic", "gemini"])
def test_unsupported_params_error_before_any_call(up: FakeUpstream, family: str) -> None:
    (name,) = UNSUPPORTED[family]
    with pytest.raises(llmswitch.UnsupportedParamsError) as info:
        call(up, family, **UNSUPPORTED[family])
    assert isinstance(info.value, llmswitch.BadRequestError)
    assert info.value.param == name and info.value.status_code == 400
    assert MODELS[family] in str(info.value)
    assert up.requests == []


@pytest.mark.parametrize("family", ["openai", "anthropic", "gemini"])
def test_drop_params_per_call(up: FakeUpstream, family: str) -> None:
    """Dropped, reported in _hidden_params, and drop_params itself never sent (it used to be, and the
    provider answered 400)."""
    (name,) = UNSUPPORTED[family]
    up.script(Reply(text="Teal."))
    r = call(up, family, drop_params=True, **UNSUPPORTED[family])
    assert r.choices[0].message.content == "Teal."
    assert r._hidden_params["dropped_params"] == [name]
    body = up.requests[0].json
    assert "drop_params" not in body and name not in body and "top_k" not in (body.get("generationConfig") or {})


def test_drop_params_true_with_nothing_to_drop_is_not_sent(up: FakeUpstream) -> None:
    up.script(Reply(text="Teal."))
    r = call(up, "openai", drop_params=True, additional_drop_params=["user"], temperature=0.1)
    assert r._hidden_params["dropped_params"] == []
    assert set(up.requests[0].json) == {"model", "messages", "temperature"}


def test_additional_drop_params_per_call(up: FakeUpstream) -> None:
    up.script(Reply(text="Teal."))
    r = call(up, "openai", additional_drop_params=["temperature", "store"], temperature=0.1, store=True, seed=3)
    assert r._hidden_params["dropped_params"] == ["temperature", "store"]
    assert set(up.requests[0].json) == {"model", "messages", "seed"}


def test_module_wide_drop_params(up: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llmswitch, "drop_params", True, raising=False)
    up.script(Reply(text="Teal."))
    r = call(up, "anthropic", seed=7)
    assert r._hidden_params["dropped_params"] == ["seed"]


def test_a_stream_carries_the_report_on_each_chunk(up: FakeUpstream) -> None:
    up.script(Reply(text="Teal and more.", chunk_size=3))
    chunks = list(call(up, "anthropic", stream=True, seed=7, drop_params=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Teal and more."
    assert all(c._hidden_params["dropped_params"] == ["seed"] for c in chunks)
    assert "seed" not in up.requests[0].json


def test_an_anthropic_thinking_dict_reaches_openai_as_an_effort(up: FakeUpstream) -> None:
    up.script(Reply(text="Teal."))
    call(up, "openai", thinking={"type": "enabled", "budget_tokens": 4096})
    body = up.requests[0].json
    assert body["reasoning_effort"] == "medium" and "thinking" not in body


def test_router_deployment_drop_params(up: FakeUpstream) -> None:
    router = llmswitch.Router(
        model_list=[
            {
                "model_name": "claude",
                "litellm_params": {
                    "model": MODELS["anthropic"],
                    "api_base": up.anthropic_base,
                    "api_key": "k",
                    "drop_params": True,
                },
            },
            {
                "model_name": "strict",
                "litellm_params": {"model": MODELS["anthropic"], "api_base": up.anthropic_base, "api_key": "k"},
            },
        ],
        num_retries=0,
    )
    up.script(Reply(text="Teal."))
    r = router.completion(model="claude", messages=MESSAGES, seed=7, frequency_penalty=0.5)
    assert r._hidden_params["dropped_params"] == ["seed", "frequency_penalty"]
    assert r.llmswitch["dropped_params"] == ["seed", "frequency_penalty"]
    body = up.requests[0].json
    assert not {"seed", "frequency_penalty", "drop_params"} & set(body)
    up.script(Reply(text="Teal."))
    r = router.completion(model="claude", messages=MESSAGES, temperature=0.5)
    assert r._hidden_params["dropped_params"] == [] and "dropped_params" not in r.llmswitch
    with pytest.raises(llmswitch.UnsupportedParamsError, match="'strict'"):
        router.completion(model="strict", messages=MESSAGES, seed=7)
    assert len(up.requests) == 2
    # the refusal was no verdict on the deployment
    (strict,) = router.deployments("strict")
    assert strict.failures == 0 and strict.breaker.state == "closed"
