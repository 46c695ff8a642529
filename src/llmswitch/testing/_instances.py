"""A value that fits a JSON Schema: what the fake upstream puts in tool arguments and structured answers.

    >>> instance_for({"type": "object", "properties": {"city": {"type": "string"},
    ...     "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city"]})
    {'city': 'city', 'unit': 'celsius'}

Understood: ``type`` (one or a list; ``null`` only when nothing else is allowed), ``enum``, ``const``,
``properties`` (every declared property is filled, required ones first, up to ``maxProperties``),
``required``, ``additionalProperties`` and ``minProperties``, ``items`` / ``prefixItems`` with
``minItems`` / ``maxItems`` / ``uniqueItems``, ``minLength`` / ``maxLength`` and the common string
``format`` values, ``minimum`` / ``maximum`` / ``exclusiveMinimum`` / ``exclusiveMaximum`` /
``multipleOf``, ``anyOf`` / ``oneOf`` (the first branch that is not ``null``), ``allOf`` (merged),
``$ref`` into ``$defs`` / ``definitions`` (a recursive reference ends at the shallowest value it
allows), and OpenAPI's ``nullable``. ``pattern`` is not followed. Strings name what they are for (a
property ``city`` gets ``"city"``), so a demo's answers read sensibly; the same schema always gives
the same value.
"""

from __future__ import annotations

import math
from typing import Any

# a sample per string format; ``{n}`` tells values apart where an array wants unique ones
_FORMATS = {
    "date": "2025-01-{day:02d}",
    "date-time": "2025-01-{day:02d}T12:00:00Z",
    "time": "12:00:{sec:02d}Z",
    "duration": "P{n1}D",
    "email": "user{n}@example.com",
    "idn-email": "user{n}@example.com",
    "hostname": "host{n}.example.com",
    "idn-hostname": "host{n}.example.com",
    "ipv4": "192.0.2.{octet}",
    "ipv6": "2001:db8::{octet:x}",
    "uri": "https://example.com/{n}",
    "url": "https://example.com/{n}",
    "iri": "https://example.com/{n}",
    "uri-reference": "https://example.com/{n}",
    "uuid": "123e4567-e89b-42d3-a456-{n12:012d}",
}
# how deep $ref may recurse before only what a schema requires is filled in
_MAX_DEPTH = 12


def instance_for(schema: Any, *, name: str = "") -> Any:
    """A JSON value valid for ``schema`` (a JSON Schema dict or a boolean schema).

    ``name`` is what a top-level string is called, for its sample text.
    """
    root = schema if isinstance(schema, dict) else {}
    return _Builder(root).build(schema, name, 0, 0)


