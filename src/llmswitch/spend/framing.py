"""The journal's line format: one spend record per line, with a checksum to catch torn writes.

    <crc32 of the JSON, 8 lowercase hex digits> <the record as compact JSON>\n

The JSON leaves out the fields at their defaults (see :class:`SpendRecord`); decoding fills them in.

    >>> line = encode_line(SpendRecord(request_id="r1", time=datetime(2025, 6, 1, tzinfo=UTC)))
    >>> line[:9], line[9:30]
    (b'6b77574e ', b'{"request_id":"r1","t')
    >>> decode_line(line.rstrip(b"\\n")).request_id, decode_line(line[:40])
    ('r1', None)

Compact JSON never contains a raw newline (it escapes them in strings), so lines split on ``\\n``
alone. A process killed mid-write leaves a last line that is cut short, or whose bytes do not match
its checksum: readers skip it (it belonged to an append that never returned).
"""

from __future__ import annotations

import logging
import zlib
from datetime import datetime
from typing import Any

import msgspec
from msgspec import structs

from llmswitch.store.records import SPEND_FIELDS, SpendRecord

#: metadata bigger than this (as JSON) is replaced by a note of its size: records stay small
MAX_METADATA_BYTES = 4096

_log = logging.getLogger("llmswitch.spend")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(SpendRecord).decode
# a record this short as JSON cannot carry big metadata, so most appends skip measuring it
_SMALL_LINE = MAX_METADATA_BYTES


def encode_line(record: SpendRecord) -> bytes:
    """``record`` as one journal line, ending in ``\\n``; ``ValueError`` if a field has the wrong type.

    The check runs here, at append time, because a line that cannot be read back would be a
    record lost later, far from the code that made it.
    """
    body = _encode(record)
    if len(body) > _SMALL_LINE:
        size = len(_encode(record.metadata))
        if size > MAX_METADATA_BYTES:
            _log.warning("spend record %s: metadata of %d bytes truncated", record.request_id, size)
            record = structs.replace(record, metadata={"truncated_bytes": size})
            body = _encode(record)
    try:
        _decode(body)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid spend record {record.request_id!r}: {exc}") from exc
    return b"%08x %b\n" % (zlib.crc32(body), body)


class SpendLine(msgspec.Struct, omit_defaults=True):
    """A spend record's values, in :class:`SpendRecord`'s field order, for :func:`encode_spend_line`.

    It encodes to the same JSON as the :class:`SpendRecord` with these values (its defaults are the
    record's, and like it, it leaves out a field at its default). It is built
    positionally and checks nothing, which makes it several times cheaper than a :class:`SpendRecord`
    plus :func:`encode_line`'s check: for the gateway's own records, whose values it has already made
    sure of (see ``llmswitch.server.accounting``). Anything else goes through :func:`encode_line`.
    """

    request_id: str
    time: datetime
    key_hash: str | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    model_group: str | None = None
    deployment_id: str | None = None
    provider: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    status: int = 200
    error_class: str | None = None
    cache_hit: bool = False
    stream: bool = False
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    call_type: str = "chat"
    estimated: bool = False
    cache_saved_cost: float | None = None


def _defaults(struct: type[msgspec.Struct]) -> list[tuple[str, Any, Any]]:
    return [(f.name, f.default, f.default_factory) for f in structs.fields(struct) if f.name != "time"]


if tuple(SpendLine.__struct_fields__) != SPEND_FIELDS:  # pragma: no cover - caught by any test run
    raise RuntimeError("SpendLine's fields must be SpendRecord's, in the same order")
if _defaults(SpendLine) != _defaults(SpendRecord):  # pragma: no cover - caught by any test run
    raise RuntimeError(
        "SpendLine's defaults must be SpendRecord's: a field left out is read back as the record's default"
    )


def encode_spend_line(entry: SpendLine) -> bytes:
    """``entry`` as one journal line, like :func:`encode_line` but trusting its values' types."""
    body = _encode(entry)
    if len(body) > _SMALL_LINE:
        size = len(_encode(entry.metadata))
        if size > MAX_METADATA_BYTES:
            _log.warning("spend record %s: metadata of %d bytes truncated", entry.request_id, size)
            body = _encode(structs.replace(entry, metadata={"truncated_bytes": size}))
    return b"%08x %b\n" % (zlib.crc32(body), body)


def decode_own_line(line: bytes) -> SpendRecord | None:
    """:func:`decode_line` for a line this process encoded and never read back from a file: its
    checksum is right by construction, so only the record is decoded (``None`` if it does not decode)."""
    try:
        return _decode(line[9:])
    except msgspec.DecodeError:
        return None


def decode_line(line: bytes) -> SpendRecord | None:
    """The record of one line (without its ``\\n``), or ``None`` if it is torn or corrupt."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    if line[:8] != b"%08x" % zlib.crc32(body):
        return None
    try:
        return _decode(body)
    except msgspec.DecodeError:
        # msgspec.ValidationError is one too: a checksummed line of another shape
        return None
