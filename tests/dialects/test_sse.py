"""SSEParser and encode_event: the wire framing every streamed dialect sits on."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmswitch.dialects.sse import SSEEvent, SSEParser, encode_event

# a field value is one line: no CR or LF; surrogates cannot be UTF-8 encoded
line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12)
event_names = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="_.-"), min_size=1)


def _parse_in_pieces(raw: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    out: list[SSEEvent] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(raw)]:
        out += parser.feed(raw[start:cut])
        start = cut
    return out + parser.close()


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    """A stream of events with comments, unknown fields and mixed line endings, and what it means."""
    lines: list[str] = []
    expected: list[SSEEvent] = []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            lines.append(":" + draw(line_text))  # a comment or keep-alive between events
        name = draw(st.none() | event_names)
        data = draw(st.lists(line_text, min_size=1, max_size=3))
        block: list[str] = []
        if name is not None:
            block.append(f"event: {name}")
        for value in data:
            # "data:x" and "data: x" mean the same; a value that starts with a space needs the space form
            if value and not value.startswith(" ") and draw(st.booleans()):
                block.append(f"data:{value}")
            else:
                block.append(f"data: {value}")
            if draw(st.integers(0, 4)) == 0:
                block.append(draw(st.sampled_from([": keep-alive", "id: 7", "retry: 1000", ": OPENROUTER PROCESSING"])))
        lines += block
        lines.append("")
        expected.append(SSEEvent(name, "\n".join(data)))
    raw = b""
    previous_end = ""
    for line in lines:
        end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
        if previous_end == "\r" and line == "" and end == "\n":
            end = "\r\n"  # "\r" + "\n" would read as one CRLF and swallow the blank line
        raw += (line + end).encode()
        previous_end = end
    return raw, expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sse_streams(), st.data())
def test_events_survive_any_split_and_any_line_ending(
    stream: tuple[bytes, list[SSEEvent]], data: st.DataObject
) -> None:
    raw, expected = stream
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=8))
    assert _parse_in_pieces(raw, cuts) == expected


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.none() | event_names, line_text), max_size=5), st.data())
def test_encode_event_parses_back(events: list[tuple[str | None, str]], data: st.DataObject) -> None:
    raw = b"".join(encode_event(text.encode(), name) for name, text in events)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=5))
    assert _parse_in_pieces(raw, cuts) == [SSEEvent(name, text) for name, text in events]


def test_one_byte_at_a_time_with_multibyte_characters() -> None:
    raw = 'event: ü\r\ndata: {"text": "日本語 🎉"}\r\n\r\n'.encode()
    parser = SSEParser()
    out = [ev for i in range(len(raw)) for ev in parser.feed(raw[i : i + 1])]
    assert out == [SSEEvent("ü", '{"text": "日本語 🎉"}')]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b"data: a\ndata: b\n\n", [SSEEvent(None, "a\nb")], id="multi-line-data"),
        pytest.param(b"data\n\n", [SSEEvent(None, "")], id="field-without-colon"),
        pytest.param(b"data:  two spaces\n\n", [SSEEvent(None, " two spaces")], id="only-one-space-stripped"),
        pytest.param(b"event: ping\n\n", [], id="event-without-data-is-not-dispatched"),
        pytest.param(b": comment only\n\n", [], id="comment-only"),
        pytest.param(
            b"event: a\ndata: 1\n\ndata: 2\n\n", [SSEEvent("a", "1"), SSEEvent(None, "2")], id="event-name-resets"
        ),
        pytest.param(b"data: x:y: z\n\n", [SSEEvent(None, "x:y: z")], id="colons-in-value"),
        pytest.param(b"\n\n\ndata: x\n\n\n\n", [SSEEvent(None, "x")], id="extra-blank-lines"),
        pytest.param(b"id: 1\nretry: 5\ndata: x\n\n", [SSEEvent(None, "x")], id="unknown-fields-ignored"),
    ],
)
def test_parser_table(raw: bytes, expected: list[SSEEvent]) -> None:
    parser = SSEParser()
    assert parser.feed(raw) + parser.close() == expected


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b""], ids=["lf", "crlf", "none"])
def test_close_flushes_an_event_without_final_blank_line(ending: bytes) -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"a": 1}' + ending) == []
    assert parser.close() == [SSEEvent(None, '{"a": 1}')]


def test_close_flushes_an_event_whose_last_line_ends_with_cr() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.close() == [SSEEvent(None, "x")]


def test_cr_at_chunk_end_waits_for_a_possible_lf() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    # the LF completes the CRLF of the data line; the next CRLF is the blank line that dispatches
    assert parser.feed(b"\n\r\n") == [SSEEvent(None, "x")]


def test_close_resets_for_reuse_and_does_not_repeat() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\n\n") == [SSEEvent(None, "1")]
    assert parser.close() == []
    assert parser.close() == []


def test_encode_event_bytes() -> None:
    assert encode_event(b"{}") == b"data: {}\n\n"
    assert encode_event(b'{"x":1}', "error") == b'event: error\ndata: {"x":1}\n\n'
