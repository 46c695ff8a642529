"""How a requested model name finds its deployments: aliases, exact names, then the most specific pattern."""

from __future__ import annotations

import pytest

from llmswitch.config import ANY_PROVIDER, Deployment, GatewayConfig, RouterSettings
from llmswitch.config.model import frozen_mapping


def dep(name: str, provider: str, model: str, id: str | None = None) -> Deployment:
    return Deployment(id=id or f"{name}->{provider}/{model}", model_name=name, provider=provider, model=model)


@pytest.mark.parametrize(
    ("name", "provider", "model", "requested", "expected"),
    [
        ("gpt-4o", "openai", "gpt-4o", "gpt-4o", "gpt-4o"),
        ("gpt-4o", "openai", "gpt-4o", "gpt-4o-mini", None),
        ("openai/*", "openai", "*", "openai/gpt-4o", "gpt-4o"),
        ("openai/*", "openai", "*", "openai/", None),  # `*` matches at least one character
        ("openai/*", "openai", "*", "anthropic/claude", None),
        ("*", "openai", "*", "gpt-4o", "gpt-4o"),
        ("*", "openai", "*", "openai/gpt-4o", "gpt-4o"),  # the provider prefix is not sent upstream
        ("*", ANY_PROVIDER, "*", "groq/llama3", "groq/llama3"),  # resolved per request with resolve_model
        ("fo::*:static::*", "openai", "fo::*:static::*", "fo::hi::static::hi", "fo::hi::static::hi"),
        ("team-*", "azure", "prod-*", "team-eu", "prod-eu"),
        ("gpt-*", "openai", "gpt-4o", "gpt-anything", "gpt-4o"),  # a pattern may serve one fixed model
    ],
)
def test_model_for(name: str, provider: str, model: str, requested: str, expected: str | None) -> None:
    assert dep(name, provider, model).model_for(requested) == expected


def test_deployments_for_prefers_exact_then_most_specific_pattern_and_follows_aliases() -> None:
    cfg = GatewayConfig(
        deployments=(
            dep("*", ANY_PROVIDER, "*", "catch-all"),
            dep("openai/*", "openai", "*", "openai-any"),
            dep("openai/gpt-4o*", "azure", "gpt4o-deployment*", "azure-4o"),
            dep("openai/gpt-4o", "openai", "gpt-4o", "exact-1"),
            dep("openai/gpt-4o", "azure", "eu-4o", "exact-2"),
        ),
        router=RouterSettings(model_group_alias=frozen_mapping({"best": "openai/gpt-4o"})),
    )
    ids = lambda requested: [(d.id, m) for d, m in cfg.deployments_for(requested)]  # noqa: E731
    assert ids("openai/gpt-4o") == [("exact-1", "gpt-4o"), ("exact-2", "eu-4o")]
    assert ids("best") == ids("openai/gpt-4o")
    assert ids("openai/gpt-4o-mini") == [("azure-4o", "gpt4o-deployment-mini")]
    assert ids("openai/o3") == [("openai-any", "o3")]
    assert ids("mistral/large") == [("catch-all", "mistral/large")]
    assert list(cfg.groups) == ["*", "openai/*", "openai/gpt-4o*", "openai/gpt-4o"]


def test_nothing_serves_an_unknown_name_without_a_catch_all() -> None:
    cfg = GatewayConfig(deployments=(dep("gpt-4o", "openai", "gpt-4o"),))
    assert cfg.deployments_for("claude") == ()


def test_deployments_are_hashable_and_immutable() -> None:
    d = dep("a", "openai", "x")
    assert {d: 1}[d] == 1
    with pytest.raises(AttributeError):
        d.model = "y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        d.params["k"] = 1  # type: ignore[index]
