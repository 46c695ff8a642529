"""Log probabilities (issue 14, section 3), whole and streamed: OpenAI's ``choices[].logprobs``, Gemini's
``logprobsResult``, Ollama's ``logprobs``, asked for in each client's words and carried to each client that
can show them; Anthropic has none, so asking for them there is the policy's 400 or, with drop_params,
dropped and reported. Ollama's native API is ``ollama_chat/`` here: ``ollama/`` may be its
OpenAI-compatible API (an api_base ending in /v1), which has no logprobs, so the policy refuses them there.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import (
    Ask,
    Seen,
    ServedGateway,
    ask,
    dropped,
    gemini_answer,
    gemini_candidate,
    gemini_stream,
    matrix,
    ollama_answer,
    ollama_lines,
    openai_answer,
    openai_stream,
    refused_then_dropped,
    the_request,
)

from llmswitch.testing import FakeUpstream, Reply

PROMPT = "Say hello."
# (token, logprob, the runner-up)
TOKENS = [("Hel", -0.25, ("Hi", -1.5)), ("lo", -0.5, ("ya", -2.0)), ("!", -0.125, (".", -2.5))]
TEXT = "".join(t for t, _, _ in TOKENS)

ASKS = Ask(
    openai={"messages": [{"role": "user", "content": PROMPT}], "logprobs": True, "top_logprobs": 2},
    gemini={"contents": PROMPT, "config": {"response_logprobs": True, "logprobs": 2}},
)


def openai_entry(token: str, logprob: float, alt: tuple[str, float]) -> dict[str, Any]:
    def one(t: str, lp: float) -> dict[str, Any]:
        return {"token": t, "logprob": lp, "bytes": list(t.encode())}

    return one(token, logprob) | {"top_logprobs": [one(token, logprob), one(*alt)]}


def gemini_result(tokens: list[Any]) -> dict[str, Any]:
    return {
        "topCandidates": [
            {"candidates": [{"token": t, "logProbability": lp}, {"token": a[0], "logProbability": a[1]}]}
            for t, lp, a in tokens
        ],
        "chosenCandidates": [{"token": t, "logProbability": lp} for t, lp, _ in tokens],
    }


def upstream_reply(family: str, stream: bool) -> Reply:
    """The family's own answer with log probabilities, as its API sends it."""
    if family == "openai":
        entries = [openai_entry(*t) for t in TOKENS]
        if not stream:
            return Reply(body=openai_answer({"content": TEXT}, logprobs={"content": entries, "refusal": None}))
        deltas = [{"role": "assistant", "content": TOKENS[0][0]}] + [{"content": t} for t, _, _ in TOKENS[1:]]
        return Reply(body=openai_stream(deltas, logprobs=[{"content": [e], "refusal": None} for e in entries]))
    if family == "gemini":
        if not stream:
            cand = gemini_candidate([{"text": TEXT}], "STOP", logprobsResult=gemini_result(TOKENS), avgLogprobs=-0.29)
            return Reply(body=gemini_answer(cand))
        chunks = [
            gemini_candidate(
                [{"text": t[0]}], "STOP" if i == len(TOKENS) - 1 else None, logprobsResult=gemini_result([t])
            )
            for i, t in enumerate(TOKENS)
        ]
        return Reply(body=gemini_stream(*chunks))
    entries = [openai_entry(*t) for t in TOKENS]  # Ollama's entries have OpenAI's shape
    if not stream:
        return Reply(body=ollama_answer({"content": TEXT}, logprobs=entries))
    lines = ollama_lines(*({"content": t} for t, _, _ in TOKENS))
    for line, entry in zip(lines, entries, strict=True):
        line["logprobs"] = [entry]
    return Reply(body="".join(json.dumps(line) + "\n" for line in lines))


def asked_upstream(family: str, body: dict[str, Any]) -> tuple[Any, Any]:
    """(whether log probabilities were asked for, how many alternatives) in the family's request."""
    if family == "gemini":
        gc = body.get("generationConfig") or {}
        return gc.get("responseLogprobs"), gc.get("logprobs")
    return body.get("logprobs"), body.get("top_logprobs")


def tokens_seen(seen: Seen) -> list[tuple[str, float]]:
    return [(t["token"], t["logprob"]) for t in seen.logprobs or []]


@pytest.mark.parametrize(
    ("client", "family", "stream"),
    list(matrix(clients=("openai", "gemini", "sdk"), families=("openai", "gemini", "ollama_chat"))),
)
def test_logprobs_reach_the_client(gw: ServedGateway, up: FakeUpstream, client: str, family: str, stream: bool) -> None:
    up.script(upstream_reply(family, stream))
    seen = ask(client, f"m-{family}", ASKS, stream=stream, gw=gw, up=up)
    assert seen.status == 200, seen.error
    assert seen.text == TEXT
    assert tokens_seen(seen) == [(t, lp) for t, lp, _ in TOKENS]
    assert asked_upstream(family, the_request(up, family).json) == (True, 2)
    if (client, family, stream) == ("gemini", "gemini", False):
        assert seen.raw[0].candidates[0].avg_logprobs == -0.29  # Gemini's own average comes back too
    if client != "gemini":
        # the alternatives come along, in OpenAI's shape (with each token's bytes)
        assert [[a["token"] for a in t["top_logprobs"]] for t in seen.logprobs or []] == [
            [t, a[0]] for t, _, a in TOKENS
        ]
        assert all(t["bytes"] == list(t["token"].encode()) for t in seen.logprobs or [])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openai_logprobs_are_the_same_on_the_fast_and_the_full_path(
    gw: ServedGateway, up: FakeUpstream, stream: bool
) -> None:
    got = []
    for full in (False, True):
        up.reset()
        up.script(upstream_reply("openai", stream))
        seen = ask("openai", "m-openai", ASKS, stream=stream, gw=gw, drop=full)
        assert seen.status == 200, seen.error
        got.append((seen.text, seen.logprobs, seen.finish))
    assert got[0] == got[1]


# the caller's own name for the field Anthropic cannot take
FIELD = {"openai": "logprobs", "sdk": "logprobs", "gemini": "generationConfig.responseLogprobs"}


@pytest.mark.parametrize("client", ["openai", "gemini", "sdk"])
def test_logprobs_to_anthropic_are_refused_or_dropped(gw: ServedGateway, up: FakeUpstream, client: str) -> None:
    up.script(Reply(text=TEXT))
    refused, kept, body = refused_then_dropped(client, "anthropic", ASKS, gw=gw, up=up)
    assert FIELD[client] in refused.error
    assert kept.text == TEXT and kept.logprobs is None
    assert FIELD[client] in dropped(kept)
    assert "logprobs" not in body and "top_logprobs" not in body
