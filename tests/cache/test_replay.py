"""Stored answers: a whole answer replayed as events gathers back to itself; cut streams are not stored."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from llmswitch import ir
from llmswitch.cache.replay import decode_answer, encode_answer, events_of, gather, meta_of, new_answer

texts = st.text(min_size=1, max_size=40)
parts = st.one_of(
    texts.map(lambda t: ir.TextPart(text=t)),
    st.tuples(texts, st.one_of(st.none(), texts)).map(lambda a: ir.ReasoningPart(text=a[0], signature=a[1])),
    st.tuples(texts, texts).map(lambda a: ir.ToolCallPart(id="call_" + a[0], name="f", arguments='{"q": 1}')),
)


def _normal(parts_in: list[ir.Part]) -> list[ir.Part]:
    """Adjacent text (and reasoning without a signature between) joins, as a stream carries it."""
    out: list[ir.Part] = []
    for p in parts_in:
        last = out[-1] if out else None
        if isinstance(p, ir.TextPart) and isinstance(last, ir.TextPart):
            out[-1] = ir.TextPart(text=last.text + p.text)
        elif isinstance(p, ir.ReasoningPart) and isinstance(last, ir.ReasoningPart) and last.signature is None:
            out[-1] = ir.ReasoningPart(text=last.text + p.text, signature=p.signature)
        else:
            out.append(p)
    return out


@given(st.lists(parts, min_size=1, max_size=6), st.sampled_from(["stop", "length", "tool_calls"]))
def test_a_whole_answer_replayed_as_a_stream_gathers_back_to_itself(ps: list[ir.Part], finish: str) -> None:
    usage = ir.Usage(input_tokens=5, output_tokens=7)
    resp = ir.Response(
        id="r1",
        model="m",
        created=1,
        usage=usage,
        choices=[ir.Choice(parts=ps, finish_reason=finish)],  # type: ignore[arg-type]
    )
    back = gather(meta_of(resp), events_of(resp))
    assert back is not None
    assert back.usage == usage and back.id == "r1"
    assert msgspec.json.encode(back.choices[0].parts) == msgspec.json.encode(_normal(ps))


def test_a_stream_cut_before_its_finish_is_not_an_answer() -> None:
    events = [ir.StreamEvent(role="assistant"), ir.StreamEvent(text="half")]
    assert gather(ir.StreamMeta(id="x"), events) is None
    assert gather(ir.StreamMeta(id="x"), [*events, ir.StreamEvent(finish_reason="error")]) is None


def test_garbage_is_no_entry() -> None:
    resp = ir.Response(id="r", model="m", choices=[ir.Choice(parts=[ir.TextPart("x")], finish_reason="stop")])
    good = encode_answer(new_answer(resp, "g", None))
    assert decode_answer(good) is not None
    for junk in (b"", None, b"\x00\xff", b"[]", b'{"response": 1}', good[:-3], b'{"v": 99, "response": {}}', "ok"):
        assert decode_answer(junk) is None


def test_a_relayed_openai_body_is_kept_as_bytes_and_decoded_only_when_asked() -> None:
    body = (
        b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
    )
    entry = encode_answer(new_answer(body, "g", None))
    assert body in entry  # embedded as it came, not re-encoded
    found = decode_answer(entry)
    assert found is not None and found.relayed and found.response is None
    resp = found.resolve()
    assert resp is not None and resp.choices[0].text == "hi" and resp.usage is not None
    cut = body.replace(b'"finish_reason":"stop"', b'"finish_reason":null')
    assert decode_answer(encode_answer(new_answer(cut, "g", None))) is None
