"""What each capability costs per request in a scaled-out gateway: CPU of the gateway, Redis and PostgreSQL.

    .venv/bin/python bench/scale_features.py [--rounds 2] [--seconds 6] [--only NAME ...]
        [--database-url "postgresql://127.0.0.1:5432/test?schema=bench_features"] [--redis 127.0.0.1] [--json FILE]

One worker as ``compare.py --scale-out`` runs it (limits in Redis, keys and spend in PostgreSQL; the
shared bench config on free ports; a virtual key with an rpm limit and a budget), once per variant, each
changing one thing from the defaults:

- ``defaults``: what an unconfigured gateway runs — Prometheus metrics on, no cache, no guardrails, no tracing
- ``no-metrics``: ``LLMSWITCH_METRICS=off``
- ``cache-miss``: the exact response cache in Redis, every prompt a new one (wrk's script numbers them)
- ``cache-hit``: the exact response cache in Redis, one prompt (every request after the first is a hit)
- ``guardrails``: the two of ``examples/guardrails.yaml`` (personal data and secrets masked before the
  call, HTML sanitized after it), on every request
- ``tracing``: OpenTelemetry traces of every request, exported over OTLP/HTTP to a sink on loopback

The variants take turns for ``--rounds`` (wrk at 32 connections for ``--seconds`` each, after a warm-up);
for each run the CPU time of the gateway process (every thread), of ``redis-server`` and of every
PostgreSQL process over the run, divided by the requests answered. Prints every run and the medians.
The PostgreSQL schema is the run's own (``bench_features`` by default) and is dropped at the end.
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
from pathlib import Path

import _harness as h
from gateway_cpu import cpu_seconds

VARIANTS = ("defaults", "no-metrics", "cache-miss", "cache-hit", "guardrails", "tracing")
_CACHE = "litellm_settings:\n  cache: true\n  cache_params:\n    type: redis\n    url: redis://{redis}/0\n"
_GUARDRAILS = """guardrails:
  - guardrail_name: mask-personal-data
    litellm_params:
      guardrail: presidio
      mode: pre_call
      default_on: true
      secrets: mask
  - guardrail_name: sanitize-html
    litellm_params:
      guardrail: html_sanitizer
      mode: post_call
      default_on: true
"""
_TRACING = 'litellm_settings:\n  callbacks: ["otel"]\n'
# a new prompt per request: the cache never has it
_NUMBERED = """counter = 0
request = function()
  counter = counter + 1
  local body = '{{"model": "bench", "messages": [{{"role": "user", "content": "Hello there, question ' .. counter .. ' of ' .. math.random(1000000000) .. '"}}]}}'
  return wrk.format("POST", nil, nil, body)
end
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""


def pids(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def cpu_of(pattern: str) -> float:
    total = 0.0
    for pid in pids(pattern):
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--redis", default="127.0.0.1:6379")
    parser.add_argument("--database-url", default="postgresql://127.0.0.1:5432/test?schema=bench_features")
    parser.add_argument("--only", nargs="*", choices=VARIANTS, help="these variants only")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    variants = args.only or list(VARIANTS)
    print(h.machine())
    h.drop_schema(args.database_url)
    try:
        with contextlib.ExitStack() as stack:
            up = stack.enter_context(h.upstream())
            redis_yaml, general = h.shared_state(args.redis, args.database_url)
            gateways: dict[str, h.Gateway] = {}
            scripts: dict[str, Path] = {}
            for name in variants:
                extra, env = redis_yaml, {}
                if name == "no-metrics":
                    env["LLMSWITCH_METRICS"] = "off"
                elif name.startswith("cache-"):
                    extra += _CACHE.format(redis=args.redis)
                elif name == "guardrails":
                    extra += _GUARDRAILS
                elif name == "tracing":
                    extra += _TRACING
                    # the upstream's nginx answers 200 to any POST: a sink for the spans
                    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{up.json_port}"
                config = up.config_yaml(f"gw-{name}", extra, general)
                gw = stack.enter_context(h.gateway(config, env=env))
                key = gw.new_key(rpm_limit=10_000_000, max_budget=1e9)
                if name == "cache-miss":
                    script = up.work / "numbered.lua"
                    script.write_text(_NUMBERED.format(key=key))
                else:
                    script = h.wrk_script(up.work, "bench", False, key)
                gateways[name], scripts[name] = gw, script
                h.wrk(gw.base + "/v1/chat/completions", script, args.conns, args.warmup)
            runs: dict[str, list[dict]] = {name: [] for name in gateways}
            for r in range(args.rounds):
                for name, gw in gateways.items():
                    g0, r0, p0 = cpu_seconds(gw.pid), cpu_of("redis-server"), cpu_of("postgres")
                    res = h.wrk(gw.base + "/v1/chat/completions", scripts[name], args.conns, args.seconds)
                    g1, r1, p1 = cpu_seconds(gw.pid), cpu_of("redis-server"), cpu_of("postgres")
                    n = max(1, res["requests"])
                    res.update(
                        gateway_us=(g1 - g0) / n * 1e6, redis_us=(r1 - r0) / n * 1e6, postgres_us=(p1 - p0) / n * 1e6
                    )
                    runs[name].append(res)
                    print(
                        f"round {r + 1} {name:>11}: {res['rps']:7.0f} req/s  gateway {res['gateway_us']:6.1f}  "
                        f"redis {res['redis_us']:5.1f}  postgres {res['postgres_us']:5.1f} µs CPU/request  "
                        f"non-2xx {res['non2xx']}  (load {os.getloadavg()[0]:.2f})"
                    )
            summary = {}
            base = None
            for name, rs in runs.items():
                med = {k: statistics.median(r[k] for r in rs) for k in ("rps", "gateway_us", "redis_us", "postgres_us")}
                med["total_us"] = med["gateway_us"] + med["redis_us"] + med["postgres_us"]
                summary[name] = med
                base = base or med
                print(
                    f"median {name:>11}: {med['rps']:7.0f} req/s  gateway {med['gateway_us']:6.1f}  redis "
                    f"{med['redis_us']:5.1f}  postgres {med['postgres_us']:5.1f}  = {med['total_us']:6.1f} µs CPU/request"
                    f"  ({med['total_us'] - base['total_us']:+6.1f} against {next(iter(runs))})"
                )
            if args.json:
                Path(args.json).write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))
    finally:
        h.drop_schema(args.database_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
