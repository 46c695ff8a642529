"""Cache keys: what changes the answer splits entries, what does not (user, stream, timeouts) shares them."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.cache.keys import entry_key, partition_of, semantic_parts
from llmswitch.dialects import anthropic_messages, gemini, openai_chat
from llmswitch.server.auth import Principal


def openai(**extra: Any) -> Any:
    body = {"model": "g", "messages": [{"role": "user", "content": "What is 2+2?"}], **extra}
    return openai_chat.decode_request(body)


def key(req: Any, partition: str = "team:t1", namespace: str = "") -> str:
    return entry_key(partition, namespace, "g", req)


@pytest.mark.parametrize(
    "extra",
    [
        {"user": "alice"},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"timeout": 30},
        {"metadata": {"trace": "x"}},
    ],
)
def test_settings_that_do_not_change_the_answer_share_the_entry(extra: dict[str, Any]) -> None:
    assert key(openai(**extra)) == key(openai())


@pytest.mark.parametrize(
    "extra",
    [
        {"temperature": 0.5},
        {"max_tokens": 10},
        {"seed": 7},
        {"stop": ["\n"]},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        {"logit_bias": {"50256": -100}},
    ],
)
def test_what_changes_the_answer_splits_entries(extra: dict[str, Any]) -> None:
    assert key(openai(**extra)) != key(openai())


def test_messages_group_partition_and_namespace_all_split() -> None:
    base = key(openai())
    other = openai_chat.decode_request({"model": "g", "messages": [{"role": "user", "content": "What is 2+3?"}]})
    assert key(other) != base
    assert entry_key("team:t1", "", "other-group", openai()) != base
    assert key(openai(), partition="team:t2") != base
    assert key(openai(), namespace="eval") != base


def test_json_key_order_does_not_split_entries() -> None:
    a = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {}}}}}
    b = {"function": {"parameters": {"properties": {"a": {}}, "type": "object"}, "name": "f"}, "type": "function"}
    assert key(openai(tools=[a])) == key(openai(tools=[b]))


def test_the_three_client_dialects_asking_the_same_thing_share_an_entry() -> None:
    o = openai_chat.decode_request({"model": "g", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64})
    a = anthropic_messages.decode_request(
        {"model": "g", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    )
    g = gemini.decode_request(
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 64}},
        model="g",
    )
    assert key(o) == key(a) == key(g)


def test_entries_belong_to_the_team_else_the_key_unless_the_namespace_is_shared() -> None:
    class Rec:
        team_id: str | None = "t1"

    team = Principal(key_hash="h1", is_master=False, record=Rec())
    solo_rec = Rec()
    solo_rec.team_id = None
    solo = Principal(key_hash="h2", is_master=False, record=solo_rec)
    assert partition_of(team, None, frozenset()) == "team:t1"
    assert partition_of(solo, None, frozenset()) == "key:h2"
    assert partition_of(solo, "docs", frozenset({"docs"})) == "shared"
    assert partition_of(solo, "private", frozenset({"docs"})) == "key:h2"


def test_the_semantic_scope_is_everything_but_the_last_user_text() -> None:
    a = openai_chat.decode_request(
        {"model": "g", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one"}]}
    )
    b = openai_chat.decode_request(
        {"model": "g", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "two"}]}
    )
    c = openai_chat.decode_request(
        {"model": "g", "messages": [{"role": "system", "content": "be long"}, {"role": "user", "content": "one"}]}
    )
    pa, pb, pc = (semantic_parts("p", "", "g", r) for r in (a, b, c))
    assert pa is not None and pb is not None and pc is not None
    assert pa[0] == pb[0] != pc[0]
    assert (pa[1], pb[1]) == ("one", "two")
    assistant_last = openai_chat.decode_request({"model": "g", "messages": [{"role": "assistant", "content": "x"}]})
    assert semantic_parts("p", "", "g", assistant_last) is None
