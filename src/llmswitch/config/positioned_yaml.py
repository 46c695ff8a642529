"""YAML that remembers where every value came from.

PyYAML's composer gives each node a start mark; we walk the node graph ourselves (instead of
``yaml.safe_load``) so the plain Python tree it builds comes with a side table of ``(line, column)``
for every mapping, sequence, scalar and key, keyed by its path. Walking it ourselves also lets us
reject duplicate keys (PyYAML silently keeps the last one) and keep the source text of scalars the
YAML 1.1 resolver turned into something else (``api_version: 2024-02-01`` is a date to YAML, and
``api_key: 0123`` an octal number), so string fields get exactly what the user typed.

    >>> doc = load_positioned("model_list:\\n  - model_name: a\\n")
    >>> doc.data, doc.marks.value_at(("model_list", 0, "model_name"))
    ({'model_list': [{'model_name': 'a'}]}, (2, 17))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from llmswitch.config.problems import KeyPath

Position = tuple[int, int]
"""1-based (line, column)."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLSyntaxError(Exception):
    """The text is not YAML; ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Marks:
    """Positions of values and keys by path; ``raw`` keeps the source text of non-string plain scalars."""

    values: dict[KeyPath, Position] = field(default_factory=dict)
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    raw: dict[KeyPath, str] = field(default_factory=dict)

    def value_at(self, path: KeyPath) -> Position | None:
        """Position of the value at ``path``, or of its nearest ancestor (a missing key is reported at its parent)."""
        for end in range(len(path), -1, -1):
            pos = self.values.get(path[:end])
            if pos is not None:
                return pos
        return None

    def key_at(self, path: KeyPath) -> Position | None:
        """Position of the key at ``path`` (where an unknown or duplicated key is written)."""
        return self.keys.get(path) or self.value_at(path)


@dataclass
class PositionedDocument:
    data: Any
    marks: Marks
    problems: list[tuple[KeyPath, Position, str]]
    """Structural problems found while walking (duplicate keys, bad merges), as (path, position, message)."""


def _pos(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def load_positioned(text: str) -> PositionedDocument:
    """Parse one YAML document into plain Python values plus their positions.

    Raises :class:`YAMLSyntaxError` when the text is not YAML (with the position PyYAML reports).
    An empty document gives ``data=None``.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc) from exc
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML raises marked errors for text input
        raise YAMLSyntaxError(str(exc), None, None) from exc
    walker = _Walker()
    data = None if root is None else walker.convert(root, ())
    return PositionedDocument(data, walker.marks, walker.problems)


def _syntax_error(exc: yaml.MarkedYAMLError) -> YAMLSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    if "'\\t'" in problem:
        # Published configs are often pasted with tabs; say why that fails, not only that it does.
        problem += " (YAML does not allow tabs for indentation; use spaces)"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem and exc.context_mark is not None and exc.context_mark is not mark:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    if exc.context == "while scanning an alias":
        # LiteLLM's wildcards make this common: `model_name: *` is an alias to YAML, `"*"` is the wildcard.
        message += '; an unquoted * starts a YAML alias: write "*" for a wildcard'
    if mark is None:
        return YAMLSyntaxError(message, None, None)
    return YAMLSyntaxError(message, mark.line + 1, mark.column + 1)


class _Walker:
    def __init__(self) -> None:
        self.marks = Marks()
        self.problems: list[tuple[KeyPath, Position, str]] = []
        self._constructor = SafeConstructor()
        self._active: set[int] = set()

    def convert(self, node: Node, path: KeyPath) -> Any:
        self.marks.values[path] = _pos(node)
        if id(node) in self._active:
            self.problems.append((path, _pos(node), "an alias refers to the mapping or list that contains it"))
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            assert isinstance(node, SequenceNode)
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        try:
            value = self._constructor.construct_object(node, deep=True)
        except ConstructorError as exc:
            self.problems.append((path, _pos(node), f"cannot read this value: {exc.problem}"))
            return None
        if not isinstance(value, str) and node.style is None and node.value:
            self.marks.raw[path] = node.value
        return value

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        # `<<: *defaults` first, so keys written in this mapping override merged ones (YAML merge rules).
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._merge(value_node, path, result)
        first_seen: dict[str, Position] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append((path, _pos(key_node), "a key must be a plain string, not a list or mapping"))
                continue
            # The key's source text, not its YAML 1.1 value: `no:` or `on:` are names here, not booleans.
            key = key_node.value
            if key in first_seen:
                line = first_seen[key][0]
                self.problems.append(((*path, key), _pos(key_node), f"duplicate key {key!r} (first at line {line})"))
                continue
            first_seen[key] = _pos(key_node)
            self.marks.keys[(*path, key)] = _pos(key_node)
            result[key] = self.convert(value_node, (*path, key))
        self.marks.values[path] = _pos(node)
        return result

    def _merge(self, value_node: Node, path: KeyPath, result: dict[str, Any]) -> None:
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.problems.append((path, _pos(source), "'<<' merges a mapping (or a list of mappings) only"))
                continue
            merged = self.convert(source, path)
            for key, value in merged.items():
                result.setdefault(key, value)
