"""Where the machine's CPU goes per request, at one worker and at two: the gateway and what serves it.

    .venv/bin/python bench/cpu_split.py [--workers 1 2] [--rounds 2] [--seconds 8] [--conns 32]
        [--redis 127.0.0.1] [--database-url "postgresql://127.0.0.1:5432/test?schema=bench_split"] [--json FILE]

``bench/workers.py`` reads how much two workers serve against one; this says why. For each worker count,
``llmswitch serve --workers N`` runs the shared bench config on free ports with limits in Redis and keys
and spend in PostgreSQL (``--redis ''`` or ``--database-url ''``: in-memory limits, the SQLite store),
for a virtual key with an rpm limit and a budget; wrk drives it (``--conns`` connections, non-streaming)
after a warm-up. Over each run it reads, per request answered:

- the CPU time (utime + stime, ``/proc/PID/stat``) of every process on the machine, grouped by name
  (llmswitch, postgres, nginx, redis-server, ...), and wrk's own (it is this script's child);
- for each gateway worker, its event loop's thread (user and system apart) and its other threads, per
  request the gateway answered (with two workers, each carries about half);
- the whole machine's busy time (``/proc/stat``) and the share left idle, and wrk's p50 and p99 latency;
- how often each worker's event loop was preempted (``nonvoluntary_ctxt_switches``) or went to sleep
  waiting (``voluntary_ctxt_switches``), per second, and its read-like and write-like system calls
  (``/proc/PID/io``: recv, send, read, write, ...) per request the gateway answered.

The worker counts take turns for ``--rounds``; every run is printed, then the medians. ``--rev NAME=REV``
(repeatable) runs an exported commit's ``src`` beside the others (``work``: the checkout's; the default
is the checkout alone), every version and worker count in turns, as ``gateway_cpu.py`` does: an A/B of
what a change costs the whole machine, the processes serving the gateway included. The PostgreSQL
schema is the run's own and is dropped at the end. A benchmark, not a test.

    .venv/bin/python bench/cpu_split.py --workers 2 --rounds 5 --rev base=4a420ff~1 --rev work
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
from pathlib import Path

import _harness as h
from gateway_cpu import exported

_TICK = os.sysconf("SC_CLK_TCK")
_NEW_THREAD = (0.0, 0.0, 0, 0)  # a thread started during the run: all of its time is the run's


def _stat_fields(path: str) -> list[str]:
    return Path(path).read_text().rpartition(")")[2].split()


def processes() -> dict[int, tuple[str, float]]:
    """Every process: ``pid -> (name, CPU seconds)``."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                name = Path(f"/proc/{entry}/comm").read_text().strip()
                f = _stat_fields(f"/proc/{entry}/stat")
                out[int(entry)] = (name, (int(f[11]) + int(f[12])) / _TICK)
    return out


def threads(pid: int) -> dict[int, tuple[float, float, int, int]]:
    """A process's threads: ``tid -> (user s, system s, voluntary switches, preemptions)``."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            f = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            switches = {k: int(v) for k, _, v in (line.partition(":") for line in status.splitlines()) if "ctxt" in k}
            out[int(tid)] = (
                int(f[11]) / _TICK,
                int(f[12]) / _TICK,
                switches["voluntary_ctxt_switches"],
                switches["nonvoluntary_ctxt_switches"],
            )
    return out


def io_calls(pid: int) -> tuple[int, int]:
    """A process's read-like and write-like system calls so far (``/proc/PID/io``: recv, read, send, write, ...)."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["syscr"]), int(fields["syscw"])


