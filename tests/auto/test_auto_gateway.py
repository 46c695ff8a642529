"""An auto group through the gateway, for the three client dialects, whole and streamed: the tier that
answered is the one the decision named, in ``x-llmswitch-model-group``; the decision, its score and its
reason are in the ``x-llmswitch-route*`` headers, the spend log's metadata and the metrics counter; the
``x-llmswitch-route`` header overrides the decision, and a key never reaches a tier it may not use."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from auto_harness import STRONG_KEY, WEAK_KEY, config
from gateway_harness import FACES, MASTER_KEY, ServedGateway, chat_request
from google import genai
from google.genai import types as gtypes

from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture(scope="module")
def tiers() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as weak, FakeUpstream() as strong:
        yield weak, strong


@pytest.fixture(scope="module")
def gw(tiers: tuple[FakeUpstream, FakeUpstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    store = tmp_path_factory.mktemp("auto") / "store.db"
    with ServedGateway(config(*tiers, str(store))) as served:
        yield served


def _script(tiers: tuple[FakeUpstream, FakeUpstream]) -> None:
    """Each tier answers the next request with its own name (a reply left over from before is dropped)."""
    weak, strong = tiers
    weak.reset()
    strong.reset()
    weak.script(Reply(text="answer from the weak tier", usage=(10, 5)))
    strong.script(Reply(text="answer from the strong tier", usage=(10, 5)))


def _text(face: str, body: bytes, stream: bool) -> str:
    if not stream:
        data = json.loads(body)
        if face == "openai":
            return str(data["choices"][0]["message"]["content"])
        if face == "anthropic":
            return "".join(b["text"] for b in data["content"] if b["type"] == "text")
        return "".join(p.get("text", "") for p in data["candidates"][0]["content"]["parts"])
    out = []
    for line in body.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        ev = json.loads(line[6:])
        if face == "openai":
            out += [c["delta"].get("content") or "" for c in ev.get("choices", [])]
        elif face == "anthropic":
            if ev.get("type") == "content_block_delta" and ev["delta"].get("type") == "text_delta":
                out.append(ev["delta"]["text"])
        else:
            for cand in ev.get("candidates", []):
                out += [p.get("text", "") for p in cand.get("content", {}).get("parts", [])]
    return "".join(out)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("group,tier", [("auto-weak", "weak"), ("auto-strong", "strong")])
def test_each_dialect_reaches_the_decided_tier(
    gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream], face: str, stream: bool, group: str, tier: str
) -> None:
    weak, strong = tiers
    _script(tiers)
    path, body = chat_request(face, group, "What is 17 times 23?", stream=stream)
    r = gw.call("POST", path, body)
    assert r.status == 200, r.body
    assert _text(face, r.body, stream) == f"answer from the {tier} tier"
    assert r.headers["x-llmswitch-model-group"] == tier
    assert r.headers["x-llmswitch-route"] == tier
    assert r.headers["x-llmswitch-model"] == f"{tier}-model"
    assert float(r.headers["x-llmswitch-route-score"]) >= 0.0
    rel = "<" if tier == "weak" else ">="
    assert f" {rel} " in r.headers["x-llmswitch-route-reason"]
    sent = weak if tier == "weak" else strong
    other = strong if tier == "weak" else weak
    assert len(sent.requests) == 1
    assert other.requests == []  # the other tier was not called
    upstream_body = json.loads(sent.requests[-1].body)
    assert upstream_body["model"] == f"{tier}-model"
    assert sent.requests[-1].headers["authorization"] == f"Bearer {WEAK_KEY if tier == 'weak' else STRONG_KEY}"


@pytest.mark.parametrize("face", FACES)
@pytest.mark.parametrize("wanted", ["strong", "weak"])
def test_the_route_header_overrides_the_decision(
    gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream], face: str, wanted: str
) -> None:
    _script(tiers)
    group = "auto-weak" if wanted == "strong" else "auto-strong"
    path, body = chat_request(face, group, "hello")
    r = gw.call("POST", path, body, headers={"x-llmswitch-route": wanted})
    assert r.status == 200, r.body
    assert r.headers["x-llmswitch-model-group"] == wanted
    assert r.headers["x-llmswitch-route"] == wanted
    assert "override" in r.headers["x-llmswitch-route-reason"]
    assert "x-llmswitch-route-score" not in r.headers  # not scored: the caller decided


def test_a_body_route_field_overrides_and_never_reaches_the_provider(
    gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream]
) -> None:
    _script(tiers)
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0)
    with client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto-weak", messages=[{"role": "user", "content": "hi"}], extra_body={"route": "strong"}
        )
    assert raw.headers["x-llmswitch-model-group"] == "strong"
    assert raw.parse().choices[0].message.content == "answer from the strong tier"
    assert "route" not in json.loads(tiers[1].requests[-1].body)


def test_the_official_sdks_see_the_tier_that_answered(
    gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream]
) -> None:
    _script(tiers)
    oc = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0)
    with oc:
        raw = oc.chat.completions.with_raw_response.create(
            model="auto-strong", messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.headers["x-llmswitch-model-group"] == "strong"
        assert raw.parse().choices[0].message.content == "answer from the strong tier"
        _script(tiers)
        chunks = oc.chat.completions.create(
            model="auto-weak", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "answer from the weak tier"
    _script(tiers)
    ac = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0)
    with ac:
        araw = ac.messages.with_raw_response.create(
            model="auto-strong", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
        assert araw.headers["x-llmswitch-model-group"] == "strong"
        msg = araw.parse()
        assert msg.content[0].type == "text" and msg.content[0].text == "answer from the strong tier"
        _script(tiers)
        with ac.messages.stream(model="auto-weak", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
            assert "".join(s.text_stream) == "answer from the weak tier"
    _script(tiers)
    gc = genai.Client(api_key=MASTER_KEY, http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta"))
    g = gc.models.generate_content(model="auto-strong", contents="hi")
    assert g.text == "answer from the strong tier"
    _script(tiers)
    parts = gc.models.generate_content_stream(model="auto-weak", contents="hi")
    assert "".join(p.text or "" for p in parts) == "answer from the weak tier"


def test_the_default_group_scores_and_says_why(gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream]) -> None:
    """The defaults (hybrid scorer, 95% quality target): whichever tier the score picks answers, and the
    headers say the score, the threshold and the comparison that decided."""
    for prompt in ("hi", "Prove that there are infinitely many primes, step by step, and explain why."):
        _script(tiers)
        path, body = chat_request("openai", "auto", prompt)
        r = gw.call("POST", path, body)
        assert r.status == 200, r.body
        tier = r.headers["x-llmswitch-route"]
        assert r.headers["x-llmswitch-model-group"] == tier
        assert _text("openai", r.body, False) == f"answer from the {tier} tier"
        score, threshold = float(r.headers["x-llmswitch-route-score"]), float(r.headers["x-llmswitch-route-threshold"])
        assert (tier == "strong") == (score >= threshold)


def test_a_key_never_reaches_a_tier_it_may_not_use(gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream]) -> None:
    key = gw.new_key(models=["auto-strong", "weak"])
    _script(tiers)
    path, body = chat_request("openai", "auto-strong", "hi")
    r = gw.call("POST", path, body, key=key)
    assert r.status == 200, r.body
    assert r.headers["x-llmswitch-model-group"] == "weak"  # the decision said strong; the key may not
    assert "may not use 'strong'" in r.headers["x-llmswitch-route-reason"]
    _script(tiers)
    r = gw.call("POST", path, body, key=key, headers={"x-llmswitch-route": "strong"})
    assert r.headers["x-llmswitch-model-group"] == "weak"  # nor by asking for it
    only_auto = gw.new_key(models=["auto-strong"])
    r = gw.call("POST", path, body, key=only_auto)
    assert r.status == 403, r.body  # neither tier


def _spend_logs(gw: ServedGateway, key: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        rows: list[dict[str, Any]] = gw.call("GET", f"/spend/logs?api_key={key}").json()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_decisions_reach_the_spend_log_and_the_metrics(
    gw: ServedGateway, tiers: tuple[FakeUpstream, FakeUpstream]
) -> None:
    key = gw.new_key()
    _script(tiers)
    path, body = chat_request("openai", "auto-strong", "hi")
    assert gw.call("POST", path, body, key=key).status == 200
    (row,) = _spend_logs(gw, key, 1)
    assert row["model_group"] == "auto-strong"
    assert row["model"] == "strong-model"
    route = row["route"]
    assert (route["tier"], route["group"], route["source"]) == ("strong", "strong", "classifier")
    assert route["score"] >= route["threshold"]
    metrics = gw.call("GET", "/metrics").body.decode()
    assert (
        'llmswitch_auto_route_decisions_total{model_group="auto-strong",tier="strong",source="classifier"}' in metrics
    )


def test_auto_groups_are_listed(gw: ServedGateway) -> None:
    names = {m["id"] for m in gw.call("GET", "/v1/models").json()["data"]}
    assert {"auto", "auto-weak", "auto-strong", "weak", "strong"} <= names
