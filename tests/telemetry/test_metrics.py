"""The gateway's metrics: what a request, an attempt and a refusal count, label caps, the exposition
formats, several workers' files added up, and the /metrics route's guard."""

from __future__ import annotations

import doctest
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from gateway_harness import MASTER_KEY, ServedGateway

from llmswitch.telemetry.metrics import Metrics
from llmswitch.testing import FakeUpstream, RecordedRequest, Reply

SAMPLE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$")


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample named ``name``."""
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) == name:
            labels = dict(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            out.append((labels, float(m.group(3))))
    return out


def total(text: str, metric: str, **match: str) -> float:
    return sum(v for labels, v in samples(text, metric) if all(labels.get(k, "") == w for k, w in match.items()))


@pytest.mark.parametrize(
    "module",
    [
        "llmswitch.telemetry.metrics",
        "llmswitch.telemetry.metrics_render",
    ],
)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


CONFIG = """\
model_list:
  - model_name: ok
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: sk-up}}
  - model_name: down
    litellm_params: {{model: openai/gpt-4o-down, api_base: "{base}", api_key: sk-up}}
  - model_name: "wild/*"
    litellm_params: {{model: "openai/*", api_base: "{base}", api_key: sk-up}}
router_settings:
  num_retries: 1
  retry_after: 0
  allowed_fails: 1
