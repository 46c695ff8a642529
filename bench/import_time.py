"""How long ``import llmswitch`` takes in a fresh interpreter, against the 150 ms goal.

Each statement runs in N fresh interpreters (one unrecorded warm-up first, so .pyc files exist);
the median wall time is reported, with the interpreter's own start-up for reference, then the
modules that ``-X importtime`` blames most.

    python bench/import_time.py [--runs 20] [--top 15] [--python PATH] [--litellm] [--json out.json]

``--litellm`` adds ``import litellm`` for comparison when that interpreter can import it.
A benchmark, not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import NamedTuple

GOAL_MS = 150.0


class Timing(NamedTuple):
    label: str
    statement: str
    median_ms: float
    min_ms: float
    p90_ms: float


def wall_times(python: str, statement: str, runs: int) -> list[float]:
    """Wall time in ms of ``python -c statement`` in ``runs`` fresh interpreters."""
    cmd = [python, "-c", statement]
    subprocess.run(cmd, check=True, capture_output=True)  # warm-up: compiles and caches bytecode
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(python: str, label: str, statement: str, runs: int) -> Timing:
    ts = sorted(wall_times(python, statement, runs))
    p90 = ts[min(len(ts) - 1, round(0.9 * (len(ts) - 1)))]
    return Timing(label, statement, statistics.median(ts), ts[0], p90)


class ImportRow(NamedTuple):
    module: str
    self_us: int
    cumulative_us: int


def import_offenders(python: str, statement: str) -> list[ImportRow]:
    """Rows of ``-X importtime`` for one fresh run (module names without their tree indentation)."""
    proc = subprocess.run([python, "-X", "importtime", "-c", statement], check=True, capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        rows.append(ImportRow(name.strip(), int(self_us), int(cumulative_us)))
    return rows


def can_import(python: str, module: str) -> bool:
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def top_level(rows: list[ImportRow]) -> dict[str, int]:
    """Self time summed per top-level package: who to blame, in one line each."""
    out: dict[str, int] = {}
    for r in rows:
        pkg = r.module.split(".")[0]
        out[pkg] = out.get(pkg, 0) + r.self_us
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="fresh interpreters per statement (default 20)")
    ap.add_argument("--top", type=int, default=15, help="rows of -X importtime to show (default 15)")
    ap.add_argument("--python", default=sys.executable, help="interpreter to measure (default: this one)")
    ap.add_argument("--litellm", action="store_true", help="also time `import litellm` if importable")
    ap.add_argument("--json", help="write the numbers to this file as well")
    args = ap.parse_args(argv)

    cases = [
        ("python start-up (reference)", "pass"),
        ("import llmswitch", "import llmswitch"),
        ("from llmswitch import completion", "from llmswitch import completion"),
    ]
    if args.litellm:
        if can_import(args.python, "litellm"):
            cases.append(("import litellm", "import litellm"))
        else:
            print(f"note: {args.python} cannot import litellm; skipping the comparison", file=sys.stderr)

    timings = [measure(args.python, label, stmt, args.runs) for label, stmt in cases]
    startup = timings[0].median_ms
    print(f"{args.runs} fresh interpreters each ({args.python}), goal: import llmswitch < {GOAL_MS:.0f} ms\n")
    print(f"{'statement':<36} {'median':>9} {'min':>9} {'p90':>9} {'minus start-up':>15}  goal")
    for t in timings:
        verdict = ""
        if t.statement == "import llmswitch":
            verdict = "ok" if t.median_ms < GOAL_MS else "MISSED"
        print(
            f"{t.label:<36} {t.median_ms:>7.1f}ms {t.min_ms:>7.1f}ms {t.p90_ms:>7.1f}ms"
            f" {t.median_ms - startup:>13.1f}ms  {verdict}"
        )
    lib = next(t for t in timings if t.statement == "import llmswitch")
    other = next((t for t in timings if t.statement == "import litellm"), None)
    if other is not None:
        print(f"\nimport litellm / import llmswitch: {other.median_ms / lib.median_ms:.1f}x")

    for stmt in ("import llmswitch", "from llmswitch import completion"):
        rows = import_offenders(args.python, stmt)
        print(f"\n-X importtime, `{stmt}`: {len(rows)} modules; top {args.top} by cumulative time")
        print(f"{'module':<48} {'self':>9} {'cumulative':>11}")
        for r in sorted(rows, key=lambda r: -r.cumulative_us)[: args.top]:
            print(f"{r.module:<48} {r.self_us / 1000:>7.1f}ms {r.cumulative_us / 1000:>9.1f}ms")
        packages = top_level(rows)
        print(
            "self time by top-level package: "
            + ", ".join(f"{k} {v / 1000:.1f}ms" for k, v in list(packages.items())[:8])
        )

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"goal_ms": GOAL_MS, "runs": args.runs, "timings": [t._asdict() for t in timings]}, f, indent=2)
    return 0 if lib.median_ms < GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
