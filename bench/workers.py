"""``--workers 2`` against one worker, and whether limits and budgets stay exact across workers.

Goal: two workers serve >= 1.6x the non-streaming requests/s of one, with a key's rate limit and
budget still exact. Several worker processes can only share a limit through Redis, so the gateways
here run ``../shared/bench/config.yaml`` (nginx from ``../shared/bench/upstream.py``) plus
``router_settings: {redis_host: 127.0.0.1}``, keys in the embedded SQLite store (or PostgreSQL with
``--database-url``), spend recording on.

1. **Throughput**: wrk, non-streaming, 32 connections, for a virtual key with a rate limit and a
   budget (both far from reached), against ``--workers 1`` and ``--workers 2`` with Redis (and, for
   reference, both with in-memory limits: one worker is how compare.py runs it; two workers then count
   limits each on their own, which is not exact). With ``--floor VENV`` the Python floor
   (``../shared/bench/floor.py`` under ``uvicorn --workers 1|2`` from that venv, e.g. the
   ``/tmp/bench-floor-venv`` compare.py makes) takes its turns too, for the same ratio on the same machine
   at the same moment, and a third time as two uvicorn processes each listening on a socket of its own
   with SO_REUSEPORT, as llmswitch's workers do ("floor, 2 reuseport"). The systems take turns for
   ``--rounds``; each figure is a median, printed with each round's figure and, for two workers, the
   least busy worker's share of the workers' CPU time: uvicorn's workers share one listening socket,
   and when all 32 connections land on one of them (about one round in four here, more on some
   machines) the floor serves at its one-worker rate, which a share near 0% shows; the SO_REUSEPORT
   floor does not have that problem. Last, llmswitch's ratio over the SO_REUSEPORT floor's: how well it
   scales against what this machine, whose cores the load generator and nginx share, lets a gateway reach.
2. **Rate limit** on ``--workers 2``: a fresh key with ``rpm_limit=R`` gets a burst of 3R requests
   over 64 connections. The limit is a token bucket of R requests refilling at R per minute, so
   exactly R requests fit at once and the bucket refills R/60 per second while the burst lasts:
   exact means R <= 200s <= R + floor(burst seconds x R / 60), with both workers answering.
3. **Budget** on ``--workers 2``: a fresh key with ``max_budget`` = (K - 0.5) x the cost of one request
   gets a burst of 3K requests over 64 connections, then single requests until one is refused;
   exact means exactly K answered (a budget admits while spent + reserved < max_budget), and the
   spend the gateway recorded for the key is K x the cost.

    .venv/bin/python bench/workers.py [--seconds 10] [--rounds 3] [--rpm 600] [--budget-requests 200]
                                      [--redis-host 127.0.0.1] [--database-url postgresql://...] [--json out.json]
                                      [--floor /tmp/bench-floor-venv]

Takes about 3 minutes. A benchmark, not a test: CI does not run it. It stops everything it starts.
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
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h
from gateway_cpu import cpu_seconds

GOAL_RATIO = 1.6
# the floor's variants with --floor: (name, processes, each on its own SO_REUSEPORT socket)
FLOORS = (("floor, 1 worker", 1, False), ("floor, 2 workers", 2, False), ("floor, 2 reuseport", 2, True))
BURST_CONNS = 64


async def burst(url: str, key: str, count: int, conns: int = BURST_CONNS, **extra: object) -> dict:
    """``count`` requests over ``conns`` connections: statuses, 200s per worker, seconds from first to last."""
    body = json.dumps({"model": "bench", "messages": h.MESSAGES, **extra}).encode()
    hdr = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    statuses: Counter[int] = Counter()
    workers: Counter[str] = Counter()
    left = iter(range(count))

    async def client(session: aiohttp.ClientSession) -> None:
        for _ in left:
            async with session.post(url, data=body, headers=hdr) as r:
                await r.read()
                statuses[r.status] += 1
                if r.status == 200:  # request ids start with a random prefix per worker process
                    workers[r.headers.get("x-llmswitch-request-id", "?")[:12]] += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(conns)))
        seconds = time.perf_counter() - t0
    return {"statuses": dict(statuses), "ok": statuses[200], "per_worker": sorted(workers.values()), "seconds": seconds}


def until_refused(url: str, key: str, limit: int, **extra: object) -> int:
    """Single requests until one is refused (at most ``limit``): how many were answered."""
    for n in range(limit):
        if h.post_json(url, {"model": "bench", "messages": h.MESSAGES, **extra}, key)[0] != 200:
            return n
    return limit


def key_spend(gw: h.Gateway, key: str, want: float, seconds: float = 20.0) -> float:
    """The key's spend as ``/key/info`` reports it, once it reaches ``want`` or ``seconds`` passed."""
    spend = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        req = urllib.request.Request(f"{gw.base}/key/info?key={key}", headers={"authorization": f"Bearer {h.MASTER}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            spend = float(json.loads(r.read())["info"]["spend"] or 0.0)
        if spend >= want * (1 - 1e-9):
            break
        time.sleep(0.5)
    return spend


def budget_check(gw: h.Gateway, url: str, k: int, cost: float, **extra: object) -> dict:
    """A key paying for ``k`` requests: a burst of 3k, then single requests until one is refused."""
    key = ready_key(gw, max_budget=(k - 0.5) * cost)
    b = asyncio.run(burst(url, key, 3 * k, **extra))
    time.sleep(1.0)  # the burst's reservations are settled
    b["more"] = until_refused(url, key, k + 10, **extra)
    b["answered"] = b["ok"] + b["more"]
    b["spend"] = key_spend(gw, key, b["answered"] * cost)
    b["exact"] = k <= b["answered"] <= k + 1 and abs(b["spend"] - b["answered"] * cost) < cost / 2
    return b


# one floor process on a listening socket of its own with SO_REUSEPORT, as each llmswitch worker listens
_FLOOR_REUSEPORT = """
import socket, sys, uvicorn
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen(2048)
config = uvicorn.Config("floor:app", loop="uvloop", http="httptools", access_log=False, log_level="warning")
uvicorn.Server(config).run(sockets=[sock])
"""


@contextlib.contextmanager
def floor(venv: Path, up: h.Upstream, workers: int, reuse_port: bool = False) -> Iterator[tuple[str, list[int]]]:
    """The shared Python floor on a free port, forwarding to ``up``: ``uvicorn --workers N`` (its workers
    share one listening socket), or with ``reuse_port`` N uvicorn processes each listening on a socket of
    its own with SO_REUSEPORT (the kernel spreads connections over them, as over llmswitch's workers).
    Yields its base URL and the processes that serve."""
    port = h.free_port()
    env = {**os.environ, "UP": up.json_base.removesuffix("/v1"), "UPS": up.sse_base.removesuffix("/v1")}
    if reuse_port:
        commands = [[str(venv / "bin/python"), "-c", _FLOOR_REUSEPORT, str(port)] for _ in range(workers)]
    else:
        commands = [
            [str(venv / "bin/uvicorn"), "floor:app", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
             "--no-access-log", "--log-level", "warning", "--workers", str(workers)],
        ]  # fmt: skip
    procs = [
        subprocess.Popen(command, cwd=h.SHARED, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command in commands
    ]
    try:
        h.wait_port(port, 30)
        if reuse_port:
            time.sleep(1.0)  # every process listening, not only the first
            serving = [proc.pid for proc in procs]
        else:
            serving = floor_workers(procs[0])
        yield f"http://127.0.0.1:{port}", serving
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def floor_workers(proc: subprocess.Popen) -> list[int]:
    """The processes of ``uvicorn --workers N`` that serve (spawned by multiprocessing), or uvicorn itself."""
    kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    serving = [int(k) for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]
    return serving or [proc.pid]


def measured(url: str, script: Path, seconds: float, pids: list[int]) -> dict:
    """One wrk run (32 connections), with the least busy serving process's share of their CPU time.

    With several workers sharing one listening socket (uvicorn's), all 32 connections wrk opens at once
    can land on one worker, which then serves alone at one worker's rate; with SO_REUSEPORT (llmswitch's)
    the kernel spreads them. A share near 0 marks such a round."""
    before = [cpu_seconds(pid) for pid in pids]
    run = h.wrk(url, script, 32, seconds)
    used = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
    run["least_share"] = min(used) / sum(used) if len(used) > 1 and sum(used) > 0 else None
    return run


def ready_key(gw: h.Gateway, **limits: object) -> str:
    """A new key, once every worker knows it (each refreshes its key cache from the store every second)."""
    key = gw.new_key(**limits)
    time.sleep(2.5)
    return key


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="turns of the systems (default 3)")
    ap.add_argument("--rpm", type=int, default=600, help="rpm_limit of the rate-limit check (default 600)")
    ap.add_argument("--budget-requests", type=int, default=200, help="K, requests the budget pays for (default 200)")
    ap.add_argument("--redis-host", default="127.0.0.1")
    ap.add_argument("--redis-port", type=int, default=6379)
    ap.add_argument("--database-url", help="PostgreSQL for keys and spend (default: the SQLite store)")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--floor", metavar="VENV", help="a venv with uvicorn, uvloop, httptools, aiohttp and msgspec")
    a = ap.parse_args()
    redis = f"router_settings:\n  redis_host: {a.redis_host}\n  redis_port: {a.redis_port}\n"
    general = f"  database_url: {a.database_url}\n" if a.database_url else ""
    systems = {
        "1 worker, memory limits": (1, ""),
        "2 workers, memory limits": (2, ""),  # each worker counts on its own: not exact, for reference
        "1 worker, redis": (1, redis),
        "2 workers, redis": (2, redis),
    }
    runs: dict[str, list[dict]] = {name: [] for name in systems}
    with h.upstream() as up, contextlib.ExitStack() as stack:
        gws: dict[str, tuple[h.Gateway, str, Path]] = {}
        for i, (name, (workers, extra)) in enumerate(systems.items()):
            gw = stack.enter_context(h.gateway(up.config_yaml(f"gw{i}", extra, general), workers=workers))
            key = ready_key(gw, rpm_limit=10_000_000, max_budget=1e9)
            script = h.wrk_script(up.work, "bench", False, key)
            h.wrk(gw.base + "/v1/chat/completions", script, 32, 2)  # warm-up
            gws[name] = (gw, key, script)
        floors = {}
        if a.floor:
            for name, workers, reuse_port in FLOORS:
                floors[name] = stack.enter_context(floor(Path(a.floor), up, workers, reuse_port))
                runs[name] = []
                h.wrk(floors[name][0] + "/v1/chat/completions", gws["1 worker, redis"][2], 32, 2)  # warm-up
        print(f"throughput, non-streaming, 32 connections, {a.rounds} x {a.seconds} s each; {h.machine()}")
        for _ in range(a.rounds):
            for name, (gw, _, script) in gws.items():
                url = gw.base + "/v1/chat/completions"
                runs[name].append(measured(url, script, a.seconds, gw.worker_pids()))
            for name, (base, serving) in floors.items():  # the floor reads no key: any script will do
                url = base + "/v1/chat/completions"
                runs[name].append(measured(url, gws["1 worker, redis"][2], a.seconds, serving))
        rps = {name: h.median([r["rps"] for r in rs]) for name, rs in runs.items()}
        non2xx = {name: sum(r["non2xx"] for r in rs) for name, rs in runs.items()}
        for name, rs in runs.items():
            each = ", ".join(f"{r['rps']:.0f}" for r in rs)
            shares = [r["least_share"] for r in rs if r["least_share"] is not None]
            split = f"; least busy worker's CPU share {', '.join(f'{x:.0%}' for x in shares)}" if shares else ""
            print(f"  {name:26s} {rps[name]:8.0f} req/s (median of {each})   non-2xx {non2xx[name]}{split}")
        ratio = rps["2 workers, redis"] / rps["1 worker, redis"]
        mem = rps["2 workers, memory limits"] / rps["1 worker, memory limits"]
        floor_ratio = ""
        if floors:
            floor_ratio = (
                f"; the floor: {rps['floor, 2 workers'] / rps['floor, 1 worker']:.2f}x,"
                f" with SO_REUSEPORT {rps['floor, 2 reuseport'] / rps['floor, 1 worker']:.2f}x"
            )
        print(
            f"  2 workers / 1 worker, redis: {ratio:.2f}x (goal >= {GOAL_RATIO}x); memory limits: {mem:.2f}x{floor_ratio}"
        )
        if floors:
            two = rps["2 workers, redis"]
            print(
                f"  2 workers, redis / the floor's 2: {two / rps['floor, 2 workers']:.2f}x (uvicorn --workers 2),"
                f" {two / rps['floor, 2 reuseport']:.2f}x (2 processes with SO_REUSEPORT)"
            )
            # how far the machine lets any gateway scale: the load generator and the upstream share its cores
            floor_scaling = rps["floor, 2 reuseport"] / rps["floor, 1 worker"]
            print(
                f"  scaling against the floor's: {ratio / floor_scaling:.2f} "
                f"({ratio:.2f}x against the floor's {floor_scaling:.2f}x with SO_REUSEPORT)"
            )

        gw2 = gws["2 workers, redis"][0]
        url = gw2.base + "/v1/chat/completions"
        key = ready_key(gw2, rpm_limit=a.rpm)
        rate = asyncio.run(burst(url, key, 3 * a.rpm))
        top = a.rpm + int(rate["seconds"] * a.rpm / 60)
        rate_ok = a.rpm <= rate["ok"] <= top and len(rate["per_worker"]) == 2
        print(f"rate limit, 2 workers: rpm_limit={a.rpm}, {3 * a.rpm} requests over {BURST_CONNS} connections")
        print(
            f"  {rate['ok']} answered (per worker {rate['per_worker']}), statuses {rate['statuses']}, "
            f"burst {rate['seconds']:.2f} s: exact means {a.rpm}..{top}: {'ok' if rate_ok else 'NOT EXACT'}"
        )

        probe = h.post_json(url, {"model": "bench", "messages": h.MESSAGES})[1]
        cost = float(probe["x-llmswitch-cost"])
        k = a.budget_requests
        print(f"budget, 2 workers: max_budget = {k - 0.5} x {cost} (one request), {3 * k} requests, then one at a time")
        budgets = {}
        for label, extra in (("no max_tokens", {}), ("max_tokens=16", {"max_tokens": 16})):
            budgets[label] = b = budget_check(gw2, url, k, cost, **extra)
            print(
                f"  {label:14s} burst answered {b['ok']} (per worker {b['per_worker']}), statuses {b['statuses']}; "
                f"then {b['more']} more: {b['answered']} in all; recorded spend = {b['spend'] / cost:.2f} requests; "
                f"exact means {k}..{k + 1}: {'ok' if b['exact'] else 'NOT EXACT'}"
            )
        budget_ok = all(b["exact"] for b in budgets.values())
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {"rps": rps, "non2xx": non2xx, "ratio": ratio, "runs": runs, "rate": rate, "cost": cost,
                 "budgets": budgets},
                indent=1,
            )
        )  # fmt: skip
    return 0 if ratio >= GOAL_RATIO and rate_ok and budget_ok else 1


if __name__ == "__main__":
    sys.exit(main())
