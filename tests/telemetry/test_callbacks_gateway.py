"""LiteLLM's callback lists through the gateway: the seed's ``success_callback: ["langfuse"]`` exporting to a
Langfuse-compatible OTLP endpoint (Basic auth from LANGFUSE_* variables), the generic webhook's standard
logging payloads, a CustomLogger object loaded by dotted path, alerting to a webhook; and no key in any of it."""

from __future__ import annotations

import base64
import importlib
import io
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import ServedGateway, call
from receivers import OTLPReceiver, Span, WebhookReceiver

from llmswitch.config import load_config
from llmswitch.testing import FakeUpstream, Reply

MASTER = "sk-gateway-callbacks-2b9d71"
UPSTREAM_KEY = "sk-upstream-callbacks-e04c11"
LANGFUSE_PUBLIC = "pk-lf-1234-public"
LANGFUSE_SECRET = "sk-lf-5678-secret-9a0b"
PROMPT = "what is the airspeed of an unladen swallow 31c7"


def config_text(up: FakeUpstream, litellm: str = "", general: str = "", store: Path | None = None) -> str:
    text = f"""model_list:
  - model_name: seed
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {up.openai_base}
      api_key: {UPSTREAM_KEY}
litellm_settings:
  drop_params: true
{litellm}
general_settings:
  master_key: {MASTER}
{general}
"""
    if store is not None:
        text += f"  store_path: {store}\n"
    return text


def served(tmp_path: Path, text: str) -> ServedGateway:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return ServedGateway(load_config(path))


def chat(gw: ServedGateway, key: str = MASTER, model: str = "seed", stream: bool = False) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream, "temperature": 0.5}
    return call(gw.port, "POST", "/v1/chat/completions", body, key=key).status


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as rx:
        yield rx


