"""A gateway-run batch of 10,000 lines against a rate-limited loopback upstream: time against what the
upstream's rate allows (goal: within 1.5x), and the gateway's memory as the batch runs (goal: flat).

    .venv/bin/python bench/batch.py [--lines 10000] [--rps 150] [--instances 1] [--json bench/results/batch.json]

The upstream is llmswitch's fake (in this process, its own thread) answering at most ``--rps`` requests a
second (a token bucket, burst of one second's worth); beyond that it answers 429 with Retry-After, as a
provider does. The gateway (``llmswitch serve``, SQLite store and spend journal in a temporary
directory, batches run by the gateway) knows the deployment's rpm, so it paces its lines to it. The
client is the official openai SDK: files.create, batches.create, poll, files.content. The gateway's
resident memory is sampled every second while the batch runs. Exits 0 when both goals are met.

``--instances 2`` runs two gateways on one PostgreSQL store (a fresh schema of ``--postgres``) sharing the
batch: each paces at its share of the rate (the deployment's rpm divided among them, as an operator
without shared limits would set it), and each reaches the upstream with a key of its own, so the
upstream tells how many lines each answered.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import openai

from llmswitch.testing import FakeUpstream, Reply

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import LLMSWITCH, free_port

MASTER = "sk-bench-batch-41f0c9"


class Bucket:
    """``rate`` requests a second, bursts of ``rate``: what the fake upstream lets through."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.at = time.monotonic()
        self.lock = threading.Lock()
        self.refused = 0
        self.served = 0

    def take(self) -> float:
        """0 when a request may go now, else the seconds until one may."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                self.served += 1
                return 0.0
            self.refused += 1
            return (1 - self.tokens) / self.rate


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--rps", type=float, default=150.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    load = os.getloadavg()
    bucket = Bucket(args.rps)

    by_key: dict[str, int] = {}

    def respond(request: Any) -> Reply:
        key = request.headers.get("authorization", "")
        by_key[key] = by_key.get(key, 0) + 1
        wait = bucket.take()
        return Reply(text="ok", usage=(20, 2)) if not wait else Reply(status=429, retry_after=max(wait, 0.01))

    with tempfile.TemporaryDirectory(prefix="llmswitch-batch-bench-") as tmp, FakeUpstream() as up:
        up.responder = respond
        root = Path(tmp)
        schema = f"llmswitch_batch_bench_{os.getpid()}"
        if args.instances > 1:
            store = f'database_url: "{args.postgres}?schema={schema}"'
        else:
            store = f'store_path: "{root / "gw.db"}"'
        config = root / "config.yaml"
        config.write_text(
            f"""model_list:
  - model_name: bench
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: "{up.openai_base}"
      api_key: os.environ/BENCH_UPSTREAM_KEY
      rpm: {int(args.rps * 60 / args.instances)}
general_settings:
  master_key: {MASTER}
  {store}
"""
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS", "DATABASE_URL"))}
        env.update(
            LLMSWITCH_JOURNAL_DIR=str(root / "journal"),
            LLMSWITCH_BATCH_FILES_DIR=str(root / "files"),
            LLMSWITCH_BATCH_NATIVE="off",
            LLMSWITCH_BATCH_CONCURRENCY=str(args.concurrency),
            LLMSWITCH_BATCH_POLL_SECONDS="0.5",
        )
        gateways = []
        for n in range(args.instances):
            port = free_port()
            log = (root / f"gw{n}.log").open("wb")
            argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
            gateways.append(
                subprocess.Popen(
                    argv, env={**env, "BENCH_UPSTREAM_KEY": f"sk-instance-{n}"}, stdout=log, stderr=subprocess.STDOUT
                )
            )
            if n == 0:
                first_port = port
                time.sleep(3)  # the first one migrates the store alone
        gw = gateways[0]
        port = first_port
        try:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=MASTER, max_retries=5)
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.models.list()
                    break
                except openai.APIConnectionError:
                    assert time.monotonic() < deadline, "the gateway did not start"
                    time.sleep(0.1)
            lines = b"".join(
                json.dumps(
                    {
                        "custom_id": f"line-{i}",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": {
                            "model": "bench",
                            "max_tokens": 10,
                            "messages": [{"role": "user", "content": f"n {i}"}],
                        },
                    }
                ).encode()
                + b"\n"
                for i in range(args.lines)
            )
            idle_rss = rss_kib(gw.pid)
            uploaded = client.files.create(file=("bench.jsonl", io.BytesIO(lines)), purpose="batch")
            started = time.monotonic()
            batch = client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            samples: list[tuple[float, int, int]] = []
            while batch.status not in ("completed", "failed", "expired", "cancelled"):
                time.sleep(1.0)
                batch = client.batches.retrieve(batch.id)
                counts = batch.request_counts
                rss = sum(rss_kib(g.pid) for g in gateways) // len(gateways)
                samples.append((time.monotonic() - started, counts.completed if counts else 0, rss))
            elapsed = time.monotonic() - started
            assert batch.output_file_id is not None
            out = client.files.content(batch.output_file_id).content.splitlines()
        finally:
            for g in gateways:
                g.terminate()
            for g in gateways:
                g.wait(timeout=30)
            if args.instances > 1:
                import asyncio

                import asyncpg

                async def drop() -> None:
                    conn = await asyncpg.connect(args.postgres)
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                    await conn.close()

                asyncio.run(drop())
    ideal = args.lines / args.rps
    ratio = elapsed / ideal
    # memory: the resident size over the second half of the run against its first quarter (growth per line
    # answered would show as a rising second half)
    rss = [s[2] for s in samples]
    quarter = rss[: max(1, len(rss) // 4)]
    later = rss[len(rss) // 2 :] or rss
    growth = max(later) - max(quarter)
    result = {
        "lines": args.lines,
        "upstream_rps": args.rps,
        "status": batch.status,
        "answered": len(out),
        "completed": batch.request_counts.completed if batch.request_counts else None,
        "elapsed_s": round(elapsed, 1),
        "ideal_s": round(ideal, 1),
        "ratio": round(ratio, 3),
        "upstream_429s": bucket.refused,
        "instances": args.instances,
        "lines_per_instance": sorted(by_key.values(), reverse=True),
        "rss_idle_mib": round(idle_rss / 1024, 1),  # rss figures: per instance (their mean)
        "rss_first_quarter_max_mib": round(max(quarter) / 1024, 1),
        "rss_second_half_max_mib": round(max(later) / 1024, 1),
        "rss_growth_mib": round(growth / 1024, 1),
        "loadavg_before": [round(x, 2) for x in load],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    ok = batch.status == "completed" and len(out) == args.lines and ratio <= 1.5 and growth < 50 * 1024
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