general_settings:
  master_key: {master}
  store_path: {store}
{extra}"""


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    def respond(rec: RecordedRequest) -> Reply:
        return Reply(status=503) if rec.model == "gpt-4o-down" else Reply(usage=(10, 4))

    with FakeUpstream() as up:
        up.responder = respond
        yield up


def served(up: FakeUpstream, tmp_path: Path, extra: str = "") -> ServedGateway:
    return ServedGateway(CONFIG.format(base=up.openai_base, master=MASTER_KEY, store=tmp_path / "k.db", extra=extra))


def chat(gw: ServedGateway, model: str, key: str = MASTER_KEY, **body: object) -> int:
    r = gw.call(
        "POST",
        "/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": "hi"}], **body},
        key=key,
    )
    return r.status


def test_a_request_an_attempt_and_a_refusal_are_counted(upstream: FakeUpstream, tmp_path: Path) -> None:
    with served(upstream, tmp_path) as gw:
        key = gw.new_key(key_alias="alice", team_id="t9", rpm_limit=3)
        assert chat(gw, "ok", key) == 200
        assert chat(gw, "ok", key, stream=True, stream_options={"include_usage": True}) == 200
        assert chat(gw, "down", key) == 503
        assert chat(gw, "ok", key) == 429  # the rpm limit: refused, never admitted
        text = gw.call("GET", "/metrics", key=None).body.decode()
    who = {"key_alias": "alice", "team": "t9"}
    assert total(text, "llmswitch_requests_total", model_group="ok", status_code="200", **who) == 2
    assert total(text, "llmswitch_requests_total", model_group="down", status_code="503", **who) == 1
    assert total(text, "llmswitch_requests_total", error_type="ServiceUnavailableError") == 1
    assert total(text, "llmswitch_tokens_total", model_group="ok", token_type="input", **who) == 20
    assert total(text, "llmswitch_tokens_total", model_group="ok", token_type="output", **who) == 8
    assert total(text, "llmswitch_spend_usd_total", model_group="ok", **who) > 0
    assert total(text, "gen_ai_server_time_to_first_token_seconds_count", gen_ai_request_model="ok") == 1
    assert total(text, "gen_ai_server_request_duration_seconds_count", gen_ai_request_model="ok") == 2
    assert total(text, "gen_ai_client_token_usage_sum", model_group="ok", gen_ai_token_type="input") == 20
    assert total(text, "llmswitch_gateway_overhead_seconds_count", model_group="ok") == 2
    # the failing group: a first attempt and its retry, both errors; the breaker opens past one failure
    assert total(text, "llmswitch_upstream_attempts_total", model_group="down", outcome="error") == 2
    assert total(text, "llmswitch_upstream_attempts_total", model_group="ok", outcome="ok") == 2
    assert total(text, "llmswitch_retries_total", model_group="down") == 1
    assert total(text, "gen_ai_client_operation_duration_seconds_count", model_group="down") == 2
    assert total(text, "llmswitch_breaker_state", model_group="down") == 2
    assert total(text, "llmswitch_breaker_opened_total", model_group="down") == 1
    assert total(text, "llmswitch_breaker_transitions_total", model_group="down", to="open") == 1
    assert total(text, "llmswitch_breaker_transitions_total", model_group="down", to="closed") == 0
    assert total(text, "llmswitch_deployment_healthy", model_group="down") == 0
    assert total(text, "llmswitch_deployment_healthy", model_group="ok") == 1
    assert total(text, "llmswitch_limit_refusals_total", limit="rpm", subject="key", key_alias="alice") == 1
    # nothing left in flight, refusal included
    assert total(text, "llmswitch_requests_in_flight") == 0
    assert total(text, "llmswitch_streams_in_flight") == 0
    assert total(text, "llmswitch_database_up") == 1
    assert total(text, "llmswitch_limit_configured", subject="key", name="alice", limit="rpm") == 3


def test_label_values_are_capped_and_never_request_ids(upstream: FakeUpstream, tmp_path: Path) -> None:
    ids = []
    with served(upstream, tmp_path) as gw:
        gw.gateway.metrics.caps["model_group"].cap = 5  # type: ignore[union-attr]
        for i in range(12):
            r = gw.call(
                "POST", "/v1/chat/completions", {"model": f"wild/m-{i}", "messages": [{"role": "user", "content": "x"}]}
            )
            assert r.status == 200, r.body
            ids += [r.headers["x-llmswitch-request-id"], r.headers["x-request-id"]]
        assert chat(gw, "ok") == 200  # a group of the config keeps its own label past the cap
        text = gw.call("GET", "/metrics", key=None).body.decode()
    groups = {labels["model_group"] for labels, _ in samples(text, "llmswitch_requests_total")}
    assert groups == {"ok", "other", *(f"wild/m-{i}" for i in range(5))}
    assert total(text, "llmswitch_requests_total", model_group="other") == 7
    for rid in ids:
        assert rid not in text


def test_openmetrics_on_request_and_the_text_format_by_default(upstream: FakeUpstream, tmp_path: Path) -> None:
    with served(upstream, tmp_path) as gw:
        assert chat(gw, "ok") == 200
        plain = gw.call("GET", "/metrics", key=None)
        om = gw.call("GET", "/metrics", key=None, headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert om.headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert "# TYPE llmswitch_requests_total counter" in plain.body.decode()
    text = om.body.decode()
    assert "# TYPE llmswitch_requests counter" in text and "# TYPE llmswitch_requests_total" not in text
    assert text.endswith("# EOF\n") and not plain.body.decode().endswith("# EOF\n")
    # the same series either way (gauges such as the shipper's lag may move between the two scrapes)
    assert [ln.rsplit(" ", 1)[0] for ln in text.splitlines() if not ln.startswith("#")] == [
        ln.rsplit(" ", 1)[0] for ln in plain.body.decode().splitlines() if not ln.startswith("#")
    ]


def test_metrics_need_a_key_when_the_config_says_so(upstream: FakeUpstream, tmp_path: Path) -> None:
    with served(upstream, tmp_path, "  require_auth_for_metrics_endpoint: true\n") as gw:
        assert gw.call("GET", "/metrics", key=None).status == 401
        assert gw.call("GET", "/metrics", key="sk-wrong").status == 401
        assert gw.call("GET", "/metrics").status == 200
        key = gw.new_key()
        assert gw.call("GET", "/metrics", key=key).status == 200
    with served(upstream, tmp_path) as gw:
        assert gw.call("GET", "/metrics", key=None).status == 200


def test_metrics_can_be_turned_off(upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_METRICS", "off")
    with served(upstream, tmp_path) as gw:
        assert gw.gateway.metrics is None
        assert chat(gw, "ok") == 200
        assert gw.call("GET", "/metrics", key=None).status == 404


def test_workers_files_add_up_and_a_gone_workers_gauges_drop_out(tmp_path: Path) -> None:
    a, b = Metrics(str(tmp_path)), Metrics(str(tmp_path))
    try:
        for m, n in ((a, 3), (b, 4)):
            for _ in range(n):
                m.note_cache("g", hit=True, saved_usd=0.5)
            m.values[m.in_flight] += n
            m.flush()  # as each worker's collector does every second
        text = a.render().decode()
        assert total(text, "llmswitch_cache_lookups_total", result="hit") == 7
        assert total(text, "llmswitch_cache_saved_usd_total") == 3.5
        assert total(text, "llmswitch_requests_in_flight") == 7
        assert total(text, "llmswitch_workers") == 2
        b.close()  # as a worker that exits or is killed: its file stays, nobody holds its lock
        c = Metrics(str(tmp_path))  # its replacement
        try:
            c.note_cache("g", hit=False)
            c.flush()
            for m in (a, c):  # whichever worker answers the scrape
                text = m.render().decode()
                assert total(text, "llmswitch_cache_lookups_total", result="hit") == 7  # the totals stay
                assert total(text, "llmswitch_cache_lookups_total", result="miss") == 1
                assert total(text, "llmswitch_requests_in_flight") == 3  # the gone worker's gauge does not
                assert total(text, "llmswitch_workers") == 2
        finally:
            c.close()
    finally:
        a.close()


def test_a_half_written_keys_line_is_passed_over(tmp_path: Path) -> None:
    a, b = Metrics(str(tmp_path)), Metrics(str(tmp_path))
    try:
        b.note_cache("g", hit=True)
        b.flush()
        assert b.slots.path is not None
        with open(b.slots.path[:-3] + ".keys", "ab") as f:
            f.write(b'[99,1,"llmswitch_cache_lookups",["g","exa')  # a worker killed mid-line
        text = a.render().decode()
        assert total(text, "llmswitch_cache_lookups_total", result="hit") == 1
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("face", ["fast path", "full path"])
def test_time_to_first_token_counts_the_upstreams_wait(face: str, tmp_path: Path) -> None:
    # the upstream waits 0.15 s between its headers and its first token: the client waits at least that
    with FakeUpstream() as up:
        up.responder = lambda rec: Reply(ttft=0.15, usage=(10, 4))
        with served(up, tmp_path) as gw:
            extra: dict[str, object] = {"stream": True}
            if face == "full path":
                extra["stream_options"] = {"include_usage": True}
                extra["logit_bias"] = {}  # a parameter the fast path does not relay as is
            assert chat(gw, "ok", **extra) == 200
            text = gw.call("GET", "/metrics", key=None).body.decode()
    assert total(text, "gen_ai_server_time_to_first_token_seconds_count") == 1
    assert total(text, "gen_ai_server_time_to_first_token_seconds_sum") >= 0.15


def test_promtool_finds_nothing_to_lint_in_the_exposition(upstream: FakeUpstream, tmp_path: Path) -> None:
    # naming conventions (units, _total on counters...), types and help texts, as `promtool check metrics` lints them
    import os
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    with served(upstream, tmp_path) as gw:
        key = gw.new_key(key_alias="a", rpm_limit=3, max_budget=5)
        assert chat(gw, "ok", key) == 200
        assert chat(gw, "ok", key, stream=True) == 200
        assert chat(gw, "down", key) == 503
        assert chat(gw, "ok", key) == 429
        text = gw.call("GET", "/metrics", key=None).body
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, check=False)
    assert (out.returncode, out.stdout, out.stderr) == (0, b"", b"")
    assert text.count(b"# TYPE ") >= 20
