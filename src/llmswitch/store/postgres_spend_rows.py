"""Spend records as PostgreSQL's bulk insert takes them: one array per column, of each column's type, with
metadata as JSON text and no NUL characters (``text`` and ``jsonb`` cannot hold them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from msgspec import structs

from llmswitch.store.records import SPEND_FIELDS, SpendRecord

SPEND_ARRAY_TYPES = {
    **dict.fromkeys(SPEND_FIELDS, "text"),  # metadata too: cast to jsonb in the query
    "time": "timestamptz",
    **dict.fromkeys(
        ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "status"),
        "bigint",
    ),
    **dict.fromkeys(("cost", "latency_ms", "ttft_ms", "cache_saved_cost"), "float8"),
    **dict.fromkeys(("cache_hit", "stream", "estimated"), "boolean"),
}


def spend_columns(records: Sequence[SpendRecord]) -> list[list[Any]]:
    """The records as one list per column, for the insert's arrays (see :func:`_storable`)."""
    columns = [list(column) for column in zip(*map(structs.astuple, records), strict=True)]
    for at, name in enumerate(SPEND_FIELDS):
        column = columns[at]
        if name == "metadata" or (
            SPEND_ARRAY_TYPES[name] == "text" and any(type(v) is str and "\x00" in v for v in column)
        ):
            columns[at] = [_storable(v) for v in column]
    return columns


def _storable(value: Any) -> Any:
    """A spend log value as PostgreSQL takes it: metadata as JSON text, and no NUL characters.

    ``text`` and ``jsonb`` cannot hold NUL (SQLite can), and a client-supplied user id or tag
    carrying one must not make its record unstorable; it becomes U+FFFD.
    """
    if isinstance(value, dict):
        text = msgspec.json.encode(value).decode()
        return msgspec.json.encode(_without_nul(value)).decode() if "\\u0000" in text else text
    return _without_nul(value) if isinstance(value, str) else value


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value