class _Builder:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def resolve(self, ref: str) -> Any:
        node: Any = self.root
        if not ref.startswith("#"):
            return {}  # a remote reference: anything goes
        for token in ref[1:].lstrip("/").split("/") if ref != "#" else ():
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or token not in node:
                return {}
            node = node[token]
        return node

    def build(self, schema: Any, name: str, depth: int, variant: int) -> Any:
        if depth > 4 * _MAX_DEPTH:
            return None  # a schema that requires itself without end: no finite instance exists
        if schema is True or schema is None:
            schema = {}
        if not isinstance(schema, dict):
            return None  # `false` admits nothing; the caller asked for the impossible
        if "$ref" in schema:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return self.build(merge(self.resolve(schema["$ref"]), rest), name, depth + 1, variant)
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = merge(merged, self.deref(part))
            return self.build(merged, name, depth, variant)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                rest = {k: v for k, v in schema.items() if k != key}
                return self.build(merge(rest, self.branch(schema[key], depth)), name, depth, variant)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            values = schema["enum"]
            useful = [v for v in values if v is not None] or values
            return useful[variant % len(useful)] if useful else None
        kind = schema_type(schema)
        if kind == "object":
            return self.object(schema, depth, variant)
        if kind == "array":
            return self.array(schema, name, depth, variant)
        if kind == "string":
            return string(schema, name, variant)
        if kind in ("integer", "number"):
            return number(schema, integer=kind == "integer", variant=variant)
        if kind == "boolean":
            return variant % 2 == 0
        return None

    def deref(self, schema: Any) -> Any:
        while isinstance(schema, dict) and "$ref" in schema:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = merge(self.resolve(schema["$ref"]), rest)
        return schema

    def branch(self, branches: list[Any], depth: int) -> Any:
        """The branch to build: the first that is not ``null``; past ``_MAX_DEPTH``, ``null`` when it is one,
        which ends a recursive structure (``next: Node | None``)."""
        kinds = [schema_type(self.deref(b)) for b in branches]
        if depth > _MAX_DEPTH and "null" in kinds:
            return branches[kinds.index("null")]
        return next((b for b, k in zip(branches, kinds, strict=True) if k != "null"), branches[0] if branches else {})

    def object(self, schema: dict[str, Any], depth: int, variant: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        required = [r for r in schema.get("required") or () if isinstance(r, str)]
        shallow = depth > _MAX_DEPTH
        # declared order, as a model writes them; optional ones only while there is room
        names = [k for k in props if not shallow or k in required] + [r for r in required if r not in props]
        limit = schema.get("maxProperties")
        if isinstance(limit, int):
            optional = [k for k in names if k not in required][: max(0, limit - len(required))]
            names = [k for k in names if k in required or k in optional]
        extra = schema.get("additionalProperties", True)
        out: dict[str, Any] = {}
        for key in names:
            sub = props.get(key, extra if isinstance(extra, dict) else {})
            out[key] = self.build(sub, key, depth + 1, variant)
        wanted = schema.get("minProperties")
        n = 0
        while isinstance(wanted, int) and len(out) < wanted and extra is not False:
            n += 1
            key = f"extra{n}"
            if key not in props:
                out[key] = self.build(extra if isinstance(extra, dict) else {}, key, depth + 1, variant)
        return out

    def array(self, schema: dict[str, Any], name: str, depth: int, variant: int) -> list[Any]:
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        if isinstance(items, list):  # draft 4-2019 tuple form
            prefix, items = items, schema.get("additionalItems", {})
        low = schema.get("minItems", 0)
        high = schema.get("maxItems")
        count = max(low, len(prefix) if depth <= _MAX_DEPTH else 0, 0 if depth > _MAX_DEPTH else 1)
        if items is False:
            count = min(count, len(prefix))
        if isinstance(high, int):
            count = min(count, high)
        item_name = name[:-1] if name.endswith("s") and len(name) > 1 else name
        out = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            # with uniqueItems, each element takes the next variant so that no two are equal
            out.append(self.build(sub, item_name, depth + 1, variant + i if schema.get("uniqueItems") else variant))
        return out


def merge(a: Any, b: Any) -> dict[str, Any]:
    """Two schemas that must both hold, as one (enough of ``allOf``'s meaning to build an instance)."""
    a = a if isinstance(a, dict) else {}
    b = b if isinstance(b, dict) else {}
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and isinstance(out.get(key), dict):
            out[key] = {**out[key], **{k: merge(out[key][k], v) if k in out[key] else v for k, v in value.items()}}
        elif key == "required" and isinstance(out.get(key), list):
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties") and key in out:
            out[key] = max(out[key], value)
        elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties") and key in out:
            out[key] = min(out[key], value)
        else:
            out[key] = value
    return out


def schema_type(schema: Any) -> str:
    """The one type an instance of ``schema`` is built as; inferred from its keywords when not given."""
    if not isinstance(schema, dict):
        return "object"
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [str(k).lower() for k in kind]
        kind = next((k for k in kinds if k != "null"), "null")
    if isinstance(kind, str):
        return kind.lower()  # Gemini's schemas spell types in capitals
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema or "minItems" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def string(schema: dict[str, Any], name: str, variant: int) -> str:
    fmt = schema.get("format")
    sample = _FORMATS.get(fmt, "") if isinstance(fmt, str) else ""
    v = variant
    text = sample.format(n=v or "", n1=1 + v, n12=v, day=1 + v % 28, sec=v % 60, octet=1 + v % 254)
    if not text:
        text = name or "text"
        if variant:
            text = f"{text}{variant}"
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if len(text) < low:
        text += "x" * (low - len(text))
    if isinstance(high, int) and len(text) > high:
        # keep the variant's digits so that unique values stay unique when cut short
        tail = str(variant) if variant else ""
        text = (text[: max(0, high - len(tail))] + tail)[-high:] if high else ""
    return text


def number(schema: dict[str, Any], *, integer: bool, variant: int) -> int | float:
    """``1 + variant`` (in steps of ``multipleOf``) when the bounds allow it, else the allowed value nearest."""
    given = schema.get("multipleOf")
    step: float | None = 1 if integer else None
    if isinstance(given, int | float) and not isinstance(given, bool) and given > 0:
        step = given
    low, low_open = _bound(schema, "minimum", "exclusiveMinimum", max)
    high, high_open = _bound(schema, "maximum", "exclusiveMaximum", min)
    if step is not None:
        # count in steps: the smallest and largest multiples inside the bounds
        k_low = None if low is None else (math.floor(low / step) + 1 if low_open else math.ceil(low / step))
        k_high = None if high is None else (math.ceil(high / step) - 1 if high_open else math.floor(high / step))
        k = (1 if k_low is None else max(1, k_low)) + variant
        if k_high is not None and k > k_high:
            k = k_high - variant if k_low is None else max(k_low, k_high - variant)
        value = k * step
        return int(value) if integer or isinstance(step, int) else value
    want = 1.0 + variant
    above = low is None or want > low or (want == low and not low_open)
    below = high is None or want < high or (want == high and not high_open)
    if above and below:
        return want
    if low is not None and high is not None:
        if low == high:
            return float(low)
        return low + (high - low) / (2 + variant)  # strictly inside, and different for each variant
    if low is not None:
        return float(low + 1 + variant if low_open or variant else low)
    assert high is not None
    return float(high - 1 - variant if high_open or variant else high)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, tighter: Any) -> tuple[float | None, bool]:
    """One side's bound and whether it is open, from ``minimum`` / ``exclusiveMinimum`` (or the maxima).

    Draft 4 wrote an open bound as ``exclusiveMinimum: true`` beside ``minimum``; later drafts give
    ``exclusiveMinimum`` its own number. When both are numbers, the tighter one holds.
    """
    closed, opened = schema.get(inclusive), schema.get(exclusive)
    if opened is True and _is_number(closed):
        return closed, True
    if _is_number(opened) and _is_number(closed):
        best = tighter(closed, opened)
        return best, best == opened
    if _is_number(opened):
        return opened, True
    return (closed, False) if _is_number(closed) else (None, False)
