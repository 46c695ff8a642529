"""Guardrails through the gateway, configured in LiteLLM's format, for the three client SDKs, whole and
streamed: a masked prompt reaches the upstream masked, a refused one is a 400 in the caller's dialect
naming the guardrail (never the value), answers are cleaned, masked values come back for the same
caller, and no test value is in any log line, journal or spend record."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from llmswitch.testing import FakeUpstream, Reply

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))  # the gateway harness of tests/server
from gateway_harness import (
    FACES,
    GROUPS,
    MASTER_KEY,
    ServedGateway,
    chat_request,
    dialect_error,
    gateway_config,
    sent_upstream,
)

EMAIL = "grace.hopper@navy-example.org"
AWS = "AKIAQWERTYUIOP123456"
CARD = "4242 4242 4242 4242"
ANSWER_KEY = "AKIAZXCVBNMASDFG7890"
PROMPT = f"Write to {EMAIL} about key {AWS} please"
XSS = '<p onmouseover="steal()">Hello</p><script>alert(document.cookie)</script><a href="javascript:x()">go</a>'

GUARDRAILS = """guardrails:
  - guardrail_name: no-cards
    litellm_params: {guardrail: presidio, mode: pre_call, pii_entities_config: {CREDIT_CARD: BLOCK}}
  - guardrail_name: mask-personal-data
    litellm_params: {guardrail: presidio, mode: pre_call, default_on: true, secrets: mask}
  - guardrail_name: clean-html
    litellm_params: {guardrail: html_sanitizer, mode: post_call, default_on: true}
  - guardrail_name: give-back
    litellm_params: {guardrail: presidio, mode: pre_call, output_parse_pii: true}
  - guardrail_name: falcon
    litellm_params: {guardrail: banned_keywords, mode: during_call, banned_keywords_list: [project falcon]}
  - guardrail_name: answer-secrets
    litellm_params: {guardrail: hide-secrets, mode: post_call}
