"""Cascades through the gateway: the weak tier answers first, and the strong tier answers instead when the
weak answer fails a check — schema, tool arguments, refusal, length, low log-probabilities, the user's own
check — whole and streamed; an answer that passes is the weak tier's, unchanged; both calls are charged."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from auto_harness import STRONG_PRICE, WEAK_PRICE, config
from gateway_harness import ServedGateway

from llmswitch.testing import FakeUpstream, Reply

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def tiers() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as weak, FakeUpstream() as strong:
        yield weak, strong


@pytest.fixture(scope="module")
def gw(tiers: tuple[FakeUpstream, FakeUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    store = tmp_path_factory.mktemp("cascade") / "store.db"
    with ServedGateway(config(*tiers, str(store))) as served:
        yield served


def _logprobs_body(text: str, logprob: float) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-lp",
            "object": "chat.completion",
            "created": 1,
            "model": "weak-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": {"content": [{"token": text, "logprob": logprob, "bytes": None, "top_logprobs": []}]},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }
    )


def _logprobs_stream(text: str, logprob: float) -> str:
    first = {
        "id": "chatcmpl-lp",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "weak-model",
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": text},
                "logprobs": {"content": [{"token": text, "logprob": logprob, "bytes": None, "top_logprobs": []}]},
                "finish_reason": None,
            }
        ],
    }
    last = {**first, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {**first, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
    return "".join(f"data: {json.dumps(x)}\n\n" for x in (first, last, usage)) + "data: [DONE]\n\n"


# check -> (extra request fields, the weak reply that fails it, a weak reply that passes it)
def _cases(stream: bool) -> dict[str, tuple[dict[str, Any], Reply, Reply]]:
    rf = {"response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}}
    return {
        "schema": (rf, Reply(text='{"town": "Paris"}'), Reply(text='{"city": "Paris"}')),
        "tools": (
            {"tools": [TOOL]},
            Reply(tool_calls=[("get_weather", {"city": 75})]),
            Reply(tool_calls=[("get_weather", {"city": "Paris"})]),
        ),
        "refusal": ({}, Reply(text="I'm sorry, but I can't help with that."), Reply(text="Paris is in France.")),
        "length": ({}, Reply(text="Paris is", finish_reason="length"), Reply(text="Paris is in France.")),
        "logprobs": (
            {"logprobs": True},
            Reply(body=_logprobs_stream("maybe", -2.5) if stream else _logprobs_body("maybe", -2.5)),
            Reply(body=_logprobs_stream("Paris", -0.05) if stream else _logprobs_body("Paris", -0.05)),
        ),
        "check": ({}, Reply(text="NO-GOOD answer"), Reply(text="a good answer")),
    }


def _ask(gw: ServedGateway, extra: dict[str, Any], stream: bool, key: str | None = None) -> Any:
    body = {"model": "cascade", "messages": [{"role": "user", "content": "Where is Paris?"}], **extra}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if key is None:
        return gw.call("POST", "/v1/chat/completions", body)
    return gw.call("POST", "/v1/chat/completions", body, key=key)


def _answer(body: bytes, stream: bool) -> tuple[str, list[str]]:
    """(text, tool call arguments) of an OpenAI answer, whole or streamed."""
    if not stream:
        msg = json.loads(body)["choices"][0]["message"]
        return msg.get("content") or "", [c["function"]["arguments"] for c in msg.get("tool_calls") or []]
    text, args = [], []
    for line in body.decode().splitlines():
        if line.startswith("data: {"):
            for c in json.loads(line[6:]).get("choices", []):
                text.append(c["delta"].get("content") or "")
                args += [t["function"].get("arguments") or "" for t in c["delta"].get("tool_calls") or []]
    return "".join(text), ["".join(args)] if args else []


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("check", ["schema", "tools", "refusal", "length", "logprobs", "check"])
def test_a_failed_check_escalates_to_the_strong_tier(
    gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream], check: str, stream: bool
) -> None:
    weak, strong = tiers
    weak.reset()
    strong.reset()
    extra, failing, _ = _cases(stream)[check]
    weak.script(failing)
    if check == "tools":
        strong.script(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    else:
        strong.script(Reply(text='{"city": "Paris"}'))
    r = _ask(gw, extra, stream)
    assert r.status == 200, r.body
    assert r.headers["x-llmswitch-model-group"] == "strong"
    assert r.headers["x-llmswitch-route"] == "strong"
    assert r.headers["x-llmswitch-route-cascade"] == check
    assert "escalated" in r.headers["x-llmswitch-route-reason"]
    text, args = _answer(r.body, stream)
    if check == "tools":
        assert [json.loads(a) for a in args] == [{"city": "Paris"}]
    else:
        assert text == '{"city": "Paris"}'  # only the strong answer reached the client
    assert len(weak.requests) == 1 and len(strong.requests) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("check", ["schema", "tools", "refusal", "length", "logprobs", "check"])
def test_an_answer_that_passes_is_the_weak_tiers(
    gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream], check: str, stream: bool
) -> None:
    weak, strong = tiers
    weak.reset()
    strong.reset()
    extra, _, passing = _cases(stream)[check]
    weak.script(passing)
    r = _ask(gw, extra, stream)
    assert r.status == 200, r.body
    assert r.headers["x-llmswitch-model-group"] == "weak"
    assert "x-llmswitch-route-cascade" not in r.headers
    assert "passed" in r.headers["x-llmswitch-route-reason"]
    text, args = _answer(r.body, stream)
    if check == "tools":
        assert [json.loads(a) for a in args] == [{"city": "Paris"}]
    else:
        assert text and "NO-GOOD" not in text
    assert strong.requests == []


def test_both_calls_of_an_escalated_cascade_are_charged(
    gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream]
) -> None:
    weak, strong = tiers
    weak.reset()
    strong.reset()
    key = gw.new_key()
    weak.script(Reply(text="NO-GOOD", usage=(100, 20)))
    strong.script(Reply(text="fine", usage=(100, 30)))
    r = _ask(gw, {}, False, key)
    assert r.status == 200, r.body
    weak_cost, strong_cost = 120 * WEAK_PRICE, 130 * STRONG_PRICE
    deadline = time.monotonic() + 10
    while True:
        rows = gw.call("GET", f"/spend/logs?api_key={key}").json()
        if len(rows) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    by_model = {row["model"]: row for row in rows}
    assert set(by_model) == {"weak-model", "strong-model"}
    assert by_model["weak-model"]["spend"] == pytest.approx(weak_cost)
    assert by_model["weak-model"]["request_id"].endswith("~c1")
    assert by_model["strong-model"]["spend"] == pytest.approx(strong_cost)
    assert by_model["strong-model"]["route"]["failed_checks"] == ["check"]
    info = gw.call("GET", f"/key/info?key={key}").json()["info"]
    assert info["spend"] == pytest.approx(weak_cost + strong_cost)


def test_a_cascade_never_escalates_past_the_keys_budget(
    gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """The strong call is admitted (its estimate fits the budget), but after the weak call's cost it would
    not: the weak answer stands, and the reason says why."""
    weak, strong = tiers
    weak.reset()
    strong.reset()
    # admitted at the strong tier's estimate: (prompt + 1,000 output tokens) x 1e-5 ~ 0.01 USD
    key = gw.new_key(max_budget=0.05)
    weak.script(Reply(text="NO-GOOD", usage=(100_000, 0)))  # 0.10 USD at the weak tier's price
    r = _ask(gw, {"max_tokens": 1000}, False, key)
    assert r.status == 200, r.body
    assert r.headers["x-llmswitch-model-group"] == "weak"
    assert "not escalated: the key's budget cannot take 'strong' too" in r.headers["x-llmswitch-route-reason"]
    assert strong.requests == []
    # a key with room for both is escalated
    roomy = gw.new_key(max_budget=5.0)
    weak.script(Reply(text="NO-GOOD", usage=(100_000, 0)))
    strong.script(Reply(text="fine"))
    r = _ask(gw, {"max_tokens": 1000}, False, roomy)
    assert r.headers["x-llmswitch-model-group"] == "strong"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("face", ["anthropic", "gemini"])
def test_a_cascade_escalates_in_the_other_dialects(
    gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream], face: str, stream: bool
) -> None:
    from gateway_harness import chat_request

    weak, strong = tiers
    weak.reset()
    strong.reset()
    weak.script(Reply(text="I'm sorry, but I can't help with that."))
    strong.script(Reply(text="Paris is in France."))
    path, body = chat_request(face, "cascade", "Where is Paris?", stream=stream)
    r = gw.call("POST", path, body)
    assert r.status == 200, r.body
    assert r.headers["x-llmswitch-model-group"] == "strong"
    assert r.headers["x-llmswitch-route-cascade"] == "refusal"
    assert len(weak.requests) == 1 and len(strong.requests) == 1
    assert b"sorry" not in r.body and b"Paris" in r.body  # the refusal never reached the client


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_failing_weak_tier_escalates(
    gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream], stream: bool
) -> None:
    """The weak tier failing (an error answer; a stream cut before the checks could judge it) counts as a
    failed check: the strong tier answers."""
    weak, strong = tiers
    weak.reset()
    strong.reset()
    if stream:
        weak.script(Reply(text="a long answer that will be cut off before it ends", chunk_size=4, cut_after=3))
    else:
        weak.script(Reply(status=401, message="bad key"))
    strong.script(Reply(text="the strong answer"))
    r = _ask(gw, {}, stream)
    assert r.status == 200, r.body
    assert r.headers["x-llmswitch-model-group"] == "strong"
    assert r.headers["x-llmswitch-route-cascade"] == "error"
    assert _answer(r.body, stream)[0] == "the strong answer"
    assert len(strong.requests) == 1


def test_a_wrong_request_is_not_escalated(gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream]) -> None:
    weak, strong = tiers
    weak.reset()
    strong.reset()
    weak.script(Reply(status=400, message="bad request"))
    r = _ask(gw, {}, False)
    assert r.status == 400, r.body
    assert strong.requests == []
