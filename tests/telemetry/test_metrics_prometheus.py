"""A real Prometheus scrapes a two-worker gateway: its counters equal what the clients saw and what the
spend logs say, they survive a worker killed and replaced, and every query of the Grafana dashboard and
of the alert rules evaluates against it (the dashboard's with data).

Needs the ``prometheus`` binary (Debian's ``prometheus`` package; CI installs it, see .ci/run) and
Redis on 127.0.0.1:6379 (shared limits, so the rpm refusals are exact across the workers).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import MASTER_KEY, call, free_port

from llmswitch.testing import FakeUpstream, RecordedRequest, Reply

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "llmswitch.json"
LLMSWITCH = Path(sys.executable).with_name("llmswitch")
PROMETHEUS = shutil.which("prometheus")

# dashboard queries that may have no data here: this gateway has no response cache and no auto group
MAY_BE_EMPTY = ("llmswitch_cache_", "llmswitch_auto_route_")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def _require_prometheus() -> str:
    if PROMETHEUS is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the prometheus binary is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("the prometheus binary is not installed (apt-get install prometheus)")
    return PROMETHEUS


def wait_for(condition: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def respond(rec: RecordedRequest) -> Reply:
    if rec.model == "gpt-4o-broken":
        return Reply(status=500)
    if rec.model == "gpt-4o-dead":
        return Reply(status=503)
    return Reply(usage=(11 + len(rec.path) % 3, 7))


CONFIG = """\
model_list:
  - model_name: observed
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: sk-up-1}}
  - model_name: broken
    litellm_params: {{model: openai/gpt-4o-broken, api_base: "{base}", api_key: sk-up-1}}
  - model_name: dead
    litellm_params: {{model: openai/gpt-4o-dead, api_base: "{base}", api_key: sk-up-1}}
router_settings:
  num_retries: 1
  retry_after: 0
  fallbacks: [{{broken: [observed]}}]
  redis_host: 127.0.0.1
  redis_port: 6379
general_settings:
  master_key: {master}
  store_path: {store}
  require_auth_for_metrics_endpoint: true
