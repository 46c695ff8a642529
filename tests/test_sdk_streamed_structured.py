"""Streamed structured outputs in the SDK: ``completion(stream=True, response_format=Story)`` gives every
chunk a ``parsed`` value that grows as the JSON arrives (never raising on JSON that is not finished) and
the validated object on the chunk that finishes it, from every provider (native structured outputs, or
Anthropic's forced-tool emulation streamed as content)."""

from __future__ import annotations

from collections.abc import Iterator

import pydantic
import pytest

import llmswitch
from llmswitch.structured import PartialParser
from llmswitch.testing import FakeUpstream, Reply


class Story(pydantic.BaseModel):
    title: str
    moral: str
    pages: int


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


MODELS = ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-20250514", "gemini/gemini-2.5-flash"]


@pytest.mark.parametrize("model", MODELS)
def test_each_chunk_carries_the_story_so_far_and_the_last_the_validated_story(up: FakeUpstream, model: str) -> None:
    story = '{"title": "The Fox and the Grapes", "moral": "Be kind", "pages": 3}'
    up.script(Reply(text=story, chunk_size=4))  # four characters a chunk
    base = {"openai": up.openai_base, "anthropic": up.anthropic_base, "gemini": up.gemini_base}[model.split("/")[0]]
    chunks = list(
        llmswitch.completion(
            model,
            [{"role": "user", "content": "A story"}],
            response_format=Story,
            stream=True,
            api_base=base,
            api_key="k",
            num_retries=0,
        )
    )
    parsed = [c.parsed for c in chunks if c.choices and getattr(c, "parsed", None) is not None]
    assert len(parsed) > 2  # it grew as it arrived
    final = parsed[-1]
    assert isinstance(final, Story)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert final == Story.model_validate_json(text)
    # a partial value is a Story whose fields fill in as they arrive
    partial = [p for p in parsed[:-1] if isinstance(p, Story)]
    assert partial and all(isinstance(p, Story) for p in partial)


def test_a_partial_parse_never_raises_on_unfinished_json() -> None:
    p = PartialParser(Story)
    doc = '{"title": "The \\u00e9 Fox", "moral": "Be kind", "pages": 12}'
    seen = [p.feed(ch) for ch in doc]  # one character at a time, escapes and numbers cut mid-way
    assert seen[0] == Story.model_construct()
    assert seen[-1] == Story(title="The é Fox", moral="Be kind", pages=12)
    assert any(getattr(s, "title", "") == "The é F" for s in seen)


def test_a_reply_that_is_not_the_schema_raises_at_the_end(up: FakeUpstream) -> None:
    up.script(Reply(text='{"title": "no moral"}'))
    it = llmswitch.completion(
        "openai/gpt-4o-mini", [{"role": "user", "content": "A story"}], response_format=Story, stream=True,
        api_base=up.openai_base, api_key="k", num_retries=0,
    )  # fmt: skip
    with pytest.raises(llmswitch.ResponseParseError):
        list(it)


def test_anthropic_s_forced_tool_emulation_streams_as_content(up: FakeUpstream) -> None:
    from llmswitch.dialects.anthropic_content import RESPONSE_TOOL

    story = {"title": "The Ant", "moral": "Work first", "pages": 2}
    up.script(Reply(tool_calls=[(RESPONSE_TOOL, story)], chunk_size=3))
    chunks = list(
        llmswitch.completion(
            "anthropic/claude-3-5-sonnet-20241022",
            [{"role": "user", "content": "A story"}],
            response_format=Story,
            stream=True,
            api_base=up.anthropic_base,
            api_key="k",
            num_retries=0,
        )
    )
    assert up.requests[0].json["tool_choice"] == {"type": "tool", "name": RESPONSE_TOOL}  # emulated, not native
    parsed = [c.parsed for c in chunks if c.choices and getattr(c, "parsed", None) is not None]
    assert parsed[-1] == Story(**story)
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)  # content, not a tool call
