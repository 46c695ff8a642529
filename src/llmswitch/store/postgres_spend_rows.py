"""Spend records as PostgreSQL's bulk writes take them.

A batch goes first as a binary ``COPY`` of :func:`spend_rows`: PostgreSQL then parses no text and writes
the rows a page at a time. When COPY refuses it (a request id stored before, a NUL), it goes again as one
INSERT reading :func:`spend_json`: the batch as one JSON array of objects, each field named as its column
(``json_to_recordset`` types them, :data:`SPEND_COLUMN_TYPES`), with no NUL characters (``text`` and
``jsonb`` cannot hold them). A field at its default is not in the JSON (see :class:`SpendRecord`);
:data:`SPEND_VALUES` reads it back as that default.

One JSON document, encoded by msgspec in C, rather than one array per column: asyncpg checks every
element of an array parameter against ``collections.abc`` (about 36 checks a record, a fifth of the
shipper's CPU on the event loop), and PostgreSQL reads the JSON about as fast as the arrays."""

from __future__ import annotations

from collections.abc import Sequence
from math import isfinite
from typing import Any

import msgspec
from msgspec import structs

from llmswitch.store.records import SPEND_FIELDS, SpendRecord

SPEND_COLUMN_TYPES = {
    **dict.fromkeys(SPEND_FIELDS, "text"),
    "time": "timestamptz",
    **dict.fromkeys(
        ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "status"),
        "bigint",
    ),
    **dict.fromkeys(("cost", "latency_ms", "ttft_ms", "cache_saved_cost"), "float8"),
    **dict.fromkeys(("cache_hit", "stream", "estimated"), "boolean"),
    "metadata": "jsonb",
}


def _sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, dict) and not value:
        return "'{}'"
    raise TypeError(f"no SQL literal for a spend record default of {value!r}")


def _spend_value(field: msgspec.structs.FieldInfo) -> str:
    """The SELECT expression of one column: a key missing from a record's JSON is the field's default."""
    if field.required or field.name == "time" or field.default is None:
        return field.name  # always in the JSON, or NULL when missing
    default = field.default_factory() if field.default is msgspec.NODEFAULT else field.default
    return f"COALESCE({field.name}, {_sql_literal(default)}::{SPEND_COLUMN_TYPES[field.name]})"


#: the columns' values as the insert's SELECT reads them from ``json_to_recordset``, in SPEND_FIELDS' order
SPEND_VALUES = ", ".join(_spend_value(field) for field in structs.fields(SpendRecord))


def spend_json(records: Sequence[SpendRecord]) -> str:
    """The records as the JSON array the insert reads, every NUL in a string made U+FFFD."""
    data = msgspec.json.encode(records)
    if b"\\u0000" in data:  # a NUL somewhere (or a string holding that escape's text): scrubbed
        data = msgspec.json.encode([{k: _without_nul(v) for k, v in structs.asdict(rec).items()} for rec in records])
    return data.decode()


_TIMINGS = (SPEND_FIELDS.index("latency_ms"), SPEND_FIELDS.index("ttft_ms"))


def spend_rows(records: Sequence[SpendRecord]) -> list[tuple[Any, ...]]:
    """The records as rows for a binary ``COPY`` of :data:`SPEND_FIELDS`, in that order.

    A timing that is not a finite number is NULL, as :func:`spend_json`'s JSON makes it (a record's costs
    are finite: :class:`SpendRecord` checks them). NULs are left in: PostgreSQL refuses them, and the
    caller falls back to :func:`spend_json`'s insert, which scrubs them."""
    rows = []
    for rec in records:
        row = structs.astuple(rec)
        latency, ttft = rec.latency_ms, rec.ttft_ms
        if (latency is not None and not isfinite(latency)) or (ttft is not None and not isfinite(ttft)):
            row = tuple(None if i in _TIMINGS and v is not None and not isfinite(v) else v for i, v in enumerate(row))
        rows.append(row)
    return rows


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value
