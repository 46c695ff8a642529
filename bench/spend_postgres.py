"""Spend batches of two gateway processes on one PostgreSQL: CPU per record, time per batch, keys re-read.

    .venv/bin/python bench/spend_postgres.py [--database-url postgresql://127.0.0.1:5432/test]
        [--processes 2] [--keys 200] [--batch 100] [--seconds 8] [--rev NAME=REV ...] [--json FILE]

What each gateway's spend shipper does, without the gateway: ``--processes`` processes (default 2, as two
instances) share one PostgreSQL schema of the run's own (dropped afterwards) holding ``--keys`` virtual
keys, and each stores batches of ``--batch`` spend records (``Store.insert_spend_logs``, the shipper's
only database call) as fast as the database takes them, for ``--seconds``. Every record is for one of
the keys at random (a gateway serving that many active keys). Per process: batches and records per
second, the process's CPU time per record (the client's side: encoding, asyncpg, the event loop), and
the median and p99 time a batch took (its transaction, waits for locks included); and the CPU time of
the PostgreSQL server's processes over the run, per record stored (the machine's other PostgreSQL
clients count too: run it on a quiet server). Then what that
traffic costs every gateway's key cache: the key rows ``keys_changed_since`` returns for the run, i.e.
what each instance's next refresh (once a second) reads again, and how far the keys' change counter
moved.

``--rev NAME=REV`` runs an exported commit's ``src`` (``work``: the checkout's), in turns, as
``gateway_cpu.py`` does. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

# after the runs end, the database's CPU is read this long after their end, and connections close after twice it
_SETTLE_S = 0.75
DEFAULT_URL = os.environ.get("LLMSWITCH_TEST_DATABASE_URL", "postgresql://127.0.0.1:5432/test")


def _store(url: str, schema: str):  # type: ignore[no-untyped-def]
    from llmswitch.store.postgres import PostgresStore

    joiner = "&" if "?" in url else "?"
    return PostgresStore(f"{url}{joiner}schema={schema}", max_size=2)


async def child(url: str, schema: str, keys: list[str], batch: int, seconds: float, start_at: float) -> dict:
    import random

    from llmswitch.store import SpendRecord

    store = _store(url, schema)
    await store.open()
    rng = random.Random(os.getpid())
    prefix = uuid.uuid4().hex[:12]
    n = 0
    took: list[float] = []
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu0, end = time.process_time(), time.monotonic() + seconds
    while time.monotonic() < end:
        records = [
            SpendRecord(
                request_id=f"{prefix}-{n + i}",
                key_hash=rng.choice(keys),
                model_group="bench",
                provider="openai",
                model="gpt-4o-mini",
                input_tokens=12,
                output_tokens=8,
                cost=0.0000125,
                latency_ms=0.5,
            )
            for i in range(batch)
        ]
        t0 = time.perf_counter()
        await store.insert_spend_logs(records)
        took.append(time.perf_counter() - t0)
        n += batch
    cpu = time.process_time() - cpu0
    # the parent reads the database's CPU now: a backend's time goes with it when its connection closes
    await asyncio.sleep(max(0.0, start_at + seconds + _SETTLE_S * 2 - time.time()))
    await store.close()
    took.sort()
    return {
        "records": n,
        "batches": len(took),
        "cpu_us_per_record": cpu / max(1, n) * 1e6,
        "batch_ms_p50": statistics.median(took) * 1e3,
        "batch_ms_p99": took[min(len(took) - 1, int(len(took) * 0.99))] * 1e3,
    }


async def setup(url: str, schema: str, nkeys: int) -> list[str]:
    import asyncpg

    from llmswitch.store import KeyRecord

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    store = _store(url, schema)
    await store.open()
    await store.migrate()
    hashes = []
    for i in range(nkeys):
        rec = await store.create_key(KeyRecord.for_key(f"sk-bench-{schema}-{i:06d}", max_budget=1e9))
        hashes.append(rec.token_hash)
    await store.close()
    return hashes


async def changed(url: str, schema: str, cursor: int) -> tuple[int, int]:
    store = _store(url, schema)
    await store.open()
    records, _, current = await store.keys_changed_since(cursor)
    await store.close()
    return len(records), current


async def cursor_now(url: str, schema: str) -> int:
    store = _store(url, schema)
    await store.open()
    _, _, current = await store.keys_changed_since(2**62)
    await store.close()
    return current


async def drop(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def run_version(args: argparse.Namespace, src: Path | None) -> dict:
    schema = f"bench_spend_{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    me = [sys.executable, __file__]
    try:
        keys = json.loads(
            subprocess.run(
                [*me, "--_setup", schema, "--database-url", args.database_url, "--keys", str(args.keys)],
                env=env, check=True, capture_output=True, text=True,
            ).stdout
        )  # fmt: skip
        before = int(
            subprocess.run(
                [*me, "--_cursor", schema, "--database-url", args.database_url],
                env=env, check=True, capture_output=True, text=True,
            ).stdout
        )  # fmt: skip
        start_at = time.time() + 2.0
        procs = [
            subprocess.Popen(
                [
                    *me,
                    "--_child",
                    schema,
                    "--database-url",
                    args.database_url,
                    "--batch",
                    str(args.batch),
                    "--seconds",
                    str(args.seconds),
                    "--_start",
                    repr(start_at),
                ],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.processes)
        ]
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(json.dumps(keys))
            p.stdin.close()
        time.sleep(max(0.0, start_at - time.time()))
        db0 = postgres_cpu()
        time.sleep(max(0.0, start_at + args.seconds + _SETTLE_S - time.time()))
        db1 = postgres_cpu()
        results = []
        for p in procs:
            assert p.stdout is not None
            results.append(json.loads(p.stdout.read()))
            p.wait()
        rows, after = json.loads(
            subprocess.run(
                [*me, "--_changed", schema, "--database-url", args.database_url, "--_start", str(before)],
                env=env, check=True, capture_output=True, text=True,
            ).stdout
        )  # fmt: skip
    finally:
        subprocess.run([*me, "--_drop", schema, "--database-url", args.database_url], env=env, check=False)
    records = sum(r["records"] for r in results)
    return {
        "processes": results,
        "keys_reread": rows,
        "counter_moved": after - before,
        "db_cpu_us_per_record": (db1 - db0) / max(1, records) * 1e6,
    }


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on the machine (the server: this run's backends and the rest)."""
    from cpu_split import processes

    return sum(cpu for name, cpu in processes().values() if name == "postgres")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rev", action="append", default=[], help="NAME=REV (a commit) or 'work'; repeatable")
    parser.add_argument("--json", help="write the figures here too")
    for hidden in ("--_setup", "--_child", "--_changed", "--_cursor", "--_drop", "--_start"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._setup:
        print(json.dumps(asyncio.run(setup(args.database_url, args._setup, args.keys))))
        return 0
    if args._child:
        keys = json.loads(sys.stdin.read())
        out = asyncio.run(child(args.database_url, args._child, keys, args.batch, args.seconds, float(args._start)))
        print(json.dumps(out))
        return 0
    if args._cursor:
        print(asyncio.run(cursor_now(args.database_url, args._cursor)))
        return 0
    if args._changed:
        print(json.dumps(asyncio.run(changed(args.database_url, args._changed, int(args._start)))))
        return 0
    if args._drop:
        asyncio.run(drop(args.database_url, args._drop))
        return 0

    sys.path.insert(0, str(Path(__file__).parent))
    import _harness as h
    from gateway_cpu import exported

    print(h.machine())
    summary = {}
    with contextlib.ExitStack() as stack:
        for spec in args.rev or ["work"]:
            name, _, rev = spec.partition("=")
            src = None if (rev or name) == "work" else stack.enter_context(exported(rev or name))
            res = run_version(args, src)
            procs = res["processes"]
            records = sum(p["records"] for p in procs)
            cpu = statistics.median(p["cpu_us_per_record"] for p in procs)
            p50 = statistics.median(p["batch_ms_p50"] for p in procs)
            p99 = max(p["batch_ms_p99"] for p in procs)
            summary[name] = {**res, "records_per_s": records / args.seconds}
            print(
                f"{name:>8}: {args.processes} processes, {args.keys} keys, batches of {args.batch}:"
                f" {records / args.seconds:8.0f} records/s in all, {cpu:5.1f} µs CPU/record (client side),"
                f" {res['db_cpu_us_per_record']:5.1f} µs (PostgreSQL's),"
                f" batch p50 {p50:6.2f} ms p99 {p99:6.2f} ms; keys re-read by each instance's next refresh"
                f" {res['keys_reread']}, change counter moved {res['counter_moved']}  (load {os.getloadavg()[0]:.2f})"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
