"""System calls per request of one gateway worker, by call and by thread, A/B: counted by ``perf trace -s``.

    .venv/bin/python bench/syscalls.py                                   # main against the working tree
    .venv/bin/python bench/syscalls.py --rev base=21a3724 --rev work --rounds 3 --seconds 4
    .venv/bin/python bench/syscalls.py --redis 127.0.0.1 --database-url "postgresql://127.0.0.1:5432/test?schema=bench_sys"

CPU time on a shared 2-core machine moves by more than most changes weigh; how many system calls a request
costs does not depend on the machine's speed, and the calls that hand work between threads (``futex``: the
GIL passed to the store's or the journal's thread and back, a thread woken) are where a worker's kernel time
goes beyond what the floor spends. Each version (``--rev NAME=REV``, a commit exported with ``git archive``,
or ``work``: the checkout's ``src``) runs as ``llmswitch serve`` (one worker, ``../shared/bench/compare.py``'s
config on free ports, a virtual key with an rpm limit and a budget; the SQLite store, or with ``--redis`` and
``--database-url`` the scale-out path), warmed up with wrk, then ``perf trace -s`` follows the worker while wrk
runs ``--seconds`` at ``--conns`` connections (the trace starts before wrk and ends after it). Counts are
divided by the requests wrk completed: per call for the whole process, and for the event loop's thread and
the other threads apart. The versions take turns for ``--rounds``; medians. ``perf trace`` slows the worker
several times over, so batch sizes (and with them the shipper's calls per request) differ from an untraced
run: compare versions with one another. Needs perf (Debian's ``linux-perf``), nginx, wrk. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import _harness as h
from gateway_cpu import exported

_THREAD = re.compile(r"^\s*\S.*\((\d+)\), \d+ events")
_CALL = re.compile(r"^\s+([a-z_0-9]+)\s+(\d+)\s+\d+\s+[\d.]+")


def parse(text: str, pid: int) -> tuple[Counter[str], Counter[str]]:
    """``perf trace -s``'s summary as (calls by name for the event loop's thread, for the other threads)."""
    loop: Counter[str] = Counter()
    others: Counter[str] = Counter()
    current: Counter[str] | None = None
    for line in text.splitlines():
        thread = _THREAD.match(line)
        if thread is not None:
            current = loop if int(thread.group(1)) == pid else others
            continue
        call = _CALL.match(line)
        if call is not None and current is not None:
            current[call.group(1)] += int(call.group(2))
    return loop, others


def traced_run(
    gw: h.Gateway, script: Path, conns: int, seconds: float, out: Path
) -> tuple[int, Counter[str], Counter[str]]:
    pid = gw.worker_pids()[0]
    trace = subprocess.Popen(
        ["perf", "trace", "-s", "-p", str(pid), "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(1.0)  # attached before the load starts
    result = h.wrk(gw.base + "/v1/chat/completions", script, conns, seconds)
    time.sleep(0.3)
    trace.send_signal(2)
    trace.wait(30)
    loop, others = parse(out.read_text(), pid)
    return int(result["requests"]), loop, others


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rev", action="append", default=[], help="NAME=REV (a commit) or 'work'; repeatable")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--redis", default="", help="HOST[:PORT]: limits in this Redis")
    parser.add_argument("--database-url", default="", help="keys and spend in PostgreSQL (a URL with ?schema=NAME)")
    parser.add_argument("--top", type=int, default=8, help="calls listed per version")
    args = parser.parse_args()
    h.own_schema(args.database_url)
    print(h.machine())
    extra, general = h.shared_state(args.redis or None, args.database_url or None)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="llmswitch-syscalls-"))
        up = stack.enter_context(h.upstream())
        sources: dict[str, Path | None] = {}  # each version exported once, for every round
        for spec in args.rev or ["main=main", "work"]:
            name, _, rev = spec.partition("=")
            sources[name] = None if (rev or name) == "work" else stack.enter_context(exported(rev or name))
        counts: dict[str, list[tuple[int, Counter[str], Counter[str]]]] = {name: [] for name in sources}
        for r in range(args.rounds):
            for name, src in sources.items():
                h.drop_schema(args.database_url or None)
                config = up.config_yaml(f"{name}-{r}", extra=extra, general=general)
                with h.gateway(config, src=src) as gw:
                    key = gw.new_key(rpm_limit=10**9, max_budget=10**6)
                    script = h.wrk_script(config.parent, "bench", False, key)
                    h.wrk(gw.base + "/v1/chat/completions", script, args.conns, 2)
                    n, loop, others = traced_run(gw, script, args.conns, args.seconds, Path(tmp) / f"{name}-{r}.txt")
                counts[name].append((n, loop, others))
                print(
                    f"round {r + 1} {name:>8}: {n} requests traced; per request: event loop "
                    f"{sum(loop.values()) / max(n, 1):.2f} calls ({loop['futex'] / max(n, 1):.2f} futex), "
                    f"other threads {sum(others.values()) / max(n, 1):.2f} ({others['futex'] / max(n, 1):.2f} futex)"
                )
        h.drop_schema(args.database_url or None)
    for name, runs in counts.items():
        per: dict[str, float] = {}
        names = set().union(*(set(loop) | set(others) for _, loop, others in runs))
        for call in names:
            per[call] = statistics.median((loop[call] + others[call]) / max(n, 1) for n, loop, others in runs)
        loop_futex = statistics.median(loop["futex"] / max(n, 1) for n, loop, _ in runs)
        other_futex = statistics.median(others["futex"] / max(n, 1) for n, _, others in runs)
        top = sorted(per.items(), key=lambda item: -item[1])[: args.top]
        listed = ", ".join(f"{call} {v:.2f}" for call, v in top)
        print(
            f"median {name:>8}: {sum(per.values()):.2f} calls a request ({listed}); futex: loop {loop_futex:.2f}, others {other_futex:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
