"""The schema -> instance generator the fake upstream fills tool arguments and structured answers with."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmswitch.testing._instances import instance_for

_VALIDATOR = jsonschema.Draft202012Validator
_FORMAT_NAMES = ["date", "date-time", "time", "email", "hostname", "ipv4", "ipv6", "uri", "uuid", "duration"]


def assert_valid(schema: dict[str, Any], instance: Any) -> None:
    _VALIDATOR.check_schema(schema)
    _VALIDATOR(schema, format_checker=_VALIDATOR.FORMAT_CHECKER).validate(instance)


# ---------------------------------------------------------------- random schemas from the supported keywords

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-50, 50), names)


@st.composite
def strings(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if draw(st.booleans()):
        schema["format"] = draw(st.sampled_from(_FORMAT_NAMES))
        return schema
    low = draw(st.none() | st.integers(0, 12))
    high = draw(st.none() | st.integers(low or 0, 20))
    if low is not None:
        schema["minLength"] = low
    if high is not None:
        schema["maxLength"] = high
    return schema


@st.composite
def numbers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["integer", "number"]))
    schema: dict[str, Any] = {"type": kind}
    step = draw(st.none() | st.sampled_from([1, 2, 3, 5, 10] if kind == "integer" else [0.5, 0.25, 2, 4]))
    low = draw(st.none() | st.integers(-100, 100))
    span = draw(st.integers(0, 50))
    if step is not None:
        schema["multipleOf"] = step
        span += int(step * 3)  # room for a multiple, even between two open bounds
    elif kind == "number" or span >= 2:
        pass
    else:
        span = 2
    high = draw(st.none() | st.just((low if low is not None else draw(st.integers(-100, 100))) + span))
    if low is not None:
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if high is not None:
        open_high = draw(st.booleans()) and (high != low or kind == "number")
        if high == low and ("exclusiveMinimum" in schema or open_high):
            high += 1 if kind == "integer" and step is None else (step or 1) * 3
        schema["exclusiveMaximum" if open_high else "maximum"] = high
    return schema


leaves = st.one_of(
    strings(),
    numbers(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(scalars, min_size=1, max_size=4, unique_by=lambda v: (type(v).__name__, v)).map(lambda v: {"enum": v}),
    scalars.map(lambda v: {"const": v}),
    st.just({}),
)


def containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def objects(draw: st.DrawFn) -> dict[str, Any]:
        props = draw(st.dictionaries(names, children, max_size=4))
        schema: dict[str, Any] = {"type": "object", "properties": props}
        schema["required"] = draw(st.lists(st.sampled_from(sorted(props)), unique=True)) if props else []
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        elif draw(st.booleans()):
            schema["additionalProperties"] = draw(children)
            schema["minProperties"] = len(props) + draw(st.integers(0, 2))
        return schema

    @st.composite
    def arrays(draw: st.DrawFn) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": draw(children)}
        low = draw(st.integers(0, 3))
        schema["minItems"] = low
        if draw(st.booleans()):
            schema["maxItems"] = low + draw(st.integers(0, 2))
        return schema

    @st.composite
    def unique_arrays(draw: st.DrawFn) -> dict[str, Any]:
        item = draw(st.one_of(strings(), st.just({"type": "integer"}), st.just({"type": "number"})))
        if item.get("maxLength") is not None:
            item["maxLength"] = max(item["maxLength"], 3)
        return {"type": "array", "items": item, "minItems": draw(st.integers(0, 4)), "uniqueItems": True}

    @st.composite
    def unions(draw: st.DrawFn) -> dict[str, Any]:
        branch = draw(children)
        key = draw(st.sampled_from(["anyOf", "oneOf"]))
        others = [{"type": "null"}] if key == "oneOf" else draw(st.lists(children, max_size=2))
        if key == "oneOf":  # exactly one branch may hold: wrap the child in an object, which null is not
            branch = {"type": "object", "properties": {"value": branch}, "required": ["value"]}
        return {key: [branch, *others] if draw(st.booleans()) else [*others, branch]}

    @st.composite
    def nullable(draw: st.DrawFn) -> dict[str, Any]:
        kind = draw(st.sampled_from(["string", "integer", "number", "boolean"]))
        return {"type": [kind, "null"] if draw(st.booleans()) else ["null", kind]}

    @st.composite
    def merged(draw: st.DrawFn) -> dict[str, Any]:
        a = {"type": "object", "properties": draw(st.dictionaries(names, children, max_size=2))}
        b = {"properties": draw(st.dictionaries(names.map("b_{}".format), children, max_size=2))}
        a["required"] = sorted(a["properties"])
        b["required"] = sorted(b["properties"])
        return {"allOf": [a, b]}

    return st.one_of(objects(), arrays(), unique_arrays(), unions(), nullable(), merged())


schemas = st.recursive(leaves, containers, max_leaves=12)


@st.composite
def with_definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A root whose property refers to a definition, as pydantic writes nested models."""
    inner = draw(schemas)
    return {
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/Item"}, "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
        "required": ["item", "items"],
        "additionalProperties": False,
        "$defs": {"Item": inner},
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(schemas, with_definitions()))
def test_the_instance_is_valid_for_any_schema_built_from_the_supported_keywords(schema: dict[str, Any]) -> None:
    assert_valid(schema, instance_for(schema))


# ---------------------------------------------------------------- chosen cases


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "text"),
        ({"type": "string", "format": "date"}, "2025-01-01"),
        ({"type": "integer", "minimum": 10}, 10),
        ({"type": "number", "exclusiveMaximum": 0}, -1.0),
        ({"type": "integer", "multipleOf": 5, "minimum": 7}, 10),
        ({"enum": [None, "red", "green"]}, "red"),
        ({"type": ["null", "boolean"]}, True),
        ({"anyOf": [{"type": "null"}, {"type": "integer"}]}, 1),
        ({"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True}, ["text", "text1"]),
    ],
)
def test_chosen_schemas_give_these_values(schema: dict[str, Any], expected: Any) -> None:
    value = instance_for(schema)
    assert value == expected and type(value) is type(expected)
    assert_valid(schema, value)


def test_a_pydantic_model_schema_with_nested_models_and_optional_fields() -> None:
    from pydantic import BaseModel

    class Address(BaseModel):
        street: str
        postcode: str | None = None

    class Person(BaseModel):
        name: str
        age: int
        tags: list[str]
        home: Address
        past: list[Address] = []

    schema = Person.model_json_schema()
    value = instance_for(schema)
    assert_valid(schema, value)
    person = Person.model_validate(value)
    assert person.name == "name" and person.home.street == "street" and person.tags == ["tag"]


def test_a_recursive_schema_ends() -> None:
    schema = {
        "$defs": {
            "Node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}
        },
        "$ref": "#/$defs/Node",
    }
    assert_valid(schema, instance_for(schema))


def test_a_gemini_schema_with_capitalised_types() -> None:
    value = instance_for({"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}, "required": ["n"]})
    assert value == {"n": 1}


def test_a_recursive_optional_field_ends_in_null() -> None:
    from pydantic import BaseModel

    class Node(BaseModel):
        value: int
        next: Node | None

    schema = Node.model_json_schema()
    value = instance_for(schema)
    assert_valid(schema, value)
    depth = 0
    while value is not None:
        value, depth = value["next"], depth + 1
    assert 1 < depth < 20


def test_properties_keep_their_declared_order_and_max_properties_keeps_the_required_ones() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}},
        "required": ["c"],
        "maxProperties": 2,
    }
    assert list(instance_for(schema)) == ["a", "c"]
