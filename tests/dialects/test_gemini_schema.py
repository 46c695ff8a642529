"""JSON Schema -> Gemini's Schema subset (and back): what callers write must reach Gemini in a form it takes."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmswitch.dialects.gemini_schema import from_gemini, to_gemini

# every key Gemini's (AI Studio v1beta) Schema object accepts
GEMINI_KEYS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
}
GEMINI_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"}


def assert_gemini_subset(s: Any, where: str = "$") -> None:
    """Fail if a schema (recursively) uses anything Gemini would reject."""
    assert isinstance(s, dict), where
    assert set(s) <= GEMINI_KEYS, f"{where}: {set(s) - GEMINI_KEYS}"
    if "type" in s:
        assert s["type"] in GEMINI_TYPES, f"{where}.type = {s['type']!r}"
    if "enum" in s:
        assert all(isinstance(v, str) for v in s["enum"]), where
    for name, p in (s.get("properties") or {}).items():
        assert_gemini_subset(p, f"{where}.properties.{name}")
    for r in s.get("required") or []:
        assert r in (s.get("properties") or {}), f"{where}.required names {r!r}"
    if "items" in s:
        assert_gemini_subset(s["items"], f"{where}.items")
    for i, v in enumerate(s.get("anyOf") or []):
        assert_gemini_subset(v, f"{where}.anyOf[{i}]")


CASES = [
    ("plain types", {"type": "string"}, {"type": "STRING"}),
    (
        "upper-case types pass",
        {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
        {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
    ),
    ("type list with null", {"type": ["integer", "null"]}, {"type": "INTEGER", "nullable": True}),
    ("null last in anyOf", {"anyOf": [{"type": "string"}, {"type": "null"}]}, {"type": "STRING", "nullable": True}),
    ("null first in oneOf", {"oneOf": [{"type": "null"}, {"type": "number"}]}, {"type": "NUMBER", "nullable": True}),
    (
        "description of the union kept",
        {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "d", "default": None, "title": "T"},
        {"type": "STRING", "description": "d", "default": None, "title": "T", "nullable": True},
    ),
    (
        "multi-type list becomes anyOf",
        {"type": ["string", "integer", "null"]},
        {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}], "nullable": True},
    ),
    ("const becomes enum", {"const": "x"}, {"enum": ["x"], "type": "STRING"}),
    ("enum with null", {"enum": ["a", "b", None]}, {"enum": ["a", "b"], "type": "STRING", "nullable": True}),
    (
        "non-string enum moves into the description",
        {"type": "integer", "enum": [1, 2], "description": "Level."},
        {"type": "INTEGER", "description": "Level. Allowed values: 1, 2."},
    ),
    (
        "dropped keywords",
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "x",
            "type": "object",
            "additionalProperties": False,
            "properties": {"a": {"type": "string", "examples": ["q"], "readOnly": True, "$comment": "c"}},
            "patternProperties": {"^x": {}},
            "unevaluatedProperties": False,
        },
        {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
    ),
    (
        "formats Gemini honours are kept, others dropped",
        {
            "type": "object",
            "properties": {
                "when": {"type": "string", "format": "date-time"},
                "mail": {"type": "string", "format": "email"},
                "n": {"type": "integer", "format": "int64"},
                "x": {"type": "number", "format": "double"},
                "bad": {"type": "integer", "format": "double"},
            },
        },
        {
            "type": "OBJECT",
            "properties": {
                "when": {"type": "STRING", "format": "date-time"},
                "mail": {"type": "STRING"},
                "n": {"type": "INTEGER", "format": "int64"},
                "x": {"type": "NUMBER", "format": "double"},
                "bad": {"type": "INTEGER"},
            },
        },
    ),
    (
        "constraints kept",
        {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^a"},
            "minItems": 1,
            "maxItems": 3,
        },
        {
            "type": "ARRAY",
            "items": {"type": "STRING", "minLength": 1, "maxLength": 5, "pattern": "^a"},
            "minItems": 1,
            "maxItems": 3,
        },
    ),
    (
        "bounds kept, exclusive ones dropped",
        {"type": "number", "minimum": 0, "maximum": 1.5, "exclusiveMaximum": 2},
        {"type": "NUMBER", "minimum": 0, "maximum": 1.5},
    ),
    (
        "required only names declared properties",
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "ghost"]},
        {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]},
    ),
    ("type inferred from properties", {"properties": {"a": {}}}, {"type": "OBJECT", "properties": {"a": {}}}),
    ("type inferred from items", {"items": {"type": "boolean"}}, {"type": "ARRAY", "items": {"type": "BOOLEAN"}}),
    (
        "tuple items become anyOf",
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
        {"type": "ARRAY", "items": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}},
    ),
    (
        "allOf merged",
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "integer"}}},
            ]
        },
        {"type": "OBJECT", "properties": {"a": {"type": "STRING"}, "b": {"type": "INTEGER"}}, "required": ["a"]},
    ),
    (
        "boolean schema means any value",
        {"type": "object", "properties": {"a": True}},
        {"type": "OBJECT", "properties": {"a": {}}},
    ),
    ("pure null", {"type": "null"}, {"nullable": True}),
]


@pytest.mark.parametrize(("case", "schema", "want"), CASES, ids=[c[0] for c in CASES])
def test_to_gemini(case: str, schema: dict[str, Any], want: dict[str, Any]) -> None:
    got = to_gemini(schema)
    assert got == want
    assert_gemini_subset(got)


PYDANTIC_NESTED = {
    "$defs": {
        "Address": {
            "properties": {"city": {"title": "City", "type": "string"}, "geo": {"$ref": "#/$defs/Geo"}},
            "required": ["city"],
            "title": "Address",
            "type": "object",
        },
        "Geo": {"properties": {"lat": {"type": "number"}}, "title": "Geo", "type": "object"},
    },
    "properties": {
        "home": {"$ref": "#/$defs/Address"},
        "work": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}], "default": None},
        "where": {"allOf": [{"$ref": "#/$defs/Geo"}], "description": "Described ref."},
    },
    "required": ["home"],
    "title": "Person",
    "type": "object",
}


def test_refs_inlined_through_nested_defs() -> None:
    got = to_gemini(PYDANTIC_NESTED)
    assert_gemini_subset(got)
    address = {
        "type": "OBJECT",
        "title": "Address",
        "properties": {
            "city": {"type": "STRING", "title": "City"},
            "geo": {"type": "OBJECT", "title": "Geo", "properties": {"lat": {"type": "NUMBER"}}},
        },
        "required": ["city"],
    }
    assert got["properties"]["home"] == address
    assert got["properties"]["work"] == {**address, "default": None, "nullable": True}
    assert got["properties"]["where"] == {
        "type": "OBJECT",
        "title": "Geo",
        "description": "Described ref.",
        "properties": {"lat": {"type": "NUMBER"}},
    }
    assert "$defs" not in got


def test_definitions_and_ref_siblings() -> None:
    schema = {
        "definitions": {"Color": {"type": "string", "enum": ["red", "blue"]}},
        "type": "object",
        "properties": {"c": {"$ref": "#/definitions/Color", "description": "which"}},
    }
    assert to_gemini(schema)["properties"]["c"] == {"type": "STRING", "enum": ["red", "blue"], "description": "which"}


def test_recursion_is_cut_after_one_expansion() -> None:
    tree = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
            }
        },
        "$ref": "#/$defs/Node",
    }
    got = to_gemini(tree)
    assert_gemini_subset(got)
    assert got["properties"]["value"] == {"type": "STRING"}
    assert got["properties"]["children"]["items"] == {"type": "OBJECT"}


def test_self_reference_to_root_terminates() -> None:
    linked = {"type": "object", "properties": {"next": {"$ref": "#"}, "v": {"type": "integer"}}}
    got = to_gemini(linked)
    assert_gemini_subset(got)
    assert got["properties"]["next"]["properties"]["next"] == {"type": "OBJECT"}


def test_unresolvable_ref_becomes_object() -> None:
    assert to_gemini({"$ref": "https://example.com/s.json", "description": "remote"}) == {
        "type": "OBJECT",
        "description": "remote",
    }


def test_ordering_follows_the_callers_key_order() -> None:
    schema = {
        "type": "object",
        "properties": {"z": {"type": "string"}, "a": {"type": "object", "properties": {"y": {}, "b": {}}}},
    }
    got = to_gemini(schema, ordering=True)
    assert got["propertyOrdering"] == ["z", "a"]
    assert got["properties"]["a"]["propertyOrdering"] == ["y", "b"]
    assert "propertyOrdering" not in to_gemini(schema)


FROM_CASES = [
    ({"type": "STRING", "nullable": True}, {"type": ["string", "null"]}),
    ({"type": "string", "format": "enum", "enum": ["a"]}, {"type": "string", "enum": ["a"]}),
    ({"type": "INTEGER", "min_items": "2", "minimum": "1"}, {"type": "integer", "minItems": 2, "minimum": 1}),
    (
        {
            "type": "OBJECT",
            "properties": {"b": {"type": "NUMBER"}, "a": {"type": "BOOLEAN"}},
            "property_ordering": ["a", "b"],
        },
        {"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "number"}}},
    ),
    (
        {"any_of": [{"type": "STRING"}, {"type": "INTEGER"}], "nullable": True},
        {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
    ),
    (
        {"type": "ARRAY", "items": {"type": "STRING"}, "description": "d"},
        {"type": "array", "items": {"type": "string"}, "description": "d"},
    ),
]


@pytest.mark.parametrize(("gemini", "want"), FROM_CASES)
def test_from_gemini(gemini: dict[str, Any], want: dict[str, Any]) -> None:
    got = from_gemini(gemini)
    assert got == want
    assert list(got.get("properties", {})) == list(want.get("properties", {}))


# ---------------------------------------------------------------- properties

names = st.text(string.ascii_lowercase + "_", min_size=1, max_size=6)
scalar = st.sampled_from(["string", "integer", "number", "boolean"]).map(lambda t: {"type": t})


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda i: {"type": "array", "items": i}, children),
        st.builds(
            lambda props, req: {"type": "object", "properties": props, "required": [n for n in props if n in req]},
            st.dictionaries(names, children, min_size=1, max_size=3),
            st.sets(names),
        ),
        st.builds(lambda s: {"anyOf": [s, {"type": "null"}]}, children),
        st.builds(lambda s: {**s, "description": "d", "title": "t", "additionalProperties": False}, children),
        st.builds(lambda vals: {"type": "string", "enum": sorted(vals)}, st.sets(names, min_size=1, max_size=3)),
    )


json_schemas = st.recursive(scalar, _extend, max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(json_schemas)
def test_any_schema_lands_in_the_subset(schema: dict[str, Any]) -> None:
    assert_gemini_subset(to_gemini(schema))
    assert_gemini_subset(to_gemini(schema, ordering=True))


@settings(max_examples=200, deadline=None)
@given(json_schemas)
def test_gemini_schema_round_trips_through_json_schema(schema: dict[str, Any]) -> None:
    g = to_gemini(schema, ordering=True)
    assert to_gemini(from_gemini(g), ordering=True) == g
