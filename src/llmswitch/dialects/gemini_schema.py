"""JSON Schema <-> the OpenAPI-subset ``Schema`` that Gemini takes for tools and structured output.

Callers write ordinary JSON Schema (pydantic's output, MCP tool schemas, OpenAI strict schemas);
Gemini's ``generateContent`` only accepts a subset and rejects the rest with a 400. :func:`to_gemini`
rewrites a schema into that subset so callers never have to know:

- ``$ref`` into ``$defs`` / ``definitions`` is inlined; a recursive reference is cut off after one
  expansion into a plain ``{"type": "OBJECT"}`` (Gemini schemas cannot be recursive).
- nullable unions become ``nullable: true``: ``type: [X, "null"]``, ``anyOf/oneOf: [X, {type: null}]``,
  ``enum`` containing ``null``.
- ``const`` becomes a one-value ``enum``; ``oneOf`` is read as ``anyOf``; ``allOf`` is merged.
- types are written the way the API's enum spells them (``STRING``, ``OBJECT`` …); ``required``
  only names declared properties; string ``format`` is kept only where Gemini honours it
  (``enum``, ``date-time``; ``float``/``double``; ``int32``/``int64``).
- a non-string ``enum`` (Gemini's enum holds strings only) moves into the description.
- keywords outside the subset are dropped: ``additionalProperties``, ``$schema``, ``$id``,
  ``examples``, ``patternProperties``, ``exclusiveMinimum``, ``readOnly``, ``strict`` …

    >>> to_gemini({"type": ["string", "null"], "title": "Name"})
    {'type': 'STRING', 'nullable': True, 'title': 'Name'}

:func:`from_gemini` reads a Gemini schema (camelCase or the SDK's snake_case, upper or lower case
types) back into JSON Schema, for the gateway's Gemini routes.
"""

from __future__ import annotations

from typing import Any

_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
# formats the Gemini API honours, by type; any other value is rejected on AI Studio
_FORMATS = {"STRING": {"enum", "date-time"}, "NUMBER": {"float", "double"}, "INTEGER": {"int32", "int64"}}
# kept as they are (after the structural rewrites); everything not named here or below is dropped
_PLAIN = ("title", "description", "default", "pattern")
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
_BOUNDS = ("minimum", "maximum")
_SNAKE = {
    "anyOf": "any_of",
    "propertyOrdering": "property_ordering",
    "minItems": "min_items",
    "maxItems": "max_items",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minProperties": "min_properties",
    "maxProperties": "max_properties",
}


def to_gemini(schema: dict[str, Any], *, ordering: bool = False) -> dict[str, Any]:
    """A JSON Schema rewritten into Gemini's Schema subset.

    ``ordering=True`` adds ``propertyOrdering`` (the caller's key order) to every object, which
    Gemini's structured output follows; function parameters do not need it.
    """
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        if isinstance(schema.get(key), dict):
            defs.update(schema[key])
    return _Converter(schema, defs, ordering).convert(schema, ())


