"""OpenAI refusals (issue 14, section 3): an OpenAI model's ``refusal`` reaches every client, whole and
streamed, on the fast path and the full path alike; and an assistant message with a ``refusal`` and no
content, in the history, is accepted and sent on to every family.

OpenAI clients (and the SDK) read it as ``message.refusal`` / ``delta.refusal``; Anthropic and Gemini
clients, whose APIs have no refusal field, read it as text.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness import (
    CLIENTS,
    FAMILIES,
    Ask,
    ServedGateway,
    ask,
    openai_answer,
    openai_stream,
    plain,
    the_request,
)

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
