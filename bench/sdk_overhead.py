"""What ``llmswitch.acompletion`` adds per call over a raw aiohttp request, against the 150 µs goal.

nginx (``../shared/bench/upstream.py``) answers chat completions as JSON on one port and as an
11-chunk SSE stream on the other. Both clients send the same body to the same upstream, N sequential
calls each on one event loop (asyncio's own), taking turns in blocks so the machine's drift falls on
both alike:

- **raw**: one ``aiohttp.ClientSession``; POST the body, ``json.loads`` the answer (for a stream: read
  it line by line and ``json.loads`` every ``data:`` chunk up to ``[DONE]``);
- **sdk**: ``await llmswitch.acompletion(model="openai/gpt-4o-mini", api_base=..., api_key=...)``
  (for a stream: ``stream=True`` and iterate its chunks).

Prints the median and p90 µs per call of each and the overhead (difference of medians, and the median
of the per-block differences of means), non-streaming and streaming.

    .venv/bin/python bench/sdk_overhead.py [--n 5000] [--block 250] [--warmup 300] [--json out.json]

A benchmark, not a test: CI does not run it. Everything it starts (nginx) it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h

GOAL_US = 150.0
MODEL = "openai/gpt-4o-mini"
KEY = "sk-upstream"

Call = Callable[[], Awaitable[object]]


def raw_calls(session: aiohttp.ClientSession, base: str) -> tuple[Call, Call]:
    hdr = {"content-type": "application/json", "authorization": f"Bearer {KEY}"}
    url = base + "/chat/completions"
    plain = json.dumps({"model": "gpt-4o-mini", "messages": h.MESSAGES}).encode()
    streamed = json.dumps(
        {"model": "gpt-4o-mini", "messages": h.MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    ).encode()

    async def call() -> object:
        async with session.post(url, data=plain, headers=hdr) as r:
            return json.loads(await r.read())

    async def stream() -> object:
        chunks = []
        async with session.post(url, data=streamed, headers=hdr) as r:
            async for line in r.content:
                if line.startswith(b"data: {"):
                    chunks.append(json.loads(line[6:]))
        return chunks

    return call, stream


def sdk_calls(json_base: str, sse_base: str) -> tuple[Call, Call]:
    import llmswitch

    async def call() -> object:
        return await llmswitch.acompletion(model=MODEL, messages=h.MESSAGES, api_base=json_base, api_key=KEY)

    async def stream() -> object:
        it = await llmswitch.acompletion(model=MODEL, messages=h.MESSAGES, api_base=sse_base, api_key=KEY, stream=True)
        return [c async for c in it]

    return call, stream


async def timed(fn: Call, count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


async def compare(raw: Call, sdk: Call, n: int, block: int, warmup: int) -> dict:
    await timed(raw, warmup)
    await timed(sdk, warmup)
    times: dict[str, list[float]] = {"raw": [], "sdk": []}
    block_diffs = []
    done = 0
    while done < n:
        size = min(block, n - done)
        r = await timed(raw, size)
        s = await timed(sdk, size)
        times["raw"] += r
        times["sdk"] += s
        block_diffs.append(sum(s) / size - sum(r) / size)
        done += size
    out = {name: {"median_us": h.median(ts), "p90_us": h.percentile(ts, 90)} for name, ts in times.items()}
    out["overhead_median_us"] = out["sdk"]["median_us"] - out["raw"]["median_us"]
    out["overhead_block_means_us"] = h.median(block_diffs)
    return out


async def run(up: h.Upstream, n: int, block: int, warmup: int) -> dict:
    sdk_call, sdk_stream = sdk_calls(up.json_base, up.sse_base)
    async with aiohttp.ClientSession() as session:
        raw_json, _ = raw_calls(session, up.json_base)
        _, raw_stream = raw_calls(session, up.sse_base)
        return {
            "nonstream": await compare(raw_json, sdk_call, n, block, warmup),
            "stream": await compare(raw_stream, sdk_stream, n, block, warmup),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000, help="measured calls per client and kind (default 5000)")
    ap.add_argument("--block", type=int, default=250, help="calls per client per turn (default 250)")
    ap.add_argument("--warmup", type=int, default=300, help="unrecorded calls first (default 300)")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    with h.upstream() as up:
        res = asyncio.run(run(up, a.n, a.block, a.warmup))
    print(f"llmswitch.acompletion vs raw aiohttp, {a.n} sequential calls each, blocks of {a.block}; {h.machine()}")
    print(f"{'':10s} {'raw p50 µs':>11s} {'sdk p50 µs':>11s} {'raw p90 µs':>11s} {'sdk p90 µs':>11s}"
          f" {'added (p50)':>12s} {'added (blocks)':>15s}")  # fmt: skip
    for kind, r in res.items():
        print(
            f"{kind:10s} {r['raw']['median_us']:11.0f} {r['sdk']['median_us']:11.0f} {r['raw']['p90_us']:11.0f}"
            f" {r['sdk']['p90_us']:11.0f} {r['overhead_median_us']:12.0f} {r['overhead_block_means_us']:15.0f}"
        )
    ok = all(r["overhead_median_us"] <= GOAL_US for r in res.values())
    print(f"goal: acompletion adds <= {GOAL_US:.0f} µs per call (difference of medians): {'ok' if ok else 'MISSED'}")
    if a.json:
        Path(a.json).write_text(json.dumps({"n": a.n, "goal_us": GOAL_US, **res}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