def machine() -> tuple[float, float]:
    """``(all, idle)`` CPU seconds of the machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) / _TICK, (values[3] + values[4]) / _TICK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(gw: h.Gateway, script: Path, conns: int, seconds: float) -> dict:
    workers = gw.worker_pids()
    io0 = {p: io_calls(p) for p in workers}
    procs0, thr0, mach0, wrk0 = processes(), {p: threads(p) for p in workers}, machine(), children_cpu()
    res = h.wrk(gw.base + "/v1/chat/completions", script, conns, seconds)
    procs1, thr1, mach1, wrk1 = processes(), {p: threads(p) for p in workers}, machine(), children_cpu()
    io1 = {p: io_calls(p) for p in workers}
    n = max(1, res["requests"])
    per = 1e6 / n
    groups: dict[str, float] = {}
    for pid, (name, cpu) in procs1.items():
        groups[name] = groups.get(name, 0.0) + (cpu - procs0.get(pid, (name, 0.0))[1]) * per
    groups["wrk"] = (wrk1 - wrk0) * per
    loops = []
    for pid in workers:
        before, after = thr0[pid], thr1[pid]
        main0, main1 = before.get(pid, _NEW_THREAD), after[pid]
        rest = 0.0
        for tid, (user, system, _, _) in after.items():
            if tid != pid:
                user0, system0, _, _ = before.get(tid, _NEW_THREAD)
                rest += user + system - user0 - system0
        loops.append(
            {
                "loop_user_us": (main1[0] - main0[0]) * per,
                "loop_system_us": (main1[1] - main0[1]) * per,
                "other_threads_us": rest * per,
                "sleeps_per_s": (main1[2] - main0[2]) / seconds,
                "preempted_per_s": (main1[3] - main0[3]) / seconds,
                "reads": (io1[pid][0] - io0[pid][0]) / n,
                "writes": (io1[pid][1] - io0[pid][1]) / n,
            }
        )
    busy = (mach1[0] - mach0[0]) - (mach1[1] - mach0[1])
    return {
        "rps": res["rps"],
        "p50_ms": res["p50_ms"],
        "p99_ms": res["p99_ms"],
        "requests": res["requests"],
        "non2xx": res["non2xx"],
        "machine_us": busy * per,
        "idle_share": (mach1[1] - mach0[1]) / max(1e-9, mach1[0] - mach0[0]),
        "processes_us": {k: v for k, v in sorted(groups.items(), key=lambda kv: -kv[1]) if v >= 0.5},
        "workers": loops,
    }


def show(label: str, r: dict) -> None:
    top = ", ".join(f"{k} {v:.1f}" for k, v in r["processes_us"].items())
    print(
        f"{label}: {r['rps']:7.0f} req/s  p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} ms  "
        f"machine {r['machine_us']:6.1f} µs/request "
        f"({r['idle_share'] * 100:.0f}% idle)  non-2xx {r['non2xx']}  (load {os.getloadavg()[0]:.2f})"
    )
    print(f"    µs/request by process: {top}")
    for i, w in enumerate(r["workers"]):
        print(
            f"    worker {i + 1}: event loop user {w['loop_user_us']:.1f} + system {w['loop_system_us']:.1f}, "
            f"other threads {w['other_threads_us']:.1f} µs/request; "
            f"preempted {w['preempted_per_s']:.0f}/s, slept {w['sleeps_per_s']:.0f}/s; "
            f"{w['reads']:.2f} reads + {w['writes']:.2f} writes per request"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--redis", default="127.0.0.1:6379")
    parser.add_argument("--database-url", default="postgresql://127.0.0.1:5432/test?schema=bench_split")
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--rev", action="append", default=[], help="NAME=REV (a commit) or 'work'; repeatable")
    args = parser.parse_args()
    revs = [(name, rev or name) for name, _, rev in (spec.partition("=") for spec in args.rev)] or [("work", "work")]
    print(h.machine())
    if args.database_url:
        h.drop_schema(args.database_url)
    try:
        with contextlib.ExitStack() as stack:
            up = stack.enter_context(h.upstream())
            redis_yaml, general = h.shared_state(args.redis or None, args.database_url or None)
            runs: dict[str, list[dict]] = {}
            gateways = {}
            for name, rev in revs:
                src = None if rev == "work" else stack.enter_context(exported(rev))
                for n in args.workers:
                    label = f"{n} worker(s)" if len(revs) == 1 else f"{name}, {n} worker(s)"
                    config = up.config_yaml(f"gw-{name}-{n}", redis_yaml, general)
                    gw = stack.enter_context(h.gateway(config, workers=n, src=src))
                    key = gw.new_key(rpm_limit=10_000_000, max_budget=1e9)
                    script = h.wrk_script(up.work, "bench", False, key)
                    gateways[label] = (gw, script)
                    runs[label] = []
            for gw, script in gateways.values():
                h.wrk(gw.base + "/v1/chat/completions", script, args.conns, args.warmup)
            for r in range(args.rounds):
                for label, (gw, script) in gateways.items():
                    result = measure(gw, script, args.conns, args.seconds)
                    runs[label].append(result)
                    show(f"round {r + 1}, {label}", result)
            for label, rs in runs.items():
                top = {
                    name: statistics.median(r["processes_us"].get(name, 0.0) for r in rs)
                    for name in ("llmswitch", "nginx", "wrk", "postgres", "redis-server")
                }
                print(
                    f"median, {label}: {statistics.median(r['rps'] for r in rs):7.0f} req/s, "
                    f"p50 {statistics.median(r['p50_ms'] for r in rs):.2f} p99 {statistics.median(r['p99_ms'] for r in rs):.2f} ms, "
                    "machine "
                    f"{statistics.median(r['machine_us'] for r in rs):6.1f} µs/request; "
                    + ", ".join(f"{name} {value:.1f}" for name, value in top.items())
                )
            if args.json:
                Path(args.json).write_text(json.dumps(runs, indent=1))
    finally:
        if args.database_url:
            h.drop_schema(args.database_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
