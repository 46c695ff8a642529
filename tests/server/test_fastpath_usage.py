"""The fast path's usage reader against the dialect's: ``fastpath.usage_of_body`` reads OpenAI's own usage
shape through typed structs and everything else through ``openai_chat.map_usage_in``; both must give the
same usage for every body, whatever a provider puts in it."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch.dialects.openai_chat import map_usage_in
from llmswitch.server.fastpath import usage_of_body


def reference(body: bytes) -> Any:
    """What the dialect makes of the body's usage: the generic JSON object through ``map_usage_in``."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    u = doc.get("usage")
    if u is not None and not isinstance(u, dict):
        return None
    return map_usage_in(u) if u else None


_DETAIL_NAMES = [
    "cached_tokens",
    "cache_creation_tokens",
    "audio_tokens",
    "reasoning_tokens",
    "accepted_prediction_tokens",
    "rejected_prediction_tokens",
    "text_tokens",
    "image_tokens",
]


def _usages(counts: st.SearchStrategy[Any], details: st.SearchStrategy[Any], **more: st.SearchStrategy[Any]) -> Any:
    """Usage objects with any of OpenAI's fields (and ``more``), counts and details drawn as given."""
    fields = ("prompt_tokens", "completion_tokens", "total_tokens")
    optional = dict.fromkeys(fields, counts)
    optional.update(prompt_tokens_details=details, completion_tokens_details=details, **more)
    return st.fixed_dictionaries({}, optional=optional)


# OpenAI's own shape (integers or null, its own fields), which the typed reader takes ...
_ints = st.one_of(st.integers(min_value=0, max_value=5000), st.integers(min_value=-5, max_value=2**70), st.none())
_known = _usages(_ints, st.one_of(st.none(), st.dictionaries(st.sampled_from(_DETAIL_NAMES), _ints, max_size=5)))
# ... and what other providers send, which it hands to the dialect's reader
_counts = st.one_of(_ints, st.floats(min_value=0, max_value=1e6, allow_nan=False), st.booleans(), st.text(max_size=3))
_wild = _usages(
    _counts,
    st.one_of(
        st.none(),
        st.integers(),
        st.dictionaries(st.sampled_from([*_DETAIL_NAMES, "surprise"]), _counts, max_size=5),
    ),
    prompt_cache_hit_tokens=_counts,
    server_tool_use=st.dictionaries(st.sampled_from(["web_search_requests", "other"]), _counts, max_size=2),
)
_usage = st.one_of(st.none(), st.integers(), _known, _wild)


@settings(max_examples=600)
@given(usage=_usage, absent=st.booleans())
def test_the_typed_reader_and_the_dialect_agree_on_every_usage(usage: Any, absent: bool) -> None:
    doc: dict[str, Any] = {"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"content": "hi"}}]}
    if not absent:
        doc["usage"] = usage
    body = msgspec.json.encode(doc)
    expected: object
    got: object
    try:
        expected = reference(body)
    except (AttributeError, TypeError, ValueError) as exc:  # a shape the dialect itself cannot read
        expected = type(exc)
    try:
        got = usage_of_body(body)
    except (AttributeError, TypeError, ValueError) as exc:
        got = type(exc)
    assert got == expected


def test_openai_usage_with_reasoning_outside_completion_is_normalised_as_the_dialect_does() -> None:
    # xAI counts reasoning outside completion_tokens; the total says so
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 45,
        "completion_tokens_details": {"reasoning_tokens": 30},
        "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 2},
    }
    got = usage_of_body(msgspec.json.encode({"usage": usage}))
    assert got is not None
    assert (got.input_tokens, got.output_tokens, got.reasoning_tokens, got.reasoning_reported) == (10, 35, 30, True)
    assert (got.cache_read_tokens, got.input_audio_tokens) == (4, 2)
    assert got == map_usage_in(usage)


def test_an_empty_usage_object_is_no_usage_and_a_null_count_is_a_usage_of_zero() -> None:
    assert usage_of_body(b'{"usage": {}}') is None
    assert usage_of_body(b'{"usage": null}') is None
    assert usage_of_body(b'{"choices": []}') is None
    assert usage_of_body(b"not json") is None
    zero = usage_of_body(b'{"usage": {"prompt_tokens": null}}')
    assert zero is not None and zero.input_tokens == 0 and zero == map_usage_in({"prompt_tokens": None})
    # a vendor's own field goes through the dialect's reader, and is read
    deepseek = usage_of_body(b'{"usage": {"prompt_tokens": 9, "prompt_cache_hit_tokens": 7}}')
    assert deepseek is not None and deepseek.cache_read_tokens == 7
