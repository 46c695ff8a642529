"""OpenAI refusals (issue 14, section 3): an OpenAI model's ``refusal`` reaches every client, whole and
streamed, on the fast path and the full path alike; and an assistant message with a ``refusal`` and no
content, in the history, is accepted and sent on to every family.

OpenAI clients (and the SDK) read it as ``message.refusal`` / ``delta.refusal``; Anthropic and Gemini
clients, whose APIs have no refusal field, read it as text.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from harness import (
    CLIENTS,
    FAMILIES,
    MASTER_KEY,
    Ask,
    ServedGateway,
    ask,
    openai_answer,
    openai_stream,
    plain,
    spec,
    the_request,
)

import llmswitch
from llmswitch.testing import FakeUpstream, Reply

REFUSAL = "I'm sorry, I can't help with that — ünïcödé ✓"
PIECES = ["", "I'm sorry, I can't", " help with that", " — ünïcödé ✓"]
FINISH = {"openai": "stop", "sdk": "stop", "anthropic": "end_turn", "gemini": "STOP"}


def refusal_reply(stream: bool) -> Reply:
    if stream:
        first = {"role": "assistant", "content": None, "refusal": PIECES[0]}
        return Reply(body=openai_stream([first] + [{"refusal": p} for p in PIECES[1:]]))
    return Reply(body=openai_answer({"refusal": REFUSAL}))


def paths(client: str) -> list[str]:
    # an OpenAI client to an OpenAI deployment is relayed (fast path) unless the policy must look at the
    # body (drop_params in it): both must show the same thing
    return ["fast", "full"] if client == "openai" else ["full"]


def cases() -> list[Any]:
    return [
        pytest.param(client, stream, path, id=f"{client}-{path}-{'stream' if stream else 'whole'}")
        for client in CLIENTS
        for stream in (False, True)
        for path in paths(client)
    ]


@pytest.mark.parametrize(("client", "stream", "path"), cases())
def test_an_openai_refusal_reaches_every_client(
    gw: ServedGateway, up: FakeUpstream, client: str, stream: bool, path: str
) -> None:
    up.script(refusal_reply(stream))
    seen = ask(client, "m-openai", plain("How do I pick a lock?"), stream=stream, gw=gw, up=up, drop=path == "full")
    assert seen.status == 200, seen.error
    if client in ("openai", "sdk"):
        assert (seen.refusal, seen.text) == (REFUSAL, "")
    else:
        assert seen.text == REFUSAL  # no refusal field in these APIs: it is what the model said
    assert seen.finish == FINISH[client]
    if client == "sdk" and stream:
        # LiteLLM's helper adds the chunks up to the whole answer
        assert llmswitch.stream_chunk_builder(seen.raw).choices[0].message.refusal == REFUSAL
    the_request(up, "openai")
    assert ("x-llmswitch-deployment" in seen.headers) is (client != "sdk")


HISTORY = [
    {"role": "user", "content": "How do I pick a lock?"},
    {"role": "assistant", "content": None, "refusal": "I can't help with that."},
    {"role": "user", "content": "Then tell me about locksmiths."},
]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("client", ["openai", "sdk"])
def test_a_refusal_in_the_history_is_accepted_by_every_family(
    gw: ServedGateway, up: FakeUpstream, client: str, family: str
) -> None:
    up.script(Reply(text="Locksmiths are…"))
    seen = ask(client, f"m-{family}", Ask(openai={"messages": HISTORY}), gw=gw, up=up)
    assert seen.status == 200, seen.error
    assert seen.text == "Locksmiths are…"
    body = the_request(up, family).json
    if family == "openai":
        (assistant,) = [m for m in body["messages"] if m["role"] == "assistant"]
        assert assistant["refusal"] == "I can't help with that."
        assert assistant.get("content") is None
    elif family == "anthropic":
        assert body["messages"][1] == {"role": "assistant", "content": "I can't help with that."}
    elif family == "gemini":
        assert body["contents"][1] == {"role": "model", "parts": [{"text": "I can't help with that."}]}
    else:
        assert body["messages"][1]["content"] == "I can't help with that."


def test_a_refusal_content_part_in_the_history_is_a_refusal_to_openai(gw: ServedGateway, up: FakeUpstream) -> None:
    """The other way OpenAI lets a caller write it: a ``refusal`` content part (on the full path)."""
    history = [dict(m) for m in HISTORY]
    history[1] = {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help with that."}]}
    up.script(Reply(text="ok"))
    seen = ask("openai", "m-openai", Ask(openai={"messages": history}), gw=gw, drop=True)
    assert seen.status == 200, seen.error
    assistant = the_request(up, "openai").json["messages"][1]
    assert assistant["refusal"] == "I can't help with that." and assistant.get("content") is None


def test_an_openai_refusal_is_a_refusal_part_to_a_responses_client(gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(refusal_reply(False))
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as client:
        r = client.responses.create(model="m-openai", input="How do I pick a lock?")
    (message,) = [item for item in r.output if item.type == "message"]
    assert [(c.type, getattr(c, "refusal", None)) for c in message.content] == [("refusal", REFUSAL)]


def test_a_streamed_openai_refusal_is_a_refusal_part_to_a_responses_client(gw: ServedGateway, up: FakeUpstream) -> None:
    up.script(refusal_reply(True))
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as client:
        events = list(client.responses.create(model="m-openai", input="How do I pick a lock?", stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.refusal.delta")
    (done,) = [e for e in events if e.type == "response.refusal.done"]
    assert deltas == done.refusal == REFUSAL
    final = events[-1].response
    (message,) = [item for item in final.output if item.type == "message"]
    assert [(c.type, getattr(c, "refusal", None)) for c in message.content] == [("refusal", REFUSAL)]


# ---------------------------------------------------------------- OpenAI's Responses API as the upstream

RESPONSE_HEAD = {"id": "resp_m1", "object": "response", "created_at": 1764979200, "model": "o3-pro"}
REFUSAL_ITEM = {"id": "msg_m1", "type": "message", "status": "completed", "role": "assistant"}
RESPONSE_USAGE = {"input_tokens": 9, "output_tokens": 4, "total_tokens": 13}


def responses_refusal(stream: bool) -> Reply:
    part = {"type": "refusal", "refusal": REFUSAL}
    final = RESPONSE_HEAD | {
        "status": "completed",
        "output": [REFUSAL_ITEM | {"content": [part]}],
        "usage": RESPONSE_USAGE,
    }
    if not stream:
        return Reply(body=json.dumps(final))
    at = {"item_id": "msg_m1", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": RESPONSE_HEAD | {"status": "in_progress", "output": []}},
        {"type": "response.output_item.added", "output_index": 0, "item": REFUSAL_ITEM | {"content": []}},
        {"type": "response.content_part.added", **at, "part": {"type": "refusal", "refusal": ""}},
        *({"type": "response.refusal.delta", **at, "delta": piece} for piece in PIECES[1:]),
        {"type": "response.refusal.done", **at, "refusal": REFUSAL},
        {"type": "response.content_part.done", **at, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": REFUSAL_ITEM | {"content": [part]}},
        {"type": "response.completed", "response": final},
    ]
    numbered = [e | {"sequence_number": n} for n, e in enumerate(events)]
    return Reply(body="".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in numbered))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_refusal_from_the_responses_api_is_a_refusal_to_chat_callers(up: FakeUpstream, stream: bool) -> None:
    up.script(responses_refusal(stream))
    kwargs: dict[str, Any] = {"api_base": up.openai_base, "api_key": "k", "num_retries": 0, "stream": stream}
    r = llmswitch.completion("openai/responses/o3-pro", [{"role": "user", "content": "Pick a lock?"}], **kwargs)
    if stream:
        chunks = list(r)
        assert "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices) == REFUSAL
    else:
        assert (r.choices[0].message.refusal, r.choices[0].message.content) == (REFUSAL, None)
    (rec,) = up.requests
    assert rec.path == "/v1/responses"


def test_a_refusal_in_the_history_is_the_assistants_text_to_the_responses_api(up: FakeUpstream) -> None:
    """A ``refusal`` part is only valid in an output message with the API's own id: the text goes instead."""
    up.script(responses_refusal(False))
    llmswitch.completion("openai/responses/o3-pro", HISTORY, api_base=up.openai_base, api_key="k", num_retries=0)
    problems = list(spec("openai", "CreateResponse").iter_errors(up.requests[0].json))
    assert not problems, problems
    (assistant,) = [i for i in up.requests[0].json["input"] if i.get("role") == "assistant"]
    assert assistant["content"] == "I can't help with that."