@pytest.mark.parametrize("host_variable", ["LANGFUSE_HOST", "LANGFUSE_BASE_URL"])
def test_the_seed_success_callback_langfuse_exports_to_langfuse_otlp_with_basic_auth(
    up: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host_variable: str
) -> None:
    with OTLPReceiver() as langfuse:
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", LANGFUSE_PUBLIC)
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", LANGFUSE_SECRET)
        monkeypatch.delenv("LANGFUSE_HOST", raising=False)
        monkeypatch.setenv(host_variable, langfuse.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        with served(tmp_path, config_text(up, '  success_callback: ["langfuse"]')) as gw:
            assert chat(gw) == 200
            spans = langfuse.wait_spans(2)
        got = langfuse.received[0]
    assert got.path == "/api/public/otel/v1/traces"
    token = base64.b64encode(f"{LANGFUSE_PUBLIC}:{LANGFUSE_SECRET}".encode()).decode()
    assert got.headers["authorization"] == f"Basic {token}"
    assert got.headers["content-type"] == "application/x-protobuf"
    (server,) = [s for s in spans if s.kind == Span.SERVER]
    assert server.attributes["gen_ai.request.model"] == "seed"
    assert server.attributes["gen_ai.usage.input_tokens"] > 0
    assert LANGFUSE_SECRET.encode() not in b"".join(r.body for r in langfuse.received)


def test_the_seed_config_without_langfuse_keys_still_serves(
    up: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    with served(tmp_path, config_text(up, '  success_callback: ["langfuse"]')) as gw:
        assert gw.gateway.telemetry.tracing is None
        assert chat(gw) == 200


def test_the_generic_webhook_gets_standard_logging_payloads_for_successes_and_failures(
    up: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: WebhookReceiver
) -> None:
    monkeypatch.setenv("GENERIC_LOGGER_ENDPOINT", hook.url + "/logs")
    monkeypatch.setenv("GENERIC_LOGGER_HEADERS", "x-team=ml,x-token=hook-token-1")
    up.script(Reply(status=400, message="bad request from the fake"))
    with served(tmp_path, config_text(up, '  callbacks: ["generic_api"]')) as gw:
        assert chat(gw) == 400
        assert chat(gw) == 200
        hook.wait(lambda: len(hook.items()) >= 2)
    failure, success = sorted(hook.items(), key=lambda p: p["status"])
    assert success["status"] == "success" and failure["status"] == "failure"
    assert success["model_group"] == "seed" and success["model"] == "gpt-4o-mini"
    assert success["custom_llm_provider"] == "openai" and success["call_type"] == "acompletion"
    assert (
        success["prompt_tokens"] > 0
        and success["total_tokens"] == success["prompt_tokens"] + success["completion_tokens"]
    )
    assert success["response_cost"] > 0 and success["model_parameters"] == {"temperature": 0.5, "stream": False}
    assert success["api_base"] == up.openai_base and success["endTime"] >= success["startTime"]
    assert success["metadata"]["attempts"][0]["outcome"] == "ok"
    assert success["messages"] is None  # no content by default
    assert failure["error_information"]["error_class"] == "BadRequestError" and failure["error_str"]
    headers = hook.received[0].headers
    assert headers["x-token"] == "hook-token-1" and headers["content-type"] == "application/json"


def test_turn_off_message_logging_false_logs_the_messages(
    up: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: WebhookReceiver
) -> None:
    monkeypatch.setenv("GENERIC_LOGGER_ENDPOINT", hook.url)
    text = config_text(up, '  success_callback: ["generic_api"]\n  turn_off_message_logging: false')
    with served(tmp_path, text) as gw:
        assert chat(gw) == 200
        hook.wait(lambda: len(hook.items()) >= 1)
    (payload,) = hook.items()
    assert payload["messages"] == [{"role": "user", "content": PROMPT}]


def custom_module(tmp_path: Path, body: str) -> str:
    """A module beside the config defining ``handler`` (a CustomLogger-shaped object); its name."""
    name = f"custom_cb_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "seen = []\n\nclass Handler:\n" + body + "\n\nhandler = Handler()\n",
    )
    return name


LOGGER = """
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        seen.append(("success", kwargs["standard_logging_object"], response_obj, start_time <= end_time))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        seen.append(("failure", kwargs["standard_logging_object"], type(kwargs["exception"]).__name__, None))

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        seen.append(("pre", user_api_key_dict.api_key, call_type, None))
        if data["messages"][-1]["content"] == "refuse me":
            raise ValueError("not on my watch")
        data["max_tokens"] = 7
        return data

    async def async_post_call_success_hook(self, data, user_api_key_dict, response):
        seen.append(("post", response["model"], user_api_key_dict.key_alias, None))
"""


def test_a_custom_logger_by_dotted_path_gets_litellm_hooks(
    up: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = custom_module(tmp_path, LOGGER)
    up.script(Reply(status=400, message="nope"))
    with served(tmp_path, config_text(up, f"  callbacks: {name}.handler")) as gw:
        assert chat(gw) == 400
        assert chat(gw) == 200
        refused = call(
            gw.port,
            "POST",
            "/v1/chat/completions",
            {"model": "seed", "messages": [{"role": "user", "content": "refuse me"}]},
            key=MASTER,
        )
        module = sys.modules[name]
        seen: list[Any] = module.seen
        deadline_ok = _wait(lambda: {s[0] for s in seen} >= {"success", "failure", "post"})
    assert deadline_ok, seen
    assert refused.status == 400 and "not on my watch" in refused.json()["error"]["message"]
    kinds = [s[0] for s in seen]
    # the upstream's 400 and the hook's refusal are both failures
    assert kinds.count("pre") == 3 and kinds.count("success") == 1 and kinds.count("failure") == 2
    (success,) = [s for s in seen if s[0] == "success"]
    assert success[1]["model_group"] == "seed" and success[2]["usage"]["prompt_tokens"] > 0 and success[3]
    failures = [s for s in seen if s[0] == "failure"]
    assert [f[2] for f in failures] == ["BadRequestError", "APIStatusError"]
    assert {f[1]["status"] for f in failures} == {"failure"}
    (post,) = [s for s in seen if s[0] == "post"]
    assert post[1] == "gpt-4o-mini"
    # the hook saw the key's hash, never the key; and what it changed is what went upstream
    assert all(s[1] != MASTER for s in seen if s[0] == "pre")
    assert [r.json.get("max_tokens") for r in up.calls_for("/chat/completions")] == [7, 7]


def _wait(ready: Any, timeout: float = 10.0) -> bool:
    import time

    end = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def test_a_custom_logger_that_fails_never_fails_the_request(
    up: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = custom_module(
        tmp_path,
        """
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        seen.append("called")
        raise RuntimeError("logger bug")
""",
    )
    with served(tmp_path, config_text(up, f'  success_callback: ["{name}.handler"]')) as gw:
        assert [chat(gw) for _ in range(3)] == [200] * 3
        assert _wait(lambda: len(sys.modules[name].seen) == 3)
        custom = gw.gateway.telemetry.custom
        assert custom is not None
        assert _wait(lambda: custom.failed == 3)


def test_a_custom_callback_that_cannot_be_imported_is_a_config_error(up: FakeUpstream, tmp_path: Path) -> None:
    from llmswitch.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text(config_text(up, "  callbacks: no_such_module_7e.handler"))
    with pytest.raises(ConfigError, match="no_such_module_7e"):
        ServedGateway(load_config(path))
    importlib.invalidate_caches()


def test_outage_and_budget_alerts_reach_the_alerting_webhook(
    up: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: WebhookReceiver
) -> None:
    monkeypatch.setenv("WEBHOOK_URL", hook.url + "/alerts")
    general = """  alerting: ["webhook"]
  alert_types: ["budget_alerts", "outage_alerts"]
  alerting_args: {minor_outage_alert_threshold: 2, major_outage_alert_threshold: 3}"""
    up.script(*[Reply(status=500)] * 3)
    with served(tmp_path, config_text(up, general=general, store=tmp_path / "keys.db")) as gw:
        assert chat(gw) == 500  # its retries fail too: three failed attempts
        assert len(up.requests) == 3
        key = new_key(gw, max_budget=0.0000001, key_alias="tiny")
        assert chat(gw, key=key) == 200  # spends past the budget
        refused = [chat(gw, key=key) for _ in range(2)]
        hook.wait(lambda: len(hook.items()) >= 3)
    assert refused == [400, 400]
    events = hook.items()
    outages = [e for e in events if e["event"] == "outage"]
    assert [(e["severity"], e["errors"]) for e in outages] == [("minor", 2), ("major", 3)]
    assert outages[0]["model_group"] == "seed" and outages[0]["last_status"] == 500
    (budget,) = [e for e in events if e["event"] == "budget_crossed"]  # once per subject, not per refusal
    assert budget["event_group"] == "key" and budget["key_alias"] == "tiny" and budget["alert_type"] == "budget_alerts"
    assert key not in str(events)


def test_no_key_or_secret_in_any_export(
    up: FakeUpstream,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hook: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Spans, webhook payloads, custom callbacks' payloads, alerts and the access log, all on, content
    logging on too: none of them holds the master key, a virtual key, the upstream's key or Langfuse's secret."""
    name = custom_module(
        tmp_path,
        """
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        seen.append(repr(kwargs) + repr(response_obj))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        seen.append(repr(kwargs) + repr(response_obj))
""",
    )
    caplog.set_level(logging.INFO, logger="llmswitch")
    with OTLPReceiver() as collector, OTLPReceiver() as langfuse:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", LANGFUSE_PUBLIC)
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", LANGFUSE_SECRET)
        monkeypatch.setenv("LANGFUSE_HOST", langfuse.url)
        monkeypatch.setenv("GENERIC_LOGGER_ENDPOINT", hook.url + "/logs")
        monkeypatch.setenv("WEBHOOK_URL", hook.url + "/alerts")
        monkeypatch.setenv("LLMSWITCH_ACCESS_LOG_BODIES", "true")
        litellm = f'  callbacks: ["otel", "generic_api", "{name}.handler"]\n  success_callback: ["langfuse"]\n  turn_off_message_logging: false'
        general = '  alerting: ["webhook"]\n  alerting_args: {minor_outage_alert_threshold: 1}'
        up.script(Reply(status=500))
        with served(tmp_path, config_text(up, litellm, general, store=tmp_path / "keys.db")) as gw:
            access = io.StringIO()
            gw.gateway.access._stream = access
            vk = new_key(gw, key_alias="grep-me")
            statuses = [chat(gw, key=vk), chat(gw, key=vk), chat(gw, key=vk, stream=True)]
            statuses.append(
                call(
                    gw.port,
                    "POST",
                    "/v1/chat/completions",
                    {"model": "seed", "messages": [{"role": "user", "content": "hi"}], "api_key": vk},
                    key=vk,
                ).status
            )
            statuses.append(chat(gw, key=vk + "-wrong"))
            collector.wait(lambda: len(collector.spans()) >= 8)
            langfuse.wait(lambda: len(langfuse.spans()) >= 8)
            hook.wait(lambda: any(i.get("event") == "outage" for i in hook.items()) and len(hook.items()) >= 5)
            assert _wait(lambda: len(sys.modules[name].seen) >= 4)
        gw.gateway.access.flush()
        exports = {
            "otel spans": collector.raw(),
            "langfuse spans": b"\n".join(r.body for r in langfuse.received),
            "webhooks": hook.raw(),
            "custom callbacks": "\n".join(sys.modules[name].seen).encode(),
            "access log": access.getvalue().encode(),
            "logs": caplog.text.encode(),
        }
    assert statuses == [200, 200, 200, 200, 401]  # the first after a retry of the 500
    assert PROMPT.encode() in exports["otel spans"]  # content logging is on: the test would see a leak
    assert b"[redacted]" in exports["access log"]
    for what, data in exports.items():
        for secret in (MASTER, vk, UPSTREAM_KEY, LANGFUSE_SECRET):
            assert secret.encode() not in data, f"{what} holds a secret"


def new_key(gw: ServedGateway, **fields: Any) -> str:
    r = call(gw.port, "POST", "/key/generate", fields, key=MASTER)
    assert r.status == 200, r.body
    key: str = r.json()["key"]
    return key
