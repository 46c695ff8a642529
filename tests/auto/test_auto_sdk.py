"""The auto group in the SDK: ``Router(...).completion(model="auto")`` and ``acompletion``, whole and
streamed, with the decision in ``r.llmswitch["route"]``, the ``route`` keyword as the override, and a
cascade escalating in process as it does at the gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from llmswitch import Router
from llmswitch.errors import ConfigError
from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture
def tiers() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as weak, FakeUpstream() as strong:
        weak.default = Reply(text="weak says hi")
        strong.default = Reply(text="strong says hi")
        yield weak, strong


def _router(tiers: tuple[FakeUpstream, FakeUpstream], **auto: Any) -> Router:
    weak, strong = tiers
    return Router(
        model_list=[
            {
                "model_name": "weak",
                "litellm_params": {"model": "openai/w", "api_base": weak.openai_base, "api_key": "k"},
            },
            {
                "model_name": "strong",
                "litellm_params": {"model": "openai/s", "api_base": strong.openai_base, "api_key": "k"},
            },
            {"model_name": "auto", "litellm_params": {"model": "auto", "router": auto}},
        ],
        num_retries=0,
    )


HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("share,tier", [(0.0, "weak"), (1.0, "strong")])
def test_completion_goes_to_the_decided_tier(tiers: tuple[FakeUpstream, FakeUpstream], share: float, tier: str) -> None:
    router = _router(tiers, strong_share=share)
    r = router.completion(model="auto", messages=HI)
    assert r.choices[0].message.content == f"{tier} says hi"
    assert r.llmswitch["model_group"] == tier
    route = r.llmswitch["route"]
    assert (route["tier"], route["source"]) == (tier, "classifier")
    assert (route["score"] >= route["threshold"]) == (tier == "strong")
    chunks = router.completion(model="auto", messages=HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"{tier} says hi"
    assert chunks.llmswitch["route"]["tier"] == tier


def test_the_route_keyword_overrides_and_is_not_sent(tiers: tuple[FakeUpstream, FakeUpstream]) -> None:
    router = _router(tiers, strong_share=0.0)
    r = router.completion(model="auto", messages=HI, route="strong")
    assert r.llmswitch["model_group"] == "strong"
    assert r.llmswitch["route"]["source"] == "override"
    assert b"route" not in tiers[1].requests[-1].body


def test_acompletion_and_a_cascade_in_process(tiers: tuple[FakeUpstream, FakeUpstream]) -> None:
    weak, _ = tiers
    router = _router(tiers, strong_share=0.0, cascade=True)

    async def main() -> tuple[Any, Any]:
        weak.script(Reply(text="I cannot help with that."))
        escalated = await router.acompletion(model="auto", messages=HI)
        kept = await router.acompletion(model="auto", messages=HI)
        return escalated, kept

    escalated, kept = asyncio.run(main())
    assert escalated.choices[0].message.content == "strong says hi"
    assert escalated.llmswitch["route"]["failed_checks"] == ["refusal"]
    assert kept.choices[0].message.content == "weak says hi"
    assert kept.llmswitch["route"]["tier"] == "weak"


def test_the_auto_group_is_a_model_name(tiers: tuple[FakeUpstream, FakeUpstream]) -> None:
    router = _router(tiers)
    assert router.model_names() == ["auto", "strong", "weak"]
    assert router.is_auto("auto") and not router.is_auto("weak")
    assert [t.group for t in router.deployments("auto")] == ["weak", "strong"]


@pytest.mark.parametrize(
    "auto,message",
    [
        ({"weak": "cheap"}, "router.weak names no model group 'cheap'; known: strong, weak"),
        ({"strong": "auto"}, "router.strong names another auto group 'auto'"),
    ],
)
def test_tiers_must_be_model_groups(
    tiers: tuple[FakeUpstream, FakeUpstream], auto: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _router(tiers, **auto)