"""


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("llmswitch"):  # the gateway's logs (the client SDKs log their own requests)
            self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    upstream.reset()
    yield upstream
    upstream.reset()


@pytest.fixture(scope="module")
def logs() -> Iterator[_Collect]:
    handler = _Collect()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("guarded")


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, workdir: Path, logs: _Collect) -> Iterator[ServedGateway]:
    config = gateway_config(upstream, str(workdir / "store.db"), num_retries=0) + GUARDRAILS
    import os

    old = os.environ.get("LLMSWITCH_JOURNAL_DIR")
    os.environ["LLMSWITCH_JOURNAL_DIR"] = str(workdir / "journal")
    try:
        with (workdir / "access.log").open("w") as access, ServedGateway(config) as served:
            served.gateway.access._stream = access  # the access log lines, to grep as well
            yield served
    finally:
        if old is None:
            os.environ.pop("LLMSWITCH_JOURNAL_DIR", None)
        else:
            os.environ["LLMSWITCH_JOURNAL_DIR"] = old


def ask(gw: ServedGateway, face: str, text: str, *, stream: bool, key: str = MASTER_KEY) -> str:
    """The answer's text, through the official SDK of ``face``."""
    group = GROUPS[face]
    if face == "openai":
        with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0) as oc:
            msgs: Any = [{"role": "user", "content": text}]
            if stream:
                chunks = oc.chat.completions.create(model=group, messages=msgs, stream=True)
                return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            return oc.chat.completions.create(model=group, messages=msgs).choices[0].message.content or ""
    if face == "anthropic":
        with anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0) as ac:
            amsgs: Any = [{"role": "user", "content": text}]
            if stream:
                with ac.messages.stream(model=group, max_tokens=256, messages=amsgs) as s:
                    return "".join(s.text_stream)
            r = ac.messages.create(model=group, max_tokens=256, messages=amsgs)
            return "".join(b.text for b in r.content if b.type == "text")
    gc = genai.Client(api_key=key, http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta"))
    if stream:
        return "".join(c.text or "" for c in gc.models.generate_content_stream(model=group, contents=text))
    return gc.models.generate_content(model=group, contents=text).text or ""


def upstream_prompt(up: FakeUpstream) -> str:
    assert up.requests, "the upstream was not called"
    return sent_upstream(up)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("face", FACES)
def test_a_masked_prompt_reaches_the_upstream_masked(
    gw: ServedGateway, up: FakeUpstream, face: str, stream: bool
) -> None:
    answer = ask(gw, face, PROMPT, stream=stream)
    sent = upstream_prompt(up)
    assert EMAIL not in sent and AWS not in sent
    assert "<EMAIL_ADDRESS_1>" in sent and "<AWS_ACCESS_KEY_1>" in sent
    # the fake upstream echoes the prompt it got: the masked one, its tokens kept through the HTML cleaning
    assert answer == "Write to <EMAIL_ADDRESS_1> about key <AWS_ACCESS_KEY_1> please"


@pytest.mark.parametrize("face", FACES)
def test_a_refused_prompt_is_a_400_in_the_callers_dialect_naming_the_guardrail(
    gw: ServedGateway, up: FakeUpstream, face: str
) -> None:
    path, body = chat_request(face, GROUPS[face], f"pay with {CARD}")
    body["guardrails"] = ["no-cards"]
    r = gw.call("POST", path, body)
    assert r.status == 400, r.body
    _, message = dialect_error(face, r)
    assert "no-cards" in message and "CREDIT_CARD" in message
    assert CARD not in r.body.decode() and CARD.replace(" ", "") not in r.body.decode()
    assert up.requests == []


@pytest.mark.parametrize("face", FACES)
def test_an_unknown_guardrail_in_the_request_is_named(gw: ServedGateway, up: FakeUpstream, face: str) -> None:
    path, body = chat_request(face, GROUPS[face])
    body["guardrails"] = ["nope"]
    r = gw.call("POST", path, body)
    assert r.status == 400
    assert "'nope'" in dialect_error(face, r)[1]
    assert up.requests == []


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("face", FACES)
def test_html_in_answers_is_sanitized(gw: ServedGateway, up: FakeUpstream, face: str, stream: bool) -> None:
    up.script(Reply(text=XSS, chunk_size=5))  # streamed 5 characters at a time: tags split across chunks
    answer = ask(gw, face, "say hello", stream=stream)
    assert answer == '<p>Hello</p><a rel="noopener noreferrer">go</a>'


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("face", FACES)
def test_a_secret_split_across_stream_chunks_is_masked(
    gw: ServedGateway, up: FakeUpstream, face: str, stream: bool
) -> None:
    up.script(Reply(text=f"your key is {ANSWER_KEY}, keep it safe", chunk_size=3))
    path, body = chat_request(face, GROUPS[face], "what is my key", stream=stream)
    body["guardrails"] = ["answer-secrets"]
    r = gw.call("POST", path, body)
    assert r.status == 200, r.body
    text = r.body.decode()
    assert ANSWER_KEY not in text.replace('"', "").replace("\n", "")
    if not stream:
        assert "<AWS_ACCESS_KEY_1>" in text or "\\u003cAWS_ACCESS_KEY_1\\u003e" in text


def test_a_keys_guardrails_restore_masked_values_for_its_caller(gw: ServedGateway, up: FakeUpstream) -> None:
    key = gw.new_key(guardrails=["give-back"])
    info = gw.call("GET", f"/key/info?key={key}").json()["info"]
    assert info["metadata"]["guardrails"] == ["give-back"]
    for stream in (False, True):
        up.reset()
        answer = ask(gw, "openai", PROMPT, stream=stream, key=key)
        assert answer == PROMPT  # the caller gets its own values back...
        sent = upstream_prompt(up)
        assert EMAIL not in sent and AWS not in sent  # ...which never left the gateway
    # the master key (no give-back) gets the tokens
    assert ask(gw, "openai", PROMPT, stream=False) != PROMPT
    r = gw.call("POST", "/key/generate", {"guardrails": ["nope"]})
    assert r.status == 400 and "nope" in r.json()["error"]["message"]


def test_a_teams_guardrails_apply_to_its_keys(gw: ServedGateway, up: FakeUpstream) -> None:
    r = gw.call("POST", "/team/new", {"team_id": "careful", "guardrails": ["no-cards"]})
    assert r.status == 200, r.body
    key = gw.new_key(team_id="careful")
    deadline = time.monotonic() + 5
    while True:  # the team reaches the gateway's memory on its next refresh
        path, body = chat_request("openai", GROUPS["openai"], f"pay with {CARD}")
        r = gw.call("POST", path, body, key=key)
        if r.status == 400 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status == 400 and "no-cards" in r.json()["error"]["message"]


@pytest.mark.parametrize("face", FACES)
def test_a_during_call_guardrail_refuses_before_the_client_sees_anything(
    gw: ServedGateway, up: FakeUpstream, face: str
) -> None:
    up.script(Reply(latency=0.2))
    path, body = chat_request(face, GROUPS[face], "tell me about Project Falcon", stream=True)
    body["guardrails"] = ["falcon"]
    r = gw.call("POST", path, body)
    assert r.status == 400
    assert "falcon" in dialect_error(face, r)[1]


def test_decisions_are_in_the_spend_record_and_no_value_is_anywhere(
    gw: ServedGateway, up: FakeUpstream, workdir: Path, logs: _Collect
) -> None:
    refused = gw.call(
        "POST",
        "/v1/chat/completions",
        {
            "model": GROUPS["openai"],
            "messages": [{"role": "user", "content": f"pay {CARD}"}],
            "guardrails": ["no-cards"],
        },
    )
    assert refused.status == 400
    r = gw.call(
        "POST", "/v1/chat/completions", {"model": GROUPS["openai"], "messages": [{"role": "user", "content": PROMPT}]}
    )
    assert r.status == 200
    rid = r.headers["x-llmswitch-request-id"]
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while not rows and time.monotonic() < deadline:
        rows = gw.call("GET", f"/spend/logs?request_id={rid}").json()
        time.sleep(0.05)
    assert rows, "the spend record never reached the store"
    assert rows[0]["guardrails"] == [
        {
            "guardrail": "mask-personal-data",
            "mode": "pre_call",
            "action": "masked",
            "found": {"EMAIL_ADDRESS": 1, "AWS_ACCESS_KEY": 1},
        },
        {"guardrail": "clean-html", "mode": "post_call", "action": "passed"},
    ]
    # every earlier test's values too: logs, journal and store files, byte for byte
    everything = "\n".join(logs.lines).encode()
    gw.gateway.access.flush()
    files = [p for p in workdir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"access.log", "store.db"}
    assert "no-cards" in (workdir / "access.log").read_text()  # the refusals were logged, by name
    for value in (EMAIL, AWS, CARD, CARD.replace(" ", ""), ANSWER_KEY):
        assert value.encode() not in everything, value
        for f in files:
            assert value.encode() not in f.read_bytes(), (value, f)
    assert json.dumps(rows)


def test_the_responses_api_is_guarded_too(gw: ServedGateway, up: FakeUpstream) -> None:
    r = gw.call("POST", "/v1/responses", {"model": GROUPS["openai"], "input": PROMPT, "store": False})
    assert r.status == 200, r.body
    sent = upstream_prompt(up)
    assert EMAIL not in sent and "<EMAIL_ADDRESS_1>" in sent
    refused = gw.call(
        "POST", "/v1/responses", {"model": GROUPS["openai"], "input": f"pay with {CARD}", "guardrails": ["no-cards"]}
    )
    assert refused.status == 400 and "no-cards" in refused.json()["error"]["message"]
