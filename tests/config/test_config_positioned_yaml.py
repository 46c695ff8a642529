"""The loader keeps a position for every value and key, rejects duplicates, and keeps typed-as-text scalars."""

from __future__ import annotations

import pytest

from llmswitch.config.positioned_yaml import YAMLSyntaxError, load_positioned
from llmswitch.config.problems import format_key_path

TEXT = """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, rpm: 10}
  - model_name: "b"
    litellm_params:
      model: azure/x
      api_version: 2024-02-01
      api_key: 0123
      no: off
"""


def test_every_value_and_key_has_a_position() -> None:
    doc = load_positioned(TEXT)
    marks = doc.marks
    assert marks.value_at(()) == (1, 1)
    assert marks.value_at(("model_list",)) == (2, 3)
    assert marks.value_at(("model_list", 0)) == (2, 5)
    assert marks.value_at(("model_list", 0, "litellm_params", "rpm")) == (3, 49)
    assert marks.key_at(("model_list", 1, "litellm_params", "api_key")) == (8, 7)
    assert marks.value_at(("model_list", 1, "litellm_params", "api_key")) == (8, 16)
    # A missing key is placed at its parent.
    assert marks.value_at(("model_list", 1, "litellm_params", "absent")) == (6, 7)
    assert doc.problems == []


def test_keys_are_their_source_text_and_scalars_keep_what_was_typed() -> None:
    doc = load_positioned(TEXT)
    params = doc.data["model_list"][1]["litellm_params"]
    # YAML 1.1 would make `no` a boolean key, 2024-02-01 a date and 0123 an octal 83.
    assert list(params) == ["model", "api_version", "api_key", "no"]
    assert params["api_key"] == 83
    raw = doc.marks.raw
    assert raw[("model_list", 1, "litellm_params", "api_key")] == "0123"
    assert raw[("model_list", 1, "litellm_params", "api_version")] == "2024-02-01"
    assert raw[("model_list", 1, "litellm_params", "no")] == "off"
    assert ("model_list", 1, "model_name") not in raw  # already text


def test_duplicate_keys_are_problems_at_the_second_key() -> None:
    doc = load_positioned("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert doc.data == {"a": 1, "b": {"c": 1}}
    assert [(format_key_path(path), pos, msg) for path, pos, msg in doc.problems] == [
        ("b.c", (4, 3), "duplicate key 'c' (first at line 3)"),
        ("a", (5, 1), "duplicate key 'a' (first at line 1)"),
    ]


def test_anchors_aliases_and_merge_keys() -> None:
    doc = load_positioned(
        """\
defaults: &defaults
  api_key: sk-1
  rpm: 5
model_list:
  - litellm_params:
      <<: *defaults
      rpm: 9
      model: openai/a
"""
    )
    assert doc.data["model_list"][0]["litellm_params"] == {"api_key": "sk-1", "rpm": 9, "model": "openai/a"}
    assert doc.marks.value_at(("model_list", 0, "litellm_params", "rpm")) == (7, 12)
    assert doc.marks.value_at(("model_list", 0, "litellm_params", "api_key")) == (2, 12)  # where it was written
    assert doc.problems == []


def test_structural_problems() -> None:
    doc = load_positioned("a: &x [*x]\n? [k]\n: v\nb: !include other.yaml\nc: {<<: [1]}\n")
    assert [(format_key_path(path), pos[0], msg.split(":")[0]) for path, pos, msg in doc.problems] == [
        ("a[0]", 1, "an alias refers to the mapping or list that contains it"),
        ("", 2, "a key must be a plain string, not a list or mapping"),
        ("b", 4, "cannot read this value"),
        ("c", 5, "'<<' merges a mapping (or a list of mappings) only"),
    ]


def test_syntax_errors_carry_the_position() -> None:
    with pytest.raises(YAMLSyntaxError) as info:
        load_positioned("a:\n  b: [1, 2\nc: 3\n")
    assert info.value.line == 3 and info.value.message.startswith("invalid YAML: expected ',' or ']'")


def test_empty_document() -> None:
    assert load_positioned("# nothing\n").data is None


def test_format_key_path() -> None:
    assert format_key_path(("model_list", 2, "litellm_params", "rpm")) == "model_list[2].litellm_params.rpm"
    assert format_key_path(("models", "openai/*", 0)) == 'models["openai/*"][0]'
    assert format_key_path(()) == ""
