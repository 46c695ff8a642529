"""``map_messages_in`` reads a plain text message (a role, a text, perhaps a name) without the general
reading; both must make the same IR, and the same error, of every message. The general reading is
reached here through an SDK-style object (``model_dump``), which the plain branch never takes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch.dialects.openai_messages import map_messages_in
from llmswitch.errors import BadRequestError


class Dumped:
    """A message as an SDK result object hands it over: only ``model_dump`` gives its fields."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    def model_dump(self) -> dict[str, Any]:
        return dict(self._fields)


def read(messages: list[Any]) -> object:
    try:
        return map_messages_in(messages)
    except BadRequestError as exc:
        return ("refused", str(exc))


_roles = st.one_of(
    st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "robot", ""]),
    st.none(),
    st.integers(),
    st.lists(st.text(max_size=2), max_size=1),
)
_texts = st.one_of(
    st.text(max_size=8),
    st.none(),
    st.integers(),
    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=4)}), max_size=2),
)
_message = st.fixed_dictionaries(
    {},
    optional={
        "role": _roles,
        "content": _texts,
        "name": st.one_of(st.text(max_size=4), st.none()),
        "tool_call_id": st.text(max_size=4),
        "refusal": st.text(max_size=4),
        "reasoning_content": st.text(max_size=4),
    },
)


@settings(max_examples=500)
@given(messages=st.lists(_message, min_size=1, max_size=4))
def test_plain_messages_read_as_the_general_reading_reads_them(messages: list[dict[str, Any]]) -> None:
    assert read(messages) == read([Dumped(m) for m in messages])


def test_a_conversation_of_text_messages_keeps_roles_texts_and_names() -> None:
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi", "name": "ann"},
        {"role": "assistant", "content": ""},
        {"role": "developer", "content": "Use metric units."},
    ]
    got = map_messages_in(conversation)
    assert [(m.role, m.text, m.name, len(m.content)) for m in got] == [
        ("system", "Be brief.", None, 1),
        ("user", "Hi", "ann", 1),
        ("assistant", "", None, 0),
        ("developer", "Use metric units.", None, 1),
    ]
    assert got == map_messages_in([Dumped(m) for m in conversation])


def test_an_unhashable_or_unknown_role_is_refused_naming_the_message() -> None:
    for role in (["user"], {"a": 1}, "robot", None):
        refused = read([{"role": "user", "content": "ok"}, {"role": role, "content": "hi"}])
        assert isinstance(refused, tuple) and "messages[1].role" in refused[1], refused


_EXTRA_FIELDS: dict[str, Any] = {
    "refusal": "I cannot help with that.",
    "reasoning_content": "Thinking it over.",
    "thinking_blocks": [{"type": "thinking", "thinking": "Hmm.", "signature": "sig"}],
    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    "function_call": {"name": "f", "arguments": "{}"},
    "audio": {"id": "audio_1"},
    "provider_specific_fields": {"blocks": [{"provider": "anthropic", "type": "server_tool_use"}]},
    "tool_call_id": "call_1",
    "is_error": True,
    "cache_control": {"type": "ephemeral"},
}


def test_a_text_message_with_any_other_field_is_read_in_full() -> None:
    for role in ("system", "developer", "user", "assistant", "tool", "function"):
        for field, value in _EXTRA_FIELDS.items():
            for text in ("Hello", ""):
                message = {"role": role, "content": text, field: value}
                assert read([message]) == read([Dumped(message)]), (role, field, text)
