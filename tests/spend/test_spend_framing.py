"""The journal's line format: round trips, and every torn or damaged line is caught."""

from __future__ import annotations

import ast
import inspect
import textwrap
import zlib
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import structs

from llmswitch.server import spend_lines
from llmswitch.spend import SpendRecord
from llmswitch.spend.framing import MAX_METADATA_BYTES, SpendLine, decode_line, encode_line, encode_spend_line
from llmswitch.store.records import SPEND_FIELDS

_text = st.text(max_size=20)
_optional_text = st.none() | _text
_count = st.integers(min_value=0, max_value=2**63 - 1)
_ms = st.none() | st.floats(min_value=0, max_value=1e7, allow_nan=False)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)

records = st.builds(
    SpendRecord,
    request_id=st.text(min_size=1, max_size=40),
    time=st.datetimes(timezones=st.just(UTC)),
    key_hash=_optional_text,
    key_alias=_optional_text,
    user_id=_optional_text,
    team_id=_optional_text,
    model_group=_optional_text,
    deployment_id=_optional_text,
    provider=_optional_text,
    model=_optional_text,
    input_tokens=_count,
    output_tokens=_count,
    cache_read_tokens=_count,
    cache_write_tokens=_count,
    reasoning_tokens=_count,
    cost=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    latency_ms=_ms,
    ttft_ms=_ms,
    status=st.integers(0, 999),
    error_class=_optional_text,
    cache_hit=st.booleans(),
    stream=st.booleans(),
    metadata=st.dictionaries(_text, _json, max_size=4),
)


@given(records)
def test_a_line_decodes_to_the_record_it_encodes(rec: SpendRecord) -> None:
    line = encode_line(rec)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # strings with newlines are escaped
    assert decode_line(line[:-1]) == rec


@given(records, st.data())
def test_a_line_cut_short_anywhere_is_rejected(rec: SpendRecord, data: st.DataObject) -> None:
    line = encode_line(rec)[:-1]
    cut = data.draw(st.integers(0, len(line) - 1))
    assert decode_line(line[:cut]) is None


@given(records, st.data())
def test_a_line_with_any_byte_changed_is_rejected(rec: SpendRecord, data: st.DataObject) -> None:
    line = bytearray(encode_line(rec)[:-1])
    at = data.draw(st.integers(0, len(line) - 1))
    line[at] = data.draw(st.integers(0, 255).filter(lambda b: b != line[at]))  # e.g. "a" -> "A" in the checksum
    assert decode_line(bytes(line)) is None


def test_a_checksummed_line_of_another_shape_is_rejected() -> None:
    body = msgspec.json.encode({"request_id": 7})
    assert decode_line(b"%08x %b" % (zlib.crc32(body), body)) is None
    assert decode_line(b"") is None
    assert decode_line(b"zzzzzzzz {}") is None


@pytest.mark.parametrize(
    "fields",
    [
        {"input_tokens": "12"},
        {"output_tokens": -1},
        {"status": 1000},
        {"cache_hit": "yes"},
        {"time": "yesterday"},
    ],
)
def test_a_wrongly_typed_record_is_refused_at_append_time(fields: dict[str, object]) -> None:
    rec = SpendRecord(request_id="r1", **fields)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="r1"):
        encode_line(rec)


@pytest.mark.parametrize("cost", [float("nan"), float("inf")])
def test_a_non_finite_cost_is_refused_when_the_record_is_made(cost: float) -> None:
    with pytest.raises(ValueError, match="cost"):
        SpendRecord(request_id="r1", cost=cost)


def test_an_empty_request_id_is_refused() -> None:
    with pytest.raises(ValueError, match="request_id"):
        SpendRecord(request_id="")


def test_big_metadata_is_replaced_by_a_note_of_its_size() -> None:
    big = {"prompt": "x" * (MAX_METADATA_BYTES + 100)}
    got = decode_line(encode_line(SpendRecord(request_id="r1", cost=0.5, metadata=big))[:-1])
    assert got is not None and got.cost == 0.5
    assert got.metadata == {"truncated_bytes": len(msgspec.json.encode(big))}
    small = {"tag": "y" * 100}
    assert decode_line(encode_line(SpendRecord(request_id="r2", metadata=small))[:-1]).metadata == small  # type: ignore[union-attr]


def test_times_are_utc_whatever_the_caller_passed() -> None:
    naive = SpendRecord(request_id="r1", time=datetime(2025, 6, 1, 12, 0))
    assert naive.time == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert b'"time":"2025-06-01T12:00:00Z"' in encode_line(naive)


# ---------------------------------------------------------------- the gateway's own records (SpendLine)


def test_a_spend_line_has_the_records_fields_in_its_order_and_defaults() -> None:
    # the gateway builds SpendLines positionally: a field added to SpendRecord must be added here too
    assert SpendLine.__struct_fields__ == SPEND_FIELDS
    line_fields, record_fields = structs.fields(SpendLine), structs.fields(SpendRecord)
    # a field at its default is left out of the JSON and read back as the record's default
    assert [(f.default, f.default_factory) for f in line_fields[2:]] == [
        (f.default, f.default_factory) for f in record_fields[2:]
    ]
    assert line_fields[0].required and line_fields[1].required  # the id and the time are always given


def test_the_gateway_gives_a_spend_line_every_field() -> None:
    # SpendLine has defaults (for the JSON), so a call that forgot a field would not fail: count them
    tree = ast.parse(textwrap.dedent(inspect.getsource(spend_lines.spend_line)))
    [call] = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "SpendLine"]
    assert not call.keywords
    starred = [a for a in call.args if isinstance(a, ast.Starred)]
    assert [ast.unparse(a) for a in starred] == ["*counts"]  # the five token counts
    assert len(call.args) - 1 + 5 == len(SPEND_FIELDS)


@given(records)
def test_a_spend_line_encodes_to_the_records_own_line(rec: SpendRecord) -> None:
    assert encode_spend_line(SpendLine(*structs.astuple(rec))) == encode_line(rec)


def test_a_spend_lines_big_metadata_is_replaced_by_a_note_of_its_size() -> None:
    big = {"client_request_id": "x" * (MAX_METADATA_BYTES + 100)}
    rec = SpendRecord(request_id="r1", cost=0.5, metadata=big)
    line = encode_spend_line(SpendLine(*structs.astuple(rec)))
    assert line == encode_line(rec)
    got = decode_line(line[:-1])
    assert got is not None and got.metadata == {"truncated_bytes": len(msgspec.json.encode(big))}
