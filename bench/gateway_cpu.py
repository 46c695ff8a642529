"""Gateway CPU per request, A/B: the worker's CPU time per answered request, for two or more versions of the code.

    .venv/bin/python bench/gateway_cpu.py                                  # main against the working tree
    .venv/bin/python bench/gateway_cpu.py --rev old=39d01b1 --rev main=main --rounds 5 --seconds 8
    .venv/bin/python bench/gateway_cpu.py --stream                         # streams (model bench-stream)
    .venv/bin/python bench/gateway_cpu.py --profile work --py-spy /tmp/perf-tools/bin/py-spy   # plus py-spy's collapsed stacks

Throughput on this shared 2-core machine moves with whatever else runs; the CPU time the gateway process
spends per request moves much less. Each version (``--rev NAME=REV``: a commit, exported with
``git archive`` into a temporary directory and run through PYTHONPATH; ``work``: the checkout's ``src``)
runs as ``llmswitch serve`` (one worker; the config of ``../shared/bench/compare.py`` on free ports; a
virtual key from ``/key/generate`` with an rpm limit and a budget; SQLite store, journal and shipper on)
against one nginx upstream. wrk drives them in turns for ``--rounds`` at ``--conns`` connections, after a
warm-up run each; for each run the process's CPU time (utime + stime of every thread, from
``/proc/PID/stat``: the shipper's thread included) over the run, divided by the requests wrk completed,
is its cost per request; the same for the event loop's thread alone (the process's first thread). Prints every run, the medians, and each version's median against the first's.

About (versions x rounds x seconds) plus a warm-up each. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import _harness as h

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """utime + stime of the process (every thread), or of one of its threads, in seconds."""
    stat = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    fields = Path(stat).read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


@contextlib.contextmanager
def exported(rev: str) -> Iterator[Path]:
    """``src`` of ``rev`` in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="llmswitch-rev-") as tmp:
        archive = subprocess.run(["git", "archive", rev, "src"], cwd=h.REPO, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp) / "src"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rev", action="append", default=[], help="NAME=REV (a commit) or 'work'; repeatable")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--redis", metavar="HOST[:PORT]", help="limits in this Redis (router_settings.redis_host)")
    parser.add_argument(
        "--database-url", help="keys and spend in this PostgreSQL instead of SQLite (with ?schema=, dropped at the end)"
    )
    parser.add_argument("--stream", action="store_true", help="streams (model bench-stream) instead of JSON answers")
    parser.add_argument("--profile", help="NAME of a version to record with py-spy during its last run")
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable (with --profile)")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    revs = args.rev or ["main=main", "work"]
    model = "bench-stream" if args.stream else "bench"
    h.own_schema(args.database_url)
    print(h.machine())
    h.drop_schema(args.database_url)
    with contextlib.ExitStack() as stack:
        stack.callback(h.drop_schema, args.database_url)  # last, once the gateways have stopped
        up = stack.enter_context(h.upstream())
        gateways: dict[str, h.Gateway] = {}
        for spec in revs:
            name, _, rev = spec.partition("=")
            src = None if (rev or name) == "work" else stack.enter_context(exported(rev or name))
            config = up.config_yaml(f"gw-{name}", *h.shared_state(args.redis, args.database_url))
            gw = stack.enter_context(h.gateway(config, src=src))
            key = gw.new_key(rpm_limit=10_000_000, max_budget=1e9)
            gateways[name] = gw
            script = h.wrk_script(up.work, model, args.stream, key)
            gw.script = script  # type: ignore[attr-defined]
            h.wrk(gw.base + "/v1/chat/completions", script, args.conns, args.warmup)
        runs: dict[str, list[dict]] = {name: [] for name in gateways}
        for r in range(args.rounds):
            for name, gw in gateways.items():
                spy = None
                if args.profile == name and r == args.rounds - 1:
                    out = Path(tempfile.gettempdir()) / f"gateway-cpu-{name}.txt"
                    spy = subprocess.Popen(
                        [
                            args.py_spy,
                            "record",
                            "-p",
                            str(gw.pid),
                            "-o",
                            str(out),
                            "-r",
                            "500",
                            "-f",
                            "raw",
                            "--threads",
                            "--nonblocking",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    time.sleep(1)
                c0, l0 = cpu_seconds(gw.pid), cpu_seconds(gw.pid, gw.pid)
                res = h.wrk(gw.base + "/v1/chat/completions", gw.script, args.conns, args.seconds)  # type: ignore[attr-defined]
                c1, l1 = cpu_seconds(gw.pid), cpu_seconds(gw.pid, gw.pid)
                if spy is not None:
                    spy.send_signal(2)
                    spy.wait(30)
                    print(f"(py-spy's collapsed stacks of {name}: {out})")
                res["cpu_us"] = (c1 - c0) / max(1, res["requests"]) * 1e6
                res["loop_us"] = (l1 - l0) / max(1, res["requests"]) * 1e6
                runs[name].append(res)
                print(
                    f"round {r + 1} {name:>8}: {res['rps']:8.0f} req/s  {res['cpu_us']:6.1f} µs CPU/request"
                    f" ({res['loop_us']:6.1f} in the event loop's thread)"
                    f"  non-2xx {res['non2xx']}  (load {os.getloadavg()[0]:.2f})"
                )
        first = next(iter(runs))
        summary = {}
        for name, rs in runs.items():
            cpu = statistics.median(r["cpu_us"] for r in rs)
            loop = statistics.median(r["loop_us"] for r in rs)
            rps = statistics.median(r["rps"] for r in rs)
            summary[name] = {"cpu_us": cpu, "loop_us": loop, "rps": rps, "runs": rs}
            base = summary[first]
            print(
                f"median {name:>8}: {rps:8.0f} req/s  {cpu:6.1f} µs CPU/request ({loop:6.1f} in the event loop's"
                f" thread)  ({cpu / base['cpu_us']:.3f}x the CPU, {loop / base['loop_us']:.3f}x the loop's,"
                f" {rps / base['rps']:.3f}x the req/s of {first})"
            )
        if args.json:
            Path(args.json).write_text(json.dumps({"stream": args.stream, "versions": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
