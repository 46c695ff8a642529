"""Instructions per request of the gateway, counted by valgrind (callgrind): a deterministic A/B.

    .venv/bin/python bench/gateway_instructions.py                       # main against the working tree
    .venv/bin/python bench/gateway_instructions.py --rev old=39d01b1 --rev main=main --rev work -n 2000
    .venv/bin/python bench/gateway_instructions.py --stream --keep       # streams; keep callgrind's files

CPU time on this shared 2-core machine varies by several percent from run to run, more than most single
changes to the hot path weigh; instruction counts do not. Each version (``--rev NAME=REV``, a commit
exported with ``git archive``, or ``work``: the checkout's ``src``) runs as ``llmswitch serve`` (one worker,
``../shared/bench/compare.py``'s config on free ports, a virtual key with an rpm limit and a budget, SQLite
store, journal and shipper on) under ``valgrind --tool=callgrind --instr-atstart=no`` against one nginx
upstream. A raw asyncio client sends ``--warmup`` requests over ``--conns`` keep-alive connections (one
request at a time on each), then instrumentation is switched on (``callgrind_control -i on``) for ``-n``
more, and the count is dumped. Every thread of the process is counted (the spend shipper's too), and the event
loop's thread alone (the shipper's and the access log's work per record depends on how many records a
batch holds, so on timing), and that thread less the work run by timers (connection timers, the
disconnect watch of requests slower than 50 ms, the access log's flush, the shipper's pauses: under
valgrind how often they fire depends on the machine's load), the steadiest figure for a change to the
request path; the kernel's side of each system call is not. Prints instructions per request
and each version against the first. ``callgrind_annotate`` reads the kept files for a per-function breakdown.

Valgrind runs the gateway about 50x slower, so timeouts and batch sizes (the shipper's, the loop's
events per wake-up) differ from a real run: compare versions with one another, not with CPU time.
About a minute per version for -n 2000. Needs valgrind (Debian package).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import _harness as h
from gateway_cpu import exported


async def drive(port: int, key: str, model: str, stream: bool, n: int, conns: int) -> int:
    """Send ``n`` requests over ``conns`` keep-alive connections; the number answered 200."""
    body = json.dumps({"model": model, "stream": stream, "messages": h.MESSAGES}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer "
        + key.encode()
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    left = n
    ok = 0

    async def one_connection() -> None:
        nonlocal left, ok
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while left > 0:
                left -= 1
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if head.startswith(b"HTTP/1.1 200"):
                    ok += 1
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if m:
                    await reader.readexactly(int(m.group(1)))
                else:  # chunked
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                        await reader.readexactly(size + 2)
                        if size == 0:
                            break
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(conns)))
    return ok


@contextlib.contextmanager
def under_callgrind(config: Path, src: Path | None, out: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    port = h.free_port()
    env = {k: v for k, v in os.environ.items() if k not in h._ENV_DROP}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    # Redis's 0.25 s limits deadline is short for a gateway running ~50x slower: a missed one falls back
    # to local limits (and a budgeted request then gets a 503)
    env.setdefault("LLMSWITCH_LIMITS_DEADLINE_S", "5")
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}",
        str(h.LLMSWITCH),
        "serve",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = open(config.parent / "valgrind.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=config.parent, env=env)
    try:
        h.wait_port(port, 300)
        yield proc, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def total_instructions(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def in_timers(path: Path) -> int:
    """Instructions run inside libuv's timer callbacks (uv__run_timers, inclusive) in one callgrind file."""
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(path)], capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        if ":uv__run_timers " in line:
            return int(line.split()[0].replace(",", ""))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rev", action="append", default=[], help="NAME=REV (a commit) or 'work'; repeatable")
    parser.add_argument("-n", type=int, default=2000, help="requests counted")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--conns", type=int, default=2)
    parser.add_argument("--redis", metavar="HOST[:PORT]", help="limits in this Redis (router_settings.redis_host)")
    parser.add_argument(
        "--database-url", help="keys and spend in this PostgreSQL instead of SQLite (with ?schema=, dropped at the end)"
    )
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep callgrind's output files (their paths are printed)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    revs = args.rev or ["main=main", "work"]
    model = "bench-stream" if args.stream else "bench"
    keep = Path(tempfile.mkdtemp(prefix="llmswitch-callgrind-")) if args.keep else None
    h.own_schema(args.database_url)
    print(h.machine())
    results: dict[str, tuple[float, float, float]] = {}
    h.drop_schema(args.database_url)
    with contextlib.ExitStack() as outer:
        outer.callback(h.drop_schema, args.database_url)
        up = outer.enter_context(h.upstream())
        for spec in revs:
            name, _, rev = spec.partition("=")
            with contextlib.ExitStack() as stack:
                src = None if (rev or name) == "work" else stack.enter_context(exported(rev or name))
                config = up.config_yaml(f"cg-{name}", *h.shared_state(args.redis, args.database_url))
                out = (keep or config.parent) / f"callgrind.{name}.out"
                proc, port = stack.enter_context(under_callgrind(config, src, out))
                base = f"http://127.0.0.1:{port}"
                end = time.monotonic() + 300
                while True:
                    with contextlib.suppress(OSError):
                        status, _, body = h.post_json(
                            base + "/key/generate", {"rpm_limit": 10_000_000, "max_budget": 1e9}, timeout=60
                        )
                        if status == 200:
                            break
                    if time.monotonic() > end:
                        raise RuntimeError("the gateway under valgrind did not answer")
                    time.sleep(1)
                key = str(body["key"])
                asyncio.run(drive(port, key, model, args.stream, args.warmup, args.conns))
                subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
                t0 = time.monotonic()
                ok = asyncio.run(drive(port, key, model, args.stream, args.n, args.conns))
                subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
                seconds = time.monotonic() - t0
                if ok != args.n:
                    raise RuntimeError(f"{name}: {args.n - ok} requests were not answered 200")
            # the dump asked for (out.1-NN, one file per thread; 01 is the event loop's); the files written at
            # exit (out-NN) hold the shutdown, not counted
            dumps = sorted(out.parent.glob(out.name + ".*"))
            per_thread = {p.name.rpartition("-")[2]: total_instructions(p) for p in dumps}
            total, loop = sum(per_thread.values()) / args.n, per_thread.get("01", 0) / args.n
            main_file = next((p for p in dumps if p.name.endswith("-01")), None)
            timers = in_timers(main_file) / args.n if main_file is not None else 0.0
            results[name] = (total, loop, loop - timers)
            first = next(iter(results.values()))
            print(
                f"{name:>8}: {total / 1e3:7.1f} k instructions/request ({total / first[0]:.3f}x); the event loop's"
                f" thread {loop / 1e3:7.1f} k ({loop / first[1]:.3f}x), less timer callbacks"
                f" {(loop - timers) / 1e3:7.1f} k ({(loop - timers) / first[2]:.3f}x)"
                f"  [{args.n} requests in {seconds:.0f} s under valgrind]"
            )
            if keep:
                print(f"          callgrind files: {' '.join(str(p) for p in dumps)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