class _Converter:
    def __init__(self, root: dict[str, Any], defs: dict[str, Any], ordering: bool) -> None:
        self.root = root
        self.defs = defs
        self.ordering = ordering

    def resolve(self, ref: str) -> dict[str, Any] | None:
        if ref == "#":
            return self.root
        if not ref.startswith("#/"):
            return None  # a remote reference: nothing to inline
        node: Any = self.root
        for token in ref[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or token not in node:
                return self.defs.get(ref.rsplit("/", 1)[-1])
            node = node[token]
        return node if isinstance(node, dict) else None

    def convert(self, s: Any, stack: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(s, dict):
            return {}  # ``true`` / ``{}``: any value
        s = self._merge_all_of(s, stack)
        ref = s.get("$ref")
        if isinstance(ref, str):
            siblings = {k: v for k, v in s.items() if k != "$ref"}
            target = self.resolve(ref)
            if target is None or ref in stack:
                # recursion (or an unresolvable ref): stop at a generic object rather than loop
                out: dict[str, Any] = {"type": "OBJECT"}
                desc = siblings.get("description") or (target or {}).get("description")
                if isinstance(desc, str):
                    out["description"] = desc
                return out
            return self.convert({**target, **siblings}, (*stack, ref))
        nullable = bool(s.get("nullable"))
        variants = s.get("anyOf", s.get("oneOf"))
        types = s.get("type")
        if isinstance(types, list):
            nullable = nullable or "null" in types
            real = [t for t in types if t != "null"]
            if len(real) > 1 and variants is None:
                variants = [{"type": t} for t in real]
                types = None
            else:
                types = real[0] if real else None
        if isinstance(types, str) and types.lower() == "null":
            nullable, types = True, None
        out = {}
        if isinstance(variants, list):
            kept = [v for v in variants if not _is_null(v)]
            nullable = nullable or len(kept) < len(variants)
            if len(kept) == 1:
                inner = self.convert(kept[0], stack)
                for key in ("title", "description", "default"):
                    if key in s:
                        inner[key] = s[key]
                if nullable:
                    inner["nullable"] = True
                return inner
            if kept:
                out["anyOf"] = [self.convert(v, stack) for v in kept]
        if isinstance(types, str) and types.lower() in _TYPES:
            out["type"] = types.upper()
        elif "properties" in s:
            out["type"] = "OBJECT"
        elif "items" in s or "prefixItems" in s:
            out["type"] = "ARRAY"
        if "const" in s:
            s = {**s, "enum": [s["const"]]}
        self._enum(s, out)
        if nullable or out.pop("nullable", False):
            out["nullable"] = True
        fmt = s.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
            out["format"] = fmt
        for key in _PLAIN:
            if key in s and key not in out:
                out[key] = s[key]
        for key in _COUNTS:
            if isinstance(s.get(key), int) and not isinstance(s[key], bool):
                out[key] = s[key]
        for key in _BOUNDS:
            if isinstance(s.get(key), int | float) and not isinstance(s[key], bool):
                out[key] = s[key]
        self._object(s, out, stack)
        self._array(s, out, stack)
        return out

    def _merge_all_of(self, s: dict[str, Any], stack: tuple[str, ...]) -> dict[str, Any]:
        """``allOf`` folded into one schema (pydantic wraps a described ``$ref`` in a one-item allOf)."""
        parts = s.get("allOf")
        if not isinstance(parts, list) or not parts:
            return s
        merged: dict[str, Any] = {k: v for k, v in s.items() if k != "allOf"}
        if len(parts) == 1 and isinstance(parts[0], dict) and set(parts[0]) == {"$ref"} and "$ref" not in merged:
            return {**merged, "$ref": parts[0]["$ref"]}  # converted (with its recursion guard) by the caller
        for p in parts:
            ref = p.get("$ref") if isinstance(p, dict) else None
            if isinstance(ref, str) and ref not in stack:
                p = {**(self.resolve(ref) or {}), **{k: v for k, v in p.items() if k != "$ref"}}
            if not isinstance(p, dict):
                continue
            for k, v in p.items():
                if k == "properties" and isinstance(v, dict):
                    merged["properties"] = {**merged.get("properties", {}), **v}
                elif k == "required" and isinstance(v, list):
                    merged["required"] = [*merged.get("required", []), *v]
                elif k != "$ref":
                    merged.setdefault(k, v)
        return merged

    def _enum(self, s: dict[str, Any], out: dict[str, Any]) -> None:
        values = s.get("enum")
        if not isinstance(values, list):
            return
        if None in values:
            out["nullable"] = True
            values = [v for v in values if v is not None]
        if values and all(isinstance(v, str) for v in values):
            out["enum"] = values
            out.setdefault("type", "STRING")
        elif values:
            # Gemini enums hold strings only; saying the allowed values keeps the constraint visible
            allowed = "Allowed values: " + ", ".join(_plain(v) for v in values) + "."
            desc = s.get("description")
            out["description"] = f"{desc} {allowed}" if isinstance(desc, str) and desc else allowed

    def _object(self, s: dict[str, Any], out: dict[str, Any], stack: tuple[str, ...]) -> None:
        props = s.get("properties")
        if not isinstance(props, dict):
            return
        out["properties"] = {name: self.convert(p, stack) for name, p in props.items()}
        required = s.get("required")
        if isinstance(required, list):
            names = [r for r in required if isinstance(r, str) and r in props]
            if names:
                out["required"] = names
        order = s.get("propertyOrdering")
        if isinstance(order, list) and all(isinstance(n, str) for n in order):
            out["propertyOrdering"] = order
        elif self.ordering and props:
            out["propertyOrdering"] = list(props)

    def _array(self, s: dict[str, Any], out: dict[str, Any], stack: tuple[str, ...]) -> None:
        items = s.get("items")
        if isinstance(items, list) or (items is None and isinstance(s.get("prefixItems"), list)):
            # tuple validation has no counterpart: accept any of the positions' schemas
            tuple_items = [self.convert(i, stack) for i in (items if isinstance(items, list) else s["prefixItems"])]
            out["items"] = tuple_items[0] if len(tuple_items) == 1 else {"anyOf": tuple_items}
        elif isinstance(items, dict):
            out["items"] = self.convert(items, stack)


def _is_null(v: Any) -> bool:
    return isinstance(v, dict) and (v.get("type") == "null" or v.get("type") == ["null"]) and len(v) == 1


def _plain(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


# ---------------------------------------------------------------- Gemini Schema -> JSON Schema


def from_gemini(schema: Any) -> dict[str, Any]:
    """A Gemini Schema (as a client sent it) as JSON Schema.

    ``nullable`` becomes ``type: [X, "null"]``; ``propertyOrdering`` orders ``properties``.

        >>> from_gemini({"type": "STRING", "nullable": True})
        {'type': ['string', 'null']}
    """
    if not isinstance(schema, dict):
        return {}
    out: dict[str, Any] = {}
    t = schema.get("type")
    json_type = t.lower() if isinstance(t, str) and t.lower() in _TYPES else None
    nullable = schema.get("nullable") is True or (isinstance(t, str) and t.upper() == "NULL")
    if json_type is not None:
        out["type"] = [json_type, "null"] if nullable else json_type
    variants = _get(schema, "anyOf")
    if isinstance(variants, list):
        out["anyOf"] = [from_gemini(v) for v in variants]
        if nullable:
            out["anyOf"].append({"type": "null"})
    elif nullable and json_type is None:
        out["type"] = "null"
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt and fmt != "enum":
        out["format"] = fmt
    for key in ("title", "description", "default", "pattern", "enum"):
        if key in schema:
            out[key] = schema[key]
    if isinstance(out.get("enum"), list) and nullable:
        out["enum"] = [*out["enum"], None]
    for key in _COUNTS:
        v = _get(schema, key)
        if v is not None:
            out[key] = int(v)  # proto int64 fields may arrive as strings
    for key in _BOUNDS:
        v = schema.get(key)
        if isinstance(v, int | float | str) and not isinstance(v, bool):
            out[key] = _number(v)
    props = schema.get("properties")
    if isinstance(props, dict):
        order = _get(schema, "propertyOrdering")
        names = [n for n in order if n in props] if isinstance(order, list) else []
        names += [n for n in props if n not in names]
        out["properties"] = {n: from_gemini(props[n]) for n in names}
    if isinstance(schema.get("required"), list):
        out["required"] = list(schema["required"])
    if "items" in schema:
        out["items"] = from_gemini(schema["items"])
    return out


def _get(d: dict[str, Any], camel: str) -> Any:
    v = d.get(camel)
    return d.get(_SNAKE.get(camel, camel)) if v is None else v


def _number(v: int | float | str) -> int | float:
    if isinstance(v, str):
        f = float(v)
        return int(f) if f.is_integer() else f
    return v
