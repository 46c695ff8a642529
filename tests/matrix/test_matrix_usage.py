"""Usage is complete (issue 14, section 4), from every family to every client, and priced.

The families' answers and the per-client checks are those of ``tests/server/test_usage_dialects.py``
(each provider's usage written as the provider writes it: OpenAI's audio and predicted-output counts,
Anthropic's billed web searches, tier and region, Gemini's tool-use prompt and modalities); this module
adds the SDK as a client, Ollama's native counts as a family, and the price the SDK puts on each answer.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from harness import Ask, ServedGateway, ask, matrix, ollama_answer, ollama_stream, the_request
from test_usage_dialects import _expected_cost, check_anthropic, check_gemini, check_openai, upstream_reply

from llmswitch.testing import FakeUpstream, Reply

CHECK = {"openai": check_openai, "sdk": check_openai, "anthropic": check_anthropic, "gemini": check_gemini}
USAGE_ASK = Ask(
    openai={"messages": [{"role": "user", "content": "Name a colour."}], "stream_options": {"include_usage": True}},
    anthropic={"max_tokens": 64, "messages": [{"role": "user", "content": "Name a colour."}]},
    gemini={"contents": "Name a colour.", "config": {}},
)


def family_reply(family: str, stream: bool) -> Reply:
    if family == "ollama":
        counts = {"prompt_eval_count": 31, "eval_count": 12}
        return Reply(
            body=ollama_stream({"content": "Red."}, **counts)
            if stream
            else ollama_answer({"content": "Red."}, **counts)
        )
    raw = upstream_reply(family, stream)
    return Reply(body=raw.body, content_type=raw.content_type)


def as_dict(usage: Any) -> dict[str, Any]:
    """A usage as the test_usage_dialects checks read it (the openai SDK's model_dump, unset fields kept)."""
    return json.loads(json.dumps(usage, default=lambda o: o.model_dump()))


@pytest.mark.parametrize(("client", "family", "stream"), list(matrix(families=("openai", "anthropic", "gemini"))))
def test_every_client_sees_the_usage_its_dialect_carries(
    gw: ServedGateway, up: FakeUpstream, client: str, family: str, stream: bool
) -> None:
    up.script(family_reply(family, stream))
    ask_ = USAGE_ASK
    if not stream and client in ("openai", "sdk"):
        ask_ = Ask(openai={"messages": USAGE_ASK.openai["messages"]})  # type: ignore[index]
    seen = ask(client, f"m-{family}", ask_, stream=stream, gw=gw, up=up)
    assert seen.status == 200, seen.error
    assert seen.usage is not None
    usage = seen.usage
    if client in ("openai", "sdk"):
        usage = as_dict(seen.raw[-1].usage if stream else seen.raw[0].usage)
        usage.setdefault("_tier", getattr(seen.raw[0], "service_tier", None))
    if client == "gemini":
        usage = seen.raw[-1].usage_metadata.model_dump(exclude_none=True)
    CHECK[client](family, usage, stream)
    the_request(up, family)
    want = _expected_cost(family)
    if want is not None and not stream:
        # priced: the gateway's header, the SDK's result.cost (web searches and the tool-use prompt included)
        got = seen.raw[0].cost if client == "sdk" else Decimal(seen.headers["x-llmswitch-cost"])
        assert Decimal(str(got)).quantize(Decimal("1e-10")) == want.quantize(Decimal("1e-10"))


@pytest.mark.parametrize(
    ("client", "stream"), [(c, s) for c in ("openai", "anthropic", "gemini", "sdk") for s in (False, True)]
)
def test_ollamas_native_counts_reach_every_client(
    gw: ServedGateway, up: FakeUpstream, client: str, stream: bool
) -> None:
    up.script(family_reply("ollama", stream))
    seen = ask(client, "m-ollama", USAGE_ASK, stream=stream, gw=gw, up=up)
    assert (seen.status, seen.text) == (200, "Red."), seen.error
    assert seen.usage is not None
    counts = {
        "openai": ("prompt_tokens", "completion_tokens"),
        "sdk": ("prompt_tokens", "completion_tokens"),
        "anthropic": ("input_tokens", "output_tokens"),
        "gemini": ("prompt_token_count", "candidates_token_count"),
    }[client]
    assert (seen.usage[counts[0]], seen.usage[counts[1]]) == (31, 12)
    the_request(up, "ollama")
