"""The workers' series, combined, in the Prometheus text format 0.0.4 or OpenMetrics 1.0.

Counters and histograms add up over every worker, those that have exited included (their totals must
not go back when a worker is replaced); a gauge combines the live workers' values only, as its family
says (sum, max or min).

    >>> from llmswitch.telemetry.metrics_families import BY_NAME
    >>> from llmswitch.telemetry.metrics_store import Snapshot
    >>> a, b = Snapshot(alive=True), Snapshot(alive=False)
    >>> a.series[("llmswitch_requests_in_flight", ())] = [2.0]
    >>> b.series[("llmswitch_requests_in_flight", ())] = [5.0]  # a worker gone: its gauge no longer counts
    >>> print(render([a, b], BY_NAME).decode().splitlines()[2])
    llmswitch_requests_in_flight 2.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from llmswitch.telemetry.metrics_families import Family
from llmswitch.telemetry.metrics_store import SeriesKey, Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def combine(snapshots: Sequence[Snapshot], families: Mapping[str, Family]) -> dict[SeriesKey, list[float]]:
    """(family, labels) -> the workers' values combined."""
    out: dict[SeriesKey, list[float]] = {}
    for snap in snapshots:
        for key, values in snap.series.items():
            fam = families.get(key[0])
            if fam is None or len(values) != fam.width:
                continue  # a family this version does not know (a worker of another version)
            if fam.kind == "gauge":
                if not snap.alive:
                    continue
                have = out.get(key)
                if have is None:
                    out[key] = list(values)
                elif fam.combine == "sum":
                    have[0] += values[0]
                elif fam.combine == "max":
                    have[0] = max(have[0], values[0])
                else:
                    have[0] = min(have[0], values[0])
                continue
            have = out.get(key)
            if have is None:
                out[key] = list(values)
            else:
                for i, x in enumerate(values):
                    have[i] += x
    return out


def render(snapshots: Sequence[Snapshot], families: Mapping[str, Family], *, openmetrics: bool = False) -> bytes:
    combined = combine(snapshots, families)
    by_family: dict[str, list[tuple[tuple[str, ...], list[float]]]] = {}
    for (name, labels), values in combined.items():
        by_family.setdefault(name, []).append((labels, values))
    lines: list[str] = []
    for fam in families.values():
        rows = by_family.get(fam.name)
        if not rows:
            continue
        rows.sort(key=lambda r: r[0])
        name = fam.name
        # 0.0.4 names a counter's family with its _total; OpenMetrics names it without
        typed = name + "_total" if fam.kind == "counter" and not openmetrics else name
        lines.append(f"# HELP {typed} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {typed} {fam.kind}")
        for labels, values in rows:
            pairs = [f'{k}="{_escape(v)}"' for k, v in zip(fam.labels, labels, strict=False) if v]
            if fam.kind == "counter":
                lines.append(f"{name}_total{_braces(pairs)} {_number(values[0])}")
            elif fam.kind == "gauge":
                lines.append(f"{name}{_braces(pairs)} {_number(values[0])}")
            else:
                total = 0.0
                for bound, count in zip((*fam.buckets, math.inf), values, strict=False):
                    total += count
                    le = "+Inf" if bound == math.inf else repr(float(bound))
                    with_le = [*pairs, 'le="' + le + '"']
                    lines.append(f"{name}_bucket{_braces(with_le)} {_number(total)}")
                lines.append(f"{name}_count{_braces(pairs)} {_number(total)}")
                lines.append(f"{name}_sum{_braces(pairs)} {_number(values[-1])}")
    if openmetrics:
        lines.append("# EOF")
    return ("\n".join(lines) + "\n").encode()


def _braces(pairs: list[str]) -> str:
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(x: float) -> str:
    if x != x:
        return "NaN"
    if x == math.inf:
        return "+Inf"
    if x == -math.inf:
        return "-Inf"
    return repr(float(x))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
