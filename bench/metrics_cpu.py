"""What the Prometheus metrics cost: the gateway's CPU per request with metrics on (the default) and off.

One gateway (``llmswitch serve``, one worker, ``../shared/bench/config.yaml`` against nginx from
``../shared/bench/upstream.py``, a virtual key, spend recording on) at a time, started with
``LLMSWITCH_METRICS=on`` or ``off`` in turns for ``--rounds``; wrk drives it (``--conns`` connections,
non-streaming, then streaming) while Prometheus is not scraping, and the gateway process's CPU time
(utime + stime from ``/proc/PID/stat``) over the run divided by the requests done is its CPU per
request. Medians per setting, and the difference.

    .venv/bin/python bench/metrics_cpu.py [--seconds 8] [--rounds 3] [--conns 8] [--json FILE]

About two minutes. A benchmark, not a test: the machine is shared, so CPU time per request (not
requests per second) is the figure to compare, within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import gateway, machine, upstream, wrk, wrk_script


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(machine())
    results: dict[str, dict[str, list[float]]] = {s: {"json": [], "stream": []} for s in ("on", "off")}
    with upstream() as up:
        config = up.config_yaml()
        for r in range(args.rounds):
            for setting in ("on", "off") if r % 2 == 0 else ("off", "on"):
                os.environ["LLMSWITCH_METRICS"] = setting
                with gateway(config) as gw:
                    key = gw.new_key()
                    for kind in ("json", "stream"):
                        script = wrk_script(config.parent, "bench", kind == "stream", key)
                        url = gw.base + "/v1/chat/completions"
                        wrk(url, script, args.conns, 1)  # warm up
                        c0 = cpu_seconds(gw.pid)
                        out = wrk(url, script, args.conns, args.seconds)
                        cpu = cpu_seconds(gw.pid) - c0
                        if out["non2xx"]:
                            raise RuntimeError(f"{out['non2xx']} failed requests; see {gw.log}")
                        per = cpu / out["requests"] * 1e6
                        results[setting][kind].append(per)
                        print(
                            f"round {r + 1} metrics {setting:3} {kind:6}: {per:6.1f} µs CPU/request ({out['rps']:.0f} req/s)"
                        )
    os.environ.pop("LLMSWITCH_METRICS", None)
    summary = {}
    for kind in ("json", "stream"):
        on, off = statistics.median(results["on"][kind]), statistics.median(results["off"][kind])
        summary[kind] = {"on_us": on, "off_us": off, "delta_us": on - off}
        print(
            f"{kind:6}: metrics on {on:.1f} µs CPU/request, off {off:.1f}: {on - off:+.1f} µs ({(on - off) / off:+.1%})"
        )
    if args.json:
        args.json.write_text(json.dumps({"rounds": results, "medians": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
