"""The SDK's semantic cache: ``llmswitch.cache = llmswitch.Cache(type="redis-semantic")`` with the local model.

The fake upstream echoes the last user message, so an answer's text tells which question it answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import llmswitch
from llmswitch.testing import FakeUpstream


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        llmswitch.cache = llmswitch.Cache(type="redis-semantic", similarity_threshold=0.9)  # type: ignore[attr-defined]
        try:
            yield fake
        finally:
            llmswitch.cache.close()  # type: ignore[attr-defined]
            llmswitch.cache = None  # type: ignore[attr-defined]


def ask(up: FakeUpstream, text: str, **kwargs: Any) -> Any:
    return llmswitch.completion(
        "openai/gpt-4o-mini", [{"role": "user", "content": text}], api_base=up.openai_base, api_key="k", **kwargs
    )


def test_a_reworded_question_is_answered_from_the_cache_whole_and_streamed(up: FakeUpstream) -> None:
    first = ask(up, "What is the boiling point of water at sea level?")
    assert "cache_hit" not in first._hidden_params
    second = ask(up, "what's the boiling point of water at sea level")
    assert second._hidden_params["cache_hit"] is True
    assert second.choices[0].message.content == first.choices[0].message.content
    chunks = list(ask(up, "What is the boiling point of water at sea level", stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == first.choices[0].message.content
    assert len(up.requests) == 1


def test_a_question_with_its_roles_swapped_is_asked_upstream(up: FakeUpstream) -> None:
    ask(up, "Is Mount Everest taller than K2?")
    swapped = ask(up, "Is K2 taller than Mount Everest?")
    assert "cache_hit" not in swapped._hidden_params
    assert swapped.choices[0].message.content == "Is K2 taller than Mount Everest?"
    assert len(up.requests) == 2


def test_the_same_question_in_another_conversation_is_asked_upstream(up: FakeUpstream) -> None:
    ask(up, "Summarize it in one sentence")
    other = llmswitch.completion(
        "openai/gpt-4o-mini",
        [
            {"role": "system", "content": "You summarize legal documents."},
            {"role": "user", "content": "summarize it in one sentence"},
        ],
        api_base=up.openai_base,
        api_key="k",
    )
    assert "cache_hit" not in other._hidden_params
    assert len(up.requests) == 2