"""


class Gateway:
    def __init__(self, tmp: Path, up: FakeUpstream) -> None:
        self.port = free_port()
        config = tmp / "config.yaml"
        config.write_text(CONFIG.format(base=up.openai_base, master=MASTER_KEY, store=tmp / "keys.db"))
        self.log = tmp / "serve.log"
        # the workers' metrics directory, holding a previous run's file: emptied at start, removed at stop
        self.metrics_dir = tmp / "metrics"
        self.metrics_dir.mkdir()
        (self.metrics_dir / "1-1.keys").write_text('[18,1,"llmswitch_requests",["observed","","","","","200",""]]\n')
        (self.metrics_dir / "1-1.db").write_bytes(b"\0" * 18 * 8 + struct.pack("d", 1000.0))
        env = {
            **os.environ,
            "LLMSWITCH_JOURNAL_DIR": str(tmp / "journal"),
            "LLMSWITCH_METRICS_DIR": str(self.metrics_dir),
        }
        argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([*argv, "--workers", "2"], stdout=out, stderr=subprocess.STDOUT, env=env)

    def ready(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            return call(self.port, "GET", "/health/readiness", key=None, timeout=2).status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Prometheus:
    def __init__(self, binary: str, tmp: Path, target_port: int) -> None:
        self.port = free_port()
        config = tmp / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(ALERTS)],
                    "scrape_configs": [
                        {
                            "job_name": "llmswitch",
                            "authorization": {"credentials": MASTER_KEY},
                            "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                        }
                    ],
                }
            )
        )
        self.log = tmp / "prometheus.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())

    def query(self, expr: str) -> list[dict[str, Any]]:
        out = self.get("/api/v1/query", query=expr)
        assert out["status"] == "success", (expr, out)
        result: list[dict[str, Any]] = out["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def ready(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        up.responder = respond
        yield up


def _chat(port: int, key: str, model: str, *, stream: bool = False) -> tuple[int, int, int, str]:
    """(status, prompt tokens, completion tokens, answering worker's id prefix) of one chat request."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hello there"}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    r = call(port, "POST", "/v1/chat/completions", body, key=key)
    worker = r.headers["x-llmswitch-request-id"][:12]
    if r.status != 200:
        return r.status, 0, 0, worker
    if not stream:
        usage = r.json()["usage"]
        return 200, usage["prompt_tokens"], usage["completion_tokens"], worker
    usage = None
    for line in r.body.decode().splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            usage = chunk.get("usage") or usage
    assert usage is not None, r.body
    return 200, usage["prompt_tokens"], usage["completion_tokens"], worker


def _substitute(expr: str) -> str:
    return expr.replace("$__rate_interval", "1m").replace("$__range", "10m").replace("$model_group", ".*")


def test_prometheus_scrapes_two_workers_and_every_dashboard_and_alert_query_evaluates(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    binary = _require_prometheus()
    gw = Gateway(tmp_path, upstream)
    prom: Prometheus | None = None
    try:
        wait_for(gw.ready, "the gateway")
        # a team with a budget; keys: alice in the team, bob with an rpm limit, carol with a tiny budget
        assert call(gw.port, "POST", "/team/new", {"team_id": "t1", "max_budget": 100}).status == 200
        keys = {}
        for name, fields in {
            "alice": {"team_id": "t1", "max_budget": 10},
            "bob": {"rpm_limit": 2},
            "carol": {"max_budget": 1e-9},
        }.items():
            r = call(gw.port, "POST", "/key/generate", {"key_alias": name, **fields})
            assert r.status == 200, r.body
            keys[name] = r.json()["key"]

        prom = Prometheus(binary, tmp_path, gw.port)
        wait_for(prom.ready, "Prometheus")
        # both workers listening (each new connection may go to either), before the traffic
        seen: set[str] = set()

        def both_workers() -> bool:
            r = call(gw.port, "GET", "/health/liveliness", key=None, timeout=5)
            seen.add(r.headers["x-llmswitch-request-id"][:12])
            return len(seen) == 2

        wait_for(both_workers, "both workers answering")

        sent: list[tuple[int, int, int, str]] = []
        for i in range(10):
            sent.append(_chat(gw.port, keys["alice"], "observed", stream=i % 3 == 0))
        for _ in range(2):
            sent.append(_chat(gw.port, keys["alice"], "broken"))  # answered by the fallback group
        for _ in range(4):
            sent.append(_chat(gw.port, keys["alice"], "dead"))  # fails, after a retry, until its breaker opens
        for _ in range(4):
            sent.append(_chat(gw.port, keys["bob"], "observed"))  # the last two over the rpm limit
        # carol's first request spends her budget (a budget is overshot by one request at most), the next is refused
        sent.append(_chat(gw.port, keys["carol"], "observed"))
        refused_budget = _chat(gw.port, keys["carol"], "observed")
        assert refused_budget[0] == 400
        statuses = [s[0] for s in sent]
        assert statuses.count(429) == 2, statuses
        assert statuses[:12] == [200] * 12, statuses
        assert all(s >= 500 for s in statuses[12:16]), statuses
        assert len({s[3] for s in sent}) == 2, "every request went to one worker"

        answered = [s for s in sent if s[0] != 429]
        prompt = sum(s[1] for s in answered)
        completion = sum(s[2] for s in answered)

        # what the spend logs say (once the shippers have them all)
        def spend_logs() -> list[dict[str, Any]] | None:
            rows: list[dict[str, Any]] = call(gw.port, "GET", "/spend/logs", {}, key=MASTER_KEY).json()
            return rows if len(rows) >= len(answered) else None

        logs = wait_for(spend_logs, "the spend logs")
        assert len(logs) == len(answered)
        assert sum(r["prompt_tokens"] for r in logs) == prompt
        assert sum(r["completion_tokens"] for r in logs) == completion
        cost = sum(r["spend"] for r in logs)
        assert cost > 0

        def scraped(expr: str, expected: float) -> bool:
            got = prom.value(expr)  # type: ignore[union-attr]
            return got is not None and math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)

        wait_for(lambda: scraped("sum(llmswitch_requests_total)", len(answered)), "the request counter")
        wait_for(lambda: scraped("sum(llmswitch_workers)", 2), "both workers in one scrape")
        assert prom.value('sum(llmswitch_tokens_total{token_type="input"})') == prompt
        assert prom.value('sum(llmswitch_tokens_total{token_type="output"})') == completion
        assert prom.value('sum(gen_ai_client_token_usage_sum{gen_ai_token_type="input"})') == prompt
        assert math.isclose(prom.value("sum(llmswitch_spend_usd_total)") or 0, cost, rel_tol=1e-9)
        assert prom.value('sum(llmswitch_requests_total{key_alias="bob"})') == 2
        assert prom.value('sum(llmswitch_limit_refusals_total{limit="rpm",key_alias="bob"})') == 2
        assert prom.value('sum(llmswitch_limit_refusals_total{limit="budget",key_alias="carol"})') == 1
        assert prom.value('sum(llmswitch_fallbacks_total{model_group="broken",fallback_group="observed"})') == 2
        assert prom.value('sum(gen_ai_server_time_to_first_token_seconds_count{gen_ai_request_model="observed"})') == 4

        # a worker killed: the supervisor replaces it, and no total goes back
        workers = children(gw.proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        wait_for(lambda: len(children(gw.proc.pid)) == 2 and workers[0] not in children(gw.proc.pid), "a new worker")
        wait_for(gw.ready, "the gateway")
        for _ in range(6):  # whichever worker answers the scrape, the dead one's counts are in it
            text = call(gw.port, "GET", "/metrics", key=MASTER_KEY).body.decode()
            total = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("llmswitch_requests_total")
            )
            assert total == len(answered)
        assert call(gw.port, "GET", "/metrics", key=None).status == 401

        # every query of the dashboard returns data, every alert rule evaluates
        # rates need two samples after the traffic: wait for a few scrapes
        wait_for(lambda: (prom.value("count_over_time(llmswitch_workers[1m])") or 0) >= 4, "scrapes")  # type: ignore[union-attr]
        empty = []
        for panel in json.loads(DASHBOARD.read_text())["panels"]:
            for target in panel.get("targets", ()):
                expr = _substitute(target["expr"])
                if not prom.query(expr) and not any(p in expr for p in MAY_BE_EMPTY):
                    empty.append((panel["title"], expr))
        assert empty == []
        for group in prom.get("/api/v1/rules")["data"]["groups"]:
            for rule in group["rules"]:
                prom.query(rule["query"])  # valid and evaluates
                assert rule["health"] in ("ok", "unknown"), rule
        wait_for(
            lambda: all(r["health"] == "ok" for g in prom.get("/api/v1/rules")["data"]["groups"] for r in g["rules"]),  # type: ignore[union-attr]
            "every alert rule evaluated",
        )
    finally:
        if prom is not None:
            prom.stop()
        gw.stop()
    assert "Traceback" not in gw.log.read_text()
    assert not gw.metrics_dir.exists()
