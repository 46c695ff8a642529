"""Time to first token the gateway adds to a stream, against the 1 ms (p50) goal.

nginx (``../shared/bench/upstream.py``) serves an 11-chunk SSE stream; ``llmswitch serve`` relays it
(``../shared/bench/config.yaml``, model ``bench-stream``) for a virtual key with a rate limit and a
budget, spend recording on. One aiohttp client on one keep-alive connection per target sends N
sequential streams each, direct to nginx and through the gateway, alternating in blocks so drift
falls on both alike; for each stream it times from sending the request to the first ``data:`` line,
then reads the stream to its end. Prints p50/p90/p99 of both and the differences.

    .venv/bin/python bench/ttft.py [--n 2000] [--block 100] [--json out.json]

A benchmark, not a test: CI does not run it. Everything it starts (nginx, the gateway) it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h

GOAL_P50_MS = 1.0


async def first_data_ms(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict) -> float:
    """ms from sending the request to the first ``data:`` line; the rest of the stream is drained."""
    t0 = time.perf_counter()
    first = 0.0
    async with session.post(url, data=body, headers=headers) as r:
        if r.status != 200:
            raise RuntimeError(f"{url} answered {r.status}: {await r.text()}")
        async for line in r.content:
            if not first and line.startswith(b"data:"):
                first = time.perf_counter()
    if not first:
        raise RuntimeError(f"{url} sent no data: line")
    return (first - t0) * 1000


async def measure(up: h.Upstream, gw: h.Gateway, key: str, n: int, block: int) -> dict[str, list[float]]:
    def body(model: str) -> bytes:
        return json.dumps({"model": model, "stream": True, "messages": h.MESSAGES}).encode()

    targets = {
        "direct": (up.sse_base + "/chat/completions", body("gpt-4o-mini"), "sk-upstream"),
        "gateway": (gw.base + "/v1/chat/completions", body("bench-stream"), key),
    }
    times: dict[str, list[float]] = {name: [] for name in targets}
    sessions = {name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for name in targets}
    try:
        for name, (url, data, k) in targets.items():  # warm-up: connections, caches
            hdr = {"content-type": "application/json", "authorization": f"Bearer {k}"}
            for _ in range(50):
                await first_data_ms(sessions[name], url, data, hdr)
        done = 0
        while done < n:
            size = min(block, n - done)
            for name, (url, data, k) in targets.items():
                hdr = {"content-type": "application/json", "authorization": f"Bearer {k}"}
                for _ in range(size):
                    times[name].append(await first_data_ms(sessions[name], url, data, hdr))
            done += size
    finally:
        for s in sessions.values():
            await s.close()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="streams per target (default 2000)")
    ap.add_argument("--block", type=int, default=100, help="streams per target per turn (default 100)")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    with h.upstream() as up, h.gateway(up.config_yaml(), ready_model="bench") as gw:
        key = gw.new_key(rpm_limit=10_000_000, max_budget=1e9)
        times = asyncio.run(measure(up, gw, key, a.n, a.block))
    print(f"time to first data: line, {a.n} sequential streams each, 1 connection; {h.machine()}")
    rows = {name: {p: h.percentile(ts, p) for p in (50, 90, 99)} for name, ts in times.items()}
    print(f"{'':10s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s}")
    for name, r in rows.items():
        print(f"{name:10s} {r[50]:8.3f} {r[90]:8.3f} {r[99]:8.3f}")
    added = {p: rows["gateway"][p] - rows["direct"][p] for p in (50, 90, 99)}
    print(f"{'added':10s} {added[50]:8.3f} {added[90]:8.3f} {added[99]:8.3f}")
    ok = added[50] <= GOAL_P50_MS
    print(f"goal: added p50 <= {GOAL_P50_MS} ms: {'ok' if ok else 'MISSED'}")
    if a.json:
        Path(a.json).write_text(
            json.dumps({"n": a.n, "percentiles_ms": rows, "added_ms": added, "goal_p50_ms": GOAL_P50_MS}, indent=1)
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
