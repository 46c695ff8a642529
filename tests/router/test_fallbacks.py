"""Fallback chains by reason, in both shapes LiteLLM accepts."""

from __future__ import annotations

import pytest

from llmswitch.errors import (
    BadRequestError,
    ConfigError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InternalServerError,
)
from llmswitch.router.fallbacks import Fallbacks, normalize, reason_of


def test_both_shapes_normalize_to_one_dict() -> None:
    assert normalize([{"a": ["b", "c"]}, {"d": ["e"]}]) == {"a": ("b", "c"), "d": ("e",)}
    assert normalize({"a": ["b"], "d": "e"}) == {"a": ("b",), "d": ("e",)}
    assert normalize(None) == {} and normalize([]) == {}
    # the first mapping for a group wins, as the config loader warns
    assert normalize([{"a": ["b"]}, {"a": ["c"]}]) == {"a": ("b",)}


@pytest.mark.parametrize("bad", [["a"], [{"a": [1]}], [{"a": [""]}]])
def test_malformed_fallbacks_are_config_errors(bad: object) -> None:
    with pytest.raises(ConfigError):
        normalize(bad)  # type: ignore[arg-type]


def test_chains_by_reason() -> None:
    fb = Fallbacks(
        fallbacks=[{"gpt-4o": ["claude", "gemini"]}],
        context_window_fallbacks=[{"gpt-4o": ["gpt-4o-128k"]}],
        content_policy_fallbacks={"gpt-4o": ["claude"]},
        default_fallbacks=["cheap"],
    )
    assert fb.chain("gpt-4o", "error") == ("claude", "gemini")
    assert fb.chain("gpt-4o", "context") == ("gpt-4o-128k",)
    assert fb.chain("gpt-4o", "content_policy") == ("claude",)
    # default fallbacks serve every group without its own, for failures only
    assert fb.chain("other", "error") == ("cheap",)
    assert fb.chain("other", "context") == ()
    assert fb.has("gpt-4o", "context") and not fb.has("other", "content_policy")


def test_a_star_key_is_a_default_and_a_group_never_falls_back_to_itself() -> None:
    fb = Fallbacks(fallbacks=[{"*": ["backup"]}, {"backup": ["backup", "last"]}])
    assert fb.chain("anything", "error") == ("backup",)
    assert fb.chain("backup", "error") == ("last",)
    assert bool(fb) and not Fallbacks()


def test_max_fallbacks_bounds_the_chain() -> None:
    fb = Fallbacks(fallbacks={"a": ["b", "c", "d", "e"]}, max_fallbacks=2)
    assert fb.chain("a", "error") == ("b", "c")


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ContextWindowExceededError("long", status_code=400), "context"),
        (ContentPolicyViolationError("no", status_code=400), "content_policy"),
        (BadRequestError("bad", status_code=400), "error"),
        (InternalServerError("boom", status_code=500), "error"),
    ],
)
def test_reason_of(exc: Exception, reason: str) -> None:
    assert reason_of(exc) == reason
