"""RSS of one gateway worker through 200,000 requests, against the goal: under 150 MB, no upward trend.

``llmswitch serve`` (one worker, ``../shared/bench/config.yaml`` on nginx from
``../shared/bench/upstream.py``) answers a virtual key with a rate limit and a budget, spend recording
on. wrk (``-t2 -c32``) drives it in chunks of about 10,000 requests, half non-streaming and half
streaming; each wrk run's duration is sized from the rate the previous one measured, and the requests
wrk reports done are what is counted. After every chunk the worker's VmRSS is read from
/proc/PID/status. Prints the series, the maximum, and the least-squares slope of RSS over the second
half of the run in MB per 10,000 requests ("no upward trend": below 0.1 MB per 10k, i.e. less than
1 MB per 100k requests).

    .venv/bin/python bench/memory.py [--requests 200000] [--chunk 10000] [--json out.json]

Takes a few minutes (about --requests divided by the gateway's rate). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h

GOAL_MB = 150.0
GOAL_SLOPE = 0.1  # MB per 10k requests over the second half


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200_000, help="requests in all (default 200000)")
    ap.add_argument("--chunk", type=int, default=10_000, help="requests between RSS samples (default 10000)")
    ap.add_argument("--json", help="also write the series here")
    a = ap.parse_args()
    series: list[tuple[int, float]] = []  # (requests so far, RSS MB)
    bad = 0
    with h.upstream() as up, h.gateway(up.config_yaml()) as gw:
        key = gw.new_key(rpm_limit=10_000_000, max_budget=1e9)
        pid = gw.worker_pids()[0]
        url = gw.base + "/v1/chat/completions"
        scripts = {
            "nonstream": h.wrk_script(up.work, "bench", False, key),
            "stream": h.wrk_script(up.work, "bench-stream", True, key),
        }
        rate = {kind: h.wrk(url, s, 32, 2, threads=2)["rps"] for kind, s in scripts.items()}  # warm-up, first rates
        series.append((0, h.rss_mb(pid)))
        print(f"RSS of pid {pid}, {h.machine()}")
        print(f"{'requests':>9s} {'RSS MB':>8s}  {'non-2xx':>7s}  {'rps (json/sse)':>15s}")
        print(f"{0:9d} {series[0][1]:8.1f}")
        done = 0
        for _ in range(4 * a.requests // a.chunk + 1):  # bounded: rates are re-measured every chunk
            if done >= a.requests:
                break
            for kind, script in scripts.items():
                seconds = max(1.0, min(120.0, a.chunk / 2 / max(rate[kind], 1.0)))
                r = h.wrk(url, script, 32, seconds, threads=2)
                rate[kind] = r["rps"]
                done += r["requests"]
                bad += r["non2xx"]
            series.append((done, h.rss_mb(pid)))
            print(f"{done:9d} {series[-1][1]:8.1f}  {bad:7d}  {rate['nonstream']:7.0f}/{rate['stream']:<7.0f}")
    peak = max(mb for _, mb in series)
    half = series[len(series) // 2 :]
    per10k = slope([n / 10_000 for n, _ in half], [mb for _, mb in half])
    print(
        f"RSS after a warm-up {series[0][1]:.1f} MB, after the first chunk {series[1][1]:.1f} MB, end {series[-1][1]:.1f} MB"
    )
    print(f"max RSS {peak:.1f} MB (goal < {GOAL_MB:.0f}): {'ok' if peak < GOAL_MB else 'MISSED'}")
    print(
        f"slope over the second half ({half[0][0]}..{half[-1][0]} requests): {per10k:+.3f} MB per 10k requests "
        f"(goal < {GOAL_SLOPE}): {'ok' if per10k < GOAL_SLOPE else 'MISSED'}"
    )
    print(f"non-2xx responses: {bad}")
    if a.json:
        Path(a.json).write_text(
            json.dumps({"series": series, "max_mb": peak, "slope_mb_per_10k": per10k, "non2xx": bad}, indent=1)
        )
    return 0 if peak < GOAL_MB and per10k < GOAL_SLOPE and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
