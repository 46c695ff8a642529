"""Structured outputs: ``response_format`` as a Pydantic class, a JSON-schema dict or json_object.

A Pydantic class becomes a strict JSON schema (every property required, no extra properties, as
OpenAI's strict mode demands) and the reply is validated back into an instance (``message.parsed``).

    >>> from pydantic import BaseModel
    >>> class City(BaseModel):
    ...     name: str
    >>> fmt, cls = normalize_response_format(City)
    >>> fmt["json_schema"]["schema"]["required"], cls is City
    (['name'], True)
"""

from __future__ import annotations

import copy
from typing import Any

from llmswitch.errors import ConfigError, ResponseParseError


def _is_pydantic_class(obj: Any) -> bool:
    return isinstance(obj, type) and hasattr(obj, "model_json_schema") and hasattr(obj, "model_validate_json")


def normalize_response_format(rf: Any) -> tuple[dict[str, Any] | None, type | None]:
    """The wire ``response_format`` dict, and the Pydantic class to parse into (if one was given)."""
    if rf is None:
        return None, None
    if _is_pydantic_class(rf):
        schema = strict_schema(rf.model_json_schema())
        return {"type": "json_schema", "json_schema": {"name": rf.__name__, "schema": schema, "strict": True}}, rf
    if isinstance(rf, dict):
        if rf.get("type") in ("json_schema", "json_object", "text"):
            return rf, None
        if "properties" in rf or rf.get("type") == "object":
            # a bare JSON schema, as some callers write it
            return {"type": "json_schema", "json_schema": {"name": "response", "schema": rf}}, None
    raise ConfigError(
        "response_format must be a Pydantic model class, {'type': 'json_schema', 'json_schema': {...}} "
        "or {'type': 'json_object'}"
    )


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` in the form strict structured outputs accept."""
    out = copy.deepcopy(schema)
    _make_strict(out)
    return out


def _make_strict(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _make_strict(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "object" or "properties" in node:
        props = node.setdefault("properties", {})
        node["required"] = list(props)
        node["additionalProperties"] = False
    for key in ("properties", "$defs", "definitions"):
        sub = node.get(key)
        if isinstance(sub, dict):
            for v in sub.values():
                _make_strict(v)
    for key in ("items", "anyOf", "oneOf", "allOf", "prefixItems"):
        if key in node:
            _make_strict(node[key])
    # strict mode rejects defaults; Pydantic puts them on optional fields
    node.pop("default", None)


def parse_content(content: str | None, cls: type) -> Any:
    """Validate the model's JSON reply into ``cls``; a clear error when it does not fit."""
    if not content:
        raise ResponseParseError(f"the model returned no content to parse as {cls.__name__}", content=content)
    try:
        return cls.model_validate_json(content)  # type: ignore[attr-defined]
    except Exception as exc:
        raise ResponseParseError(f"the model's reply is not a valid {cls.__name__}: {exc}", content=content) from exc


class PartialParser:
    """A structured reply read as it streams: :meth:`feed` gives what the JSON so far says (never raising
    on JSON that is not finished), :meth:`finish` the validated object once it is whole.

    For a Pydantic class a partial value is an instance built without validation, its fields filled as
    they arrive (a string field grows with its text); for a JSON-schema format, a dict.

        >>> from pydantic import BaseModel
        >>> class Story(BaseModel):
        ...     title: str
        ...     moral: str
        >>> p = PartialParser(Story)
        >>> p.feed('{"title": "The Fox", "mor')
        Story(title='The Fox')
        >>> p.feed('al": "Be kind"}')
        Story(title='The Fox', moral='Be kind')
    """

    def __init__(self, cls: type | None) -> None:
        self.cls = cls
        self.text = ""

    def feed(self, delta: str) -> Any:
        self.text += delta
        return self.partial()

    def partial(self) -> Any:
        import pydantic_core

        try:
            data = pydantic_core.from_json(self.text, allow_partial="trailing-strings")
        except ValueError:
            return None  # nothing that reads as JSON yet (or text before it)
        cls = self.cls
        if cls is None or not isinstance(data, dict):
            return data
        fields = getattr(cls, "model_fields", {})
        try:
            return cls.model_validate(data)  # type: ignore[attr-defined]
        except Exception:
            return cls.model_construct(**{k: v for k, v in data.items() if k in fields})  # type: ignore[attr-defined]

    def finish(self) -> Any:
        """The whole reply validated (``ResponseParseError`` when it does not fit)."""
        if self.cls is None:
            import json

            try:
                return json.loads(self.text)
            except ValueError as exc:
                raise ResponseParseError(f"the model's reply is not valid JSON: {exc}", content=self.text) from exc
        return parse_content(self.text, self.cls)
