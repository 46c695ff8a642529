"""Guardrails as the gateway runs them: building from LiteLLM entries, the order and modes of a run,
words and topics, length, JSON schema, the stream window, and the external guardrail over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from llmswitch import ir
from llmswitch.guardrails import GuardrailBlocked, from_config
from llmswitch.guardrails.base import Context
from llmswitch.guardrails.build import GuardrailSpec, build_guardrail
from llmswitch.guardrails.run import StreamGuard


def entry(name: str, kind: str, mode: Any = "pre_call", **params: Any) -> dict[str, Any]:
    return {"guardrail_name": name, "litellm_params": {"guardrail": kind, "mode": mode, **params}}


def request(text: str, **fields: Any) -> ir.Request:
    return ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart(text)])], **fields)


def response(text: str) -> ir.Response:
    return ir.Response(id="r", model="m", choices=[ir.Choice(parts=[ir.TextPart(text)])])


def test_nothing_applies_without_default_on_or_a_name() -> None:
    gs = from_config([entry("pii", "presidio")])
    assert gs.start() is None
    run = gs.start(requested=["pii"])
    assert run is not None and [g.name for g in run.guardrails] == ["pii"]
    with pytest.raises(Exception, match="no guardrail named 'nope'"):
        gs.start(requested=["nope"])
    # a key's or team's names that are no longer configured are skipped, not fatal
    assert gs.start(key=["gone"]) is None


def test_run_order_is_the_config_order_and_a_block_sees_values_before_a_mask() -> None:
    gs = from_config(
        [
            entry("no-cards", "presidio", pii_entities_config={"CREDIT_CARD": "BLOCK"}),
            entry("mask", "presidio", default_on=True),
        ]
    )
    run = gs.start(requested=["no-cards"])
    assert run is not None
    with pytest.raises(GuardrailBlocked, match=r"no-cards.*CREDIT_CARD") as caught:
        asyncio.run(run.pre_call(request("card 4111111111111111")))
    assert "4111" not in str(caught.value)
    assert run.decisions == [
        {"guardrail": "no-cards", "mode": "pre_call", "action": "blocked", "found": {"CREDIT_CARD": 1}}
    ]


def test_logging_only_records_and_changes_nothing() -> None:
    run = from_config([entry("watch", "presidio", mode="logging_only", default_on=True)]).start()
    assert run is not None
    req = request("mail ann@example.com")
    assert asyncio.run(run.pre_call(req)) is False
    assert req.messages[0].content[0].text == "mail ann@example.com"
    assert run.decisions == [
        {"guardrail": "watch", "mode": "logging_only", "action": "flagged", "found": {"EMAIL_ADDRESS": 1}}
    ]


def test_words_topics_and_patterns() -> None:
    g = build_guardrail(
        GuardrailSpec(
            "words",
            "litellm_content_filter",
            ("pre_call",),
            params={
                "blocked_words": [
                    {"keyword": "Project Falcon", "action": "BLOCK"},
                    {"keyword": "acme", "action": "MASK"},
                ],
                "patterns": [
                    {"pattern_type": "prebuilt", "pattern_name": "us_ssn", "action": "BLOCK"},
                    {"pattern": r"\bEMP-\d{5}\b", "name": "employee id", "action": "MASK"},
                ],
                "denied_topics": {"weapons": ["rifle", "ammunition"]},
            },
        )
    )
    ctx = Context(phase="input")
    assert asyncio.run(g.check(["tell me about project falcon"], ctx)).blocked
    assert asyncio.run(g.check(["my ssn 078-05-1120"], ctx)).reason == "found US_SSN"
    masked = asyncio.run(g.check(["ACME hired EMP-12345"], ctx))
    assert masked.texts == ["<BLOCKED_WORD> hired <EMPLOYEE_ID>"] and not masked.blocked
    assert asyncio.run(g.check(["where to buy ammunition"], ctx)).reason == "found TOPIC_WEAPONS"
    allowed = build_guardrail(
        GuardrailSpec("on-topic", "words", ("pre_call",), params={"allowed_topics": ["invoice", "refund"]})
    )
    assert not asyncio.run(allowed.check(["I need a refund"], ctx)).blocked
    off = asyncio.run(allowed.check(["write me a poem"], ctx))
    assert off.blocked and off.found == {"OFF_TOPIC": 1}


def test_length_limits() -> None:
    g = build_guardrail(
        GuardrailSpec(
            "short", "length", ("pre_call", "post_call"), params={"max_input_tokens": 5, "max_output_chars": 10}
        )
    )
    assert not asyncio.run(g.check(["a" * 20], Context(phase="input"))).blocked
    assert (
        asyncio.run(g.check(["a" * 21], Context(phase="input"))).reason
        == "the prompt has about 6 tokens, over the limit of 5"
    )
    assert asyncio.run(g.check(["a" * 11], Context(phase="output"))).blocked
    with pytest.raises(ValueError, match="max_input_tokens"):
        build_guardrail(GuardrailSpec("x", "length", ("pre_call",), params={"max_input_tokens": -1}))


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_json_answers_against_the_response_format_schema() -> None:
    run = from_config([entry("json", "json_schema", mode="post_call", default_on=True)]).start()
    assert run is not None
    run.request = request("q", response_format=ir.ResponseFormat(type="json_schema", schema=SCHEMA, name="c"))
    assert asyncio.run(run.post_call(response('{"city": "Paris"}'))).choices[0].parts[0].text == '{"city": "Paris"}'
    with pytest.raises(GuardrailBlocked, match=r"schema at \(root\) \(required\)"):
        asyncio.run(run.post_call(response('{"town": "Paris"}')))
    with pytest.raises(GuardrailBlocked, match="not valid JSON"):
        asyncio.run(run.post_call(response("Paris")))
    run.request = request("q")  # no response_format: nothing to check
    asyncio.run(run.post_call(response("Paris")))


def test_stream_window_catches_a_value_split_across_chunks_and_restores_tokens() -> None:
    gs = from_config(
        [
            entry("give-back", "presidio", default_on=True, output_parse_pii=True),
            entry("out", "hide-secrets", mode="post_call", default_on=True),
        ]
    )
    run = gs.start()
    assert run is not None
    req = request("I am ann@example.com")
    asyncio.run(run.pre_call(req))
    guard = StreamGuard(run, window=32)  # longer than any value to catch (20 characters here)
    answer = "Hello <EMAIL_ADDRESS_1>, your key AKIAIOSFODNN7EXAMPLE is " + "x" * 40
    out = []
    for i in range(0, len(answer), 3):
        ev = guard.feed(ir.StreamEvent(text=answer[i : i + 3]))
        if ev is not None and ev.text:
            out.append(ev.text)
    ev = guard.feed(ir.StreamEvent(finish_reason="stop"))
    assert ev is not None and ev.finish_reason == "stop"
    out.append(ev.text or "")
    assert asyncio.run(guard.close()) is None
    text = "".join(out)
    assert text == "Hello ann@example.com, your key <AWS_ACCESS_KEY_1> is " + "x" * 40
    assert {
        "guardrail": "out",
        "mode": "post_call",
        "action": "masked",
        "found": {"AWS_ACCESS_KEY": 1},
    } in run.decisions


def test_build_errors_name_the_setting() -> None:
    with pytest.raises(ValueError, match="mode"):
        build_guardrail(GuardrailSpec("x", "presidio", ("before_call",)))
    with pytest.raises(ValueError, match="pii_entities_config"):
        build_guardrail(
            GuardrailSpec("x", "presidio", ("pre_call",), params={"pii_entities_config": {"PERSON": "MASK"}})
        )
    with pytest.raises(ValueError, match="api_base"):
        build_guardrail(GuardrailSpec("x", "generic_guardrail_api", ("pre_call",)))
    with pytest.raises(ValueError, match="unreachable_fallback"):
        build_guardrail(
            GuardrailSpec(
                "x",
                "generic_guardrail_api",
                ("pre_call",),
                params={"api_base": "http://h", "unreachable_fallback": "maybe"},
            )
        )


# ---------------------------------------------------------------- the external guardrail, over loopback HTTP


async def _service(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/beta/litellm_basic_guardrail_api", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def test_external_guardrail_actions_and_request_shape() -> None:
    seen: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append({"body": body, "key": request.headers.get("x-api-key")})
        text = body["texts"][0]
        if "forbidden" in text:
            return web.json_response({"action": "BLOCKED", "blocked_reason": "policy 7"})
        if "rewrite" in text:
            return web.json_response({"action": "GUARDRAIL_INTERVENED", "texts": ["rewritten"]})
        return web.json_response({"action": "NONE"})

    async def main() -> None:
        runner, base = await _service(handler)
        try:
            gs = from_config(
                [
                    entry(
                        "ext",
                        "generic_guardrail_api",
                        mode=["pre_call", "post_call"],
                        default_on=True,
                        api_base=base,
                        api_key="gk-1",
                        additional_provider_specific_params={"tier": "strict"},
                    )
                ]
            )
            run = gs.start(metadata={"request_id": "rid-1"})
            assert run is not None
            req = request("please rewrite this")
            assert await run.pre_call(req) is True
            assert req.messages[0].content[0].text == "rewritten"
            with pytest.raises(GuardrailBlocked, match="policy 7"):
                await run.post_call(response("forbidden answer"))
        finally:
            await runner.cleanup()
            from llmswitch import transport

            await transport.close_session()

    asyncio.run(main())
    assert seen[0]["key"] == "gk-1"
    assert seen[0]["body"]["input_type"] == "request" and seen[1]["body"]["input_type"] == "response"
    assert seen[0]["body"]["litellm_call_id"] == "rid-1"
    assert seen[0]["body"]["additional_provider_specific_params"] == {"tier": "strict"}


@pytest.mark.parametrize("fallback", ["fail_closed", "fail_open"])
def test_external_guardrail_timeout(fallback: str) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"action": "NONE"})

    async def main() -> tuple[bool, dict[str, Any]]:
        runner, base = await _service(slow)
        try:
            g = build_guardrail(
                GuardrailSpec(
                    "ext",
                    "generic_guardrail_api",
                    ("pre_call",),
                    params={"api_base": base, "timeout": 0.2, "unreachable_fallback": fallback},
                )
            )
            out = await g.check(["hello"], Context(phase="input"))
            return out.blocked, out.found
        finally:
            await runner.cleanup()
            from llmswitch import transport

            await transport.close_session()

    blocked, found = asyncio.run(main())
    assert blocked is (fallback == "fail_closed")
    assert found == {"UNREACHABLE": 1}


def test_during_call_refusal_cancels_the_call() -> None:
    run = from_config(
        [entry("falcon", "banned_keywords", mode="during_call", default_on=True, banned_keywords_list=["falcon"])]
    ).start()
    assert run is not None
    started = asyncio.Event()
    cancelled = []

    async def upstream() -> str:
        started.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "answer"

    async def main() -> None:
        await run.pre_call(request("about falcon"))
        with pytest.raises(GuardrailBlocked, match="falcon"):
            await run.during_call(upstream())
        await asyncio.sleep(0)

    asyncio.run(main())
    assert cancelled == [True]
    assert json.dumps(run.decisions)
