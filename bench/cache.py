"""The response cache's speed goals: an exact hit at least as fast as the Python floor's round trip
through an upstream, and a miss adding <= 0.1 ms (p50) over the same gateway without a cache.

compare.py's setup: nginx (``../shared/bench/upstream.py``) as the OpenAI-compatible upstream, ``floor.py``
under uvicorn (uvloop, httptools) in front of it, and ``llmswitch serve`` with ``../shared/bench/config.yaml``
twice: as written (no cache) and with ``litellm_settings.cache: true`` (``--backend local``, the default, or
``redis``: Redis at 127.0.0.1:6379 under a namespace of the run's own). Each gateway serves a virtual key with
a rate limit and a budget, spend recording on. One client on one keep-alive connection per target sends
requests in turns of ``--block``, alternating between targets so drift falls on all alike:

- ``floor``: the same request, forwarded to nginx and back (the floor caches nothing);
- ``hit``: the same request to the cached gateway (answered from the cache after its first);
- ``uncached`` and ``miss``: a request with a new prompt each time (the same size), to the gateway without
  and with the cache: the difference is what a miss costs (key, lookup, the store after the answer);
- ``bypass``: the same to the cached gateway but with ``temperature: 0.5`` (not cached): the same process
  as ``miss``, so ``miss - bypass`` is the cache's own work on a miss with the least noise.

Then wrk at 32 connections: requests/s of the floor and of cache hits. Prints p50/p90/p99 and the goals.

    .venv/bin/python bench/cache.py [--n 3000] [--block 100] [--backend local|redis] [--json out.json]

A benchmark, not a test: CI does not run it. Everything it starts (nginx, gateways, the floor) it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h

GOAL_MISS_ADDED_P50_MS = 0.1


@contextlib.contextmanager
def floor(up: h.Upstream) -> Iterator[tuple[str, int]]:
    """``floor.py`` under uvicorn (the project venv has uvicorn, uvloop, httptools, aiohttp, msgspec)."""
    port = h.free_port()
    env = dict(os.environ, UP=f"http://127.0.0.1:{up.json_port}", UPS=f"http://127.0.0.1:{up.sse_port}")
    cmd = [str(h.REPO / ".venv" / "bin" / "uvicorn"), "floor:app", "--port", str(port), "--loop", "uvloop"]
    cmd += ["--http", "httptools", "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=h.SHARED, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        h.wait_port(port)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def body(prompt: str, temperature: float = 0) -> bytes:
    return json.dumps(
        {"model": "bench", "messages": [{"role": "user", "content": prompt}], "temperature": temperature}
    ).encode()


async def one(session: aiohttp.ClientSession, url: str, data: bytes, key: str, expect: str | None) -> float:
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    t0 = time.perf_counter()
    async with session.post(url, data=data, headers=headers) as r:
        await r.read()
        if r.status != 200:
            raise RuntimeError(f"{url} answered {r.status}")
        if expect is not None and r.headers.get("x-llmswitch-cache") != expect:
            raise RuntimeError(f"expected a cache {expect}, got {r.headers.get('x-llmswitch-cache')}")
    return (time.perf_counter() - t0) * 1000


def cpu_ns(pid: int) -> int:
    """CPU time a process (all its threads) has run, in ns (``/proc/<pid>/task/*/schedstat``)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


async def measure(
    targets: dict[str, tuple[str, str, str | None]], n: int, block: int, pids: dict[str, int], cpu: dict[str, int]
) -> dict[str, list[float]]:
    """``targets``: name -> (url, key, expected x-llmswitch-cache or None); 'uncached' and 'miss' get new prompts.
    ``cpu`` gets the CPU time (ns) the serving process (``pids``) spent in each target's turns."""
    fixed = body(h.MESSAGES[0]["content"])
    counter = iter(range(10**9))

    def data_for(name: str) -> bytes:
        if name in ("uncached", "miss", "bypass"):
            prompt = f"Hello there, how are you? {next(counter):012d} {uuid.uuid4().hex[:8]}"
            return body(prompt, 0.5 if name == "bypass" else 0)
        return fixed

    times: dict[str, list[float]] = {name: [] for name in targets}
    sessions = {name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for name in targets}
    try:
        for name, (url, key, expect) in targets.items():  # warm-up; the hit target's first request is its miss
            await one(sessions[name], url, fixed if name == "hit" else data_for(name), key, None)
            for _ in range(100):
                await one(sessions[name], url, data_for(name), key, expect)
        done = 0
        while done < n:
            size = min(block, n - done)
            for name, (url, key, expect) in targets.items():
                before = cpu_ns(pids[name])
                for _ in range(size):
                    times[name].append(await one(sessions[name], url, data_for(name), key, expect))
                cpu[name] = cpu.get(name, 0) + cpu_ns(pids[name]) - before
            done += size
    finally:
        for s in sessions.values():
            await s.close()
    return times


def cache_yaml(backend: str, namespace: str) -> str:
    if backend == "redis":
        return (
            "litellm_settings:\n  cache: true\n  cache_params:\n    type: redis\n"
            f"    url: redis://127.0.0.1:6379/0\n    namespace: {namespace}\n"
        )
    return "litellm_settings:\n  cache: true\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="requests per target (default 3000)")
    ap.add_argument("--block", type=int, default=100, help="requests per target per turn (default 100)")
    ap.add_argument("--backend", choices=("local", "redis"), default="local")
    ap.add_argument("--seconds", type=float, default=8.0, help="each wrk run (default 8)")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    with (
        h.upstream() as up,
        floor(up) as (floor_base, floor_pid),
        h.gateway(up.config_yaml("plain")) as plain,
        h.gateway(up.config_yaml("cached", extra=cache_yaml(a.backend, namespace))) as cached,
    ):
        plain_key = plain.new_key(rpm_limit=10_000_000, max_budget=1e9)
        cached_key = cached.new_key(rpm_limit=10_000_000, max_budget=1e9)
        path = "/v1/chat/completions"
        targets = {
            "floor": (floor_base + path, "sk-floor", None),
            "hit": (cached.base + path, cached_key, "hit"),
            "uncached": (plain.base + path, plain_key, None),
            "miss": (cached.base + path, cached_key, "miss"),
            "bypass": (cached.base + path, cached_key, None),
        }
        pids = {"floor": floor_pid, "hit": cached.pid, "uncached": plain.pid, "miss": cached.pid, "bypass": cached.pid}
        cpu: dict[str, int] = {}
        times = asyncio.run(measure(targets, a.n, a.block, pids, cpu))
        script_floor = h.wrk_script(up.work, "bench", False, "sk-floor")
        script_hit = h.wrk_script(up.work, "bench", False, cached_key)
        rps = {"floor": [], "hit": []}  # type: dict[str, list[float]]
        for _ in range(2):
            rps["floor"].append(h.wrk(floor_base + path, script_floor, 32, a.seconds)["rps"])
            rps["hit"].append(h.wrk(cached.base + path, script_hit, 32, a.seconds)["rps"])
    if a.backend == "redis":
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis()
            for k in client.scan_iter(match=f"{namespace}:*"):
                client.delete(k)
    print(f"cache ({a.backend}): {a.n} sequential requests per target, 1 connection each; {h.machine()}")
    rows = {name: {p: h.percentile(ts, p) for p in (50, 90, 99)} for name, ts in times.items()}
    cpu_us = {name: cpu[name] / 1000 / a.n for name in targets}
    print(f"{'':10s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s} {'CPU us/req':>11s}")
    for name, r in rows.items():
        print(f"{name:10s} {r[50]:8.3f} {r[90]:8.3f} {r[99]:8.3f} {cpu_us[name]:11.1f}")
    miss_added = rows["miss"][50] - rows["uncached"][50]
    print(f"miss - bypass, p50: {rows['miss'][50] - rows['bypass'][50]:+.3f} ms")
    hit_vs_floor = rows["hit"][50] / rows["floor"][50]
    print(
        f"CPU of the serving process per request: miss - uncached {cpu_us['miss'] - cpu_us['uncached']:+.1f} us, "
        f"miss - bypass {cpu_us['miss'] - cpu_us['bypass']:+.1f} us, "
        f"hit / floor {cpu_us['hit'] / cpu_us['floor']:.2f}x (the floor's excludes nginx's; so do the gateway's)"
    )
    rps_med = {name: h.median(v) for name, v in rps.items()}
    print(f"miss - uncached, p50: {miss_added:+.3f} ms   hit / floor, p50: {hit_vs_floor:.2f}x")
    print(f"32 connections, req/s (median of 2): floor {rps_med['floor']:.0f}, hit {rps_med['hit']:.0f}")
    ok_hit = rows["hit"][50] <= rows["floor"][50] and rps_med["hit"] >= rps_med["floor"]
    ok_miss = miss_added <= GOAL_MISS_ADDED_P50_MS
    print(f"goal: a hit at least as fast as the floor's round trip: {'ok' if ok_hit else 'MISSED'}")
    print(f"goal: a miss adds <= {GOAL_MISS_ADDED_P50_MS} ms p50: {'ok' if ok_miss else 'MISSED'}")
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {
                    "backend": a.backend,
                    "n": a.n,
                    "percentiles_ms": rows,
                    "cpu_us_per_request": cpu_us,
                    "rps": rps,
                    "miss_added_p50_ms": miss_added,
                },
                indent=1,
            )
        )
    return 0 if ok_hit and ok_miss else 1


if __name__ == "__main__":
    sys.exit(main())
