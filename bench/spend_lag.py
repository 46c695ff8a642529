"""Whether the spend shipper keeps up with a saturated gateway: the journal's backlog while wrk runs.

    .venv/bin/python bench/spend_lag.py [--workers 1 2] [--seconds 10] [--conns 32]
        [--redis 127.0.0.1] [--database-url "postgresql://127.0.0.1:5432/test?schema=bench_lag"]
        [--rev base=COMMIT] [--json FILE]

Each answered request's spend record goes to the journal before the answer; a shipper task moves the
records to the database in batches. On a saturated event loop each of a batch's round trips waits a
turn of the loop, so a shipper can fall behind for as long as the load lasts. For each worker count,
``llmswitch serve`` runs the shared bench config on free ports (limits in Redis and keys and spend in
PostgreSQL, as several instances would run; ``--redis ''`` / ``--database-url ''`` for in-memory
limits and the SQLite store) for a virtual key with an rpm limit and a budget, and wrk drives it at
``--conns`` connections. Every second it reads ``GET /metrics``: ``llmswitch_spend_journal_backlog_records``
(records journaled and not yet stored) and ``llmswitch_spend_shipper_lag_seconds``, then how long the
backlog takes to drain once wrk stops. ``--rev NAME=COMMIT`` runs that commit's code instead of the
checkout's (from ``git archive``). A benchmark, not a test; about 20 s per worker count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import threading
import time
import urllib.request

import _harness as h
from gateway_cpu import exported


def gauge(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else float("nan")


def sample(base: str) -> tuple[float, float]:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return gauge(text, "llmswitch_spend_journal_backlog_records"), gauge(text, "llmswitch_spend_shipper_lag_seconds")


def run(up: h.Upstream, workers: int, args: argparse.Namespace, src: object) -> dict:
    config = up.config_yaml(f"w{workers}", *h.shared_state(args.redis, args.database_url))
    with h.gateway(config, workers=workers, src=src) as gw:  # type: ignore[arg-type]
        key = gw.new_key(rpm_limit=10_000_000, max_budget=1e9)
        script = h.wrk_script(up.work, "bench", False, key)
        h.wrk(gw.base + "/v1/chat/completions", script, args.conns, 3)  # warm-up
        deadline = time.monotonic() + 30
        while sample(gw.base)[0] > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        result: dict = {}
        load = threading.Thread(
            target=lambda: result.update(h.wrk(gw.base + "/v1/chat/completions", script, args.conns, args.seconds))
        )
        load.start()
        samples = []
        while load.is_alive():
            time.sleep(1)
            if load.is_alive():
                samples.append(sample(gw.base))
        load.join()
        stopped = time.monotonic()
        drained = None
        while time.monotonic() - stopped < 60:
            if sample(gw.base)[0] == 0:
                drained = time.monotonic() - stopped
                break
            time.sleep(0.05)
    backlogs = [b for b, _ in samples]
    lags = [lag for _, lag in samples]
    return {
        "workers": workers,
        "rps": result["rps"],
        "backlog_median": statistics.median(backlogs) if backlogs else None,
        "backlog_max": max(backlogs) if backlogs else None,
        "backlog_last": backlogs[-1] if backlogs else None,
        "lag_max_s": max(lags) if lags else None,
        "drained_s": drained,
        "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--redis", default="127.0.0.1:6379")
    parser.add_argument("--database-url", default="postgresql://127.0.0.1:5432/test?schema=bench_lag")
    parser.add_argument("--rev", help="NAME=COMMIT: run that commit's code instead of the checkout's")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    h.own_schema(args.database_url)
    print(h.machine())
    results = []
    with contextlib.ExitStack() as stack:
        stack.callback(h.drop_schema, args.database_url)
        src = None
        if args.rev:
            name, _, rev = args.rev.partition("=")
            src = stack.enter_context(exported(rev or name))
            print(f"code: {args.rev}")
        up = stack.enter_context(h.upstream())
        for workers in args.workers:
            h.drop_schema(args.database_url)
            res = run(up, workers, args, src)
            results.append(res)
            per_second = ", ".join(f"{b:.0f}" for b, _ in res["samples"])
            drained = "not within 60 s" if res["drained_s"] is None else f"{res['drained_s']:.2f} s"
            print(
                f"{workers} worker(s): {res['rps']:8.0f} req/s; backlog each second: {per_second} records"
                f" (median {res['backlog_median']:.0f}); shipper lag at most {res['lag_max_s']:.2f} s;"
                f" drained {drained} after the load stopped"
            )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
