"""How fast the dashboard's pages load from the gateway with a big store: 10,000 keys, 1,000,000 spend rows.

Goal (issue 20): every page's API calls answered in under 300 ms, measured at the client, from
``llmswitch serve`` on this machine.

    .venv/bin/python bench/ui_pages.py                       # SQLite (the default store), seeded in a temp dir
    .venv/bin/python bench/ui_pages.py --store postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/ui_pages.py --db /tmp/ui.db        # seed once, reuse on the next run

Seeds through the store's own API: 50 teams (each with an admin), 1,000 users, 10,000 keys, then
1,000,000 spend records spread over the last 90 days (newest about now), from every key, across 6
model groups, 3% errors and 5% cache hits. Then starts ``llmswitch serve`` on that store and, for
each page, makes the calls the page makes (app.js), those the page makes together at the same time,
``--rounds`` times (after one warm-up), and prints the median and 95th percentile of the page's wall
time. A team admin's pages are timed too. Exits 0 when every page's median is under the goal. The
spend page's default range is 7 days; its 30- and 90-day ranges are timed too, and their first load
(nothing of the past days read yet) is reported but is not held to the goal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import _harness as h

from llmswitch.store import KeyRecord, SpendRecord, SubjectRecord, open_store
from llmswitch.store.records import CheckedSpendRecords

GOAL_MS = 300.0
KEYS, TEAMS, USERS, ROWS, DAYS = 10_000, 50, 1_000, 1_000_000, 90
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet", "gemini-flash", "mistral-large", "embed-small")
PRICES = {"gpt-4o": 2.5e-6, "gpt-4o-mini": 1.5e-7, "claude-sonnet": 3e-6, "gemini-flash": 3e-7}


def _key(i: int) -> str:
    return f"sk-bench-ui-{i:06d}-{'x' * 24}"


async def seed(url: str, keys: int, rows: int) -> None:
    rng = random.Random(20)
    store = open_store(url)
    await store.open()
    try:
        await store.migrate()
        if await store.count_keys() >= keys:
            print(f"store already seeded ({await store.count_keys()} keys)", flush=True)
            return
        started = time.perf_counter()
        for u in range(USERS):
            await store.create_subject(SubjectRecord(kind="user", id=f"user-{u}", max_budget=100.0))
        for t in range(TEAMS):
            members = [{"user_id": f"user-{t}", "role": "admin"}] + [
                {"user_id": f"user-{u}", "role": "user"} for u in range(TEAMS + t, USERS, TEAMS)
            ]
            team = SubjectRecord(kind="team", id=f"team-{t}", alias=f"Team {t}", max_budget=5000.0)
            await store.create_subject(team)
            await store.update_subject("team", team.id, members_with_roles=members)
        owners: list[tuple[str, str, str, str]] = []
        for i in range(keys):
            team_id, user_id = f"team-{i % TEAMS}", f"user-{i % USERS}" if i >= TEAMS else f"user-{i}"
            rec = KeyRecord.for_key(
                _key(i),
                key_alias=f"key-{i}",
                team_id=team_id,
                user_id=user_id,
                max_budget=rng.choice([None, 10.0, 50.0]),
            )
            await store.create_key(rec)
            owners.append((rec.token_hash, team_id, user_id, f"key-{i}"))
        print(f"seeded {USERS} users, {TEAMS} teams, {keys} keys in {time.perf_counter() - started:.0f} s", flush=True)
        now = datetime.now(UTC)
        first = now - timedelta(days=DAYS)
        step = (now - first) / rows
        started = time.perf_counter()
        batch = CheckedSpendRecords()
        for n in range(rows):
            token, team_id, user_id, alias = owners[rng.randrange(keys)]
            model = rng.choice(MODELS)
            status = 200 if rng.random() < 0.97 else rng.choice((429, 500, 503))
            hit = status == 200 and rng.random() < 0.05
            tokens_in, tokens_out = rng.randrange(10, 4000), rng.randrange(0, 800) if status == 200 else 0
            price = PRICES.get(model, 1e-6)
            cost = None if model == "embed-small" else round((tokens_in + 4 * tokens_out) * price, 9)
            batch.append(
                SpendRecord(
                    request_id=f"bench-ui-{n}",
                    time=first + step * n,
                    key_hash=token,
                    key_alias=alias,
                    user_id=user_id,
                    team_id=team_id,
                    model_group=model,
                    deployment_id=f"{model}-1",
                    provider="openai",
                    model=model,
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    cost=0.0 if hit else cost,
                    cache_hit=hit,
                    cache_saved_cost=cost if hit else None,
                    latency_ms=rng.uniform(80, 2500),
                    status=status,
                    error_class=None if status == 200 else "RateLimitError" if status == 429 else "APIError",
                )
            )
            if len(batch) == 10_000:
                await store.insert_spend_logs(batch)
                batch = CheckedSpendRecords()
                if (n + 1) % 100_000 == 0:
                    print(f"  {n + 1:>9,} spend rows ({time.perf_counter() - started:.0f} s)", flush=True)
        if batch:
            await store.insert_spend_logs(batch)
    finally:
        await store.close()


@contextlib.contextmanager
def gateway(url: str, workdir: Path) -> Iterator[int]:
    port = h.free_port()
    config = workdir / "ui-bench.yaml"
    where = f"database_url: {json.dumps(url)}" if url.startswith("postgres") else f"store_path: {json.dumps(url)}"
    config.write_text(
        "model_list:\n"
        + "".join(
            f"  - model_name: {m}\n    litellm_params:\n      model: openai/{m}\n      api_base: http://127.0.0.1:9/v1\n"
            f"      api_key: sk-none\n"
            for m in MODELS
        )
        + "router_settings:\n  fallbacks: [{gpt-4o: [claude-sonnet]}]\n"
        + f"general_settings:\n  master_key: {h.MASTER}\n  {where}\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in h._ENV_DROP}
    env["LLMSWITCH_JOURNAL_DIR"] = str(workdir / "journal")
    proc = subprocess.Popen(
        [str(h.LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "gateway.log", "wb"),  # noqa: SIM115
    )
    try:
        h.wait_port(port, 120)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


def get(port: int, path: str, key: str) -> float:
    """One GET on its own connection (as a browser's first load); its wall time in ms. Fails on a non-200."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"authorization": f"Bearer {key}"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {body[:300]!r}")
    return (time.perf_counter() - started) * 1000


def pages(today: date, team: str | None, top_keys: list[str]) -> dict[str, list[list[str]]]:
    """Each page's calls (app.js), as steps of calls made together."""
    t = f"&team_id={team}" if team else ""
    week_ago, month_ago, quarter_ago = (today - timedelta(days=n - 1) for n in (7, 30, 90))

    def spend(since: date, max_age: int) -> list[list[str]]:
        return [
            [
                f"/spend/daily?group_by=model&start_date={since}&end_date={today}&max_age={max_age}{t}",
                "/spend/top?group_by=key&limit=10",
                "/spend/budgets?threshold=0.8",
            ]
        ]

    return {
        "page (/ui + scripts)": [["/ui", "/ui/assets/app.js", "/ui/assets/uPlot.iife.min.js", "/ui/assets/app.css"]],
        "keys": [["/key/list?return_full_object=true&size=50&page=1"]],
        "keys, page 100": [["/key/list?return_full_object=true&size=50&page=100"]],
        "keys, search": [["/key/list?return_full_object=true&size=50&page=1&search=key-12"]],
        "users": [["/user/list?page=1&page_size=100"]],
        "teams": [["/team/list?include_keys=false"]],
        "spend (7 days)": spend(week_ago, 60),
        "spend (7 days, first load: no copy of past days)": spend(week_ago, 0),
        "spend (30 days)": spend(month_ago, 60),
        "spend (30 days, first load) [not a goal]": spend(month_ago, 0),
        "spend (90 days)": spend(quarter_ago, 60),
        "spend (90 days, first load) [not a goal]": spend(quarter_ago, 0),
        "logs": [[f"/spend/logs?limit=51&offset=0{t}"]],
        "logs, by model": [[f"/spend/logs?model=claude-sonnet&limit=51&offset=0{t}"]],
        "logs, by status": [[f"/spend/logs?status=503&limit=51&offset=0{t}"]],
        "logs, by key": [[f"/spend/logs?api_key={top_keys[0]}&limit=51&offset=0"]],
        "health": [["/health", "/model_group/info"]],
    }


def time_page(port: int, key: str, steps: list[list[str]], pool: ThreadPoolExecutor) -> float:
    started = time.perf_counter()
    for calls in steps:
        list(pool.map(lambda p: get(port, p, key), calls))
    return (time.perf_counter() - started) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", help="a PostgreSQL URL (its schema is used as is); default: SQLite in --db")
    ap.add_argument("--db", help="SQLite file, kept (default: in a temporary directory, removed)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--keys", type=int, default=KEYS)
    ap.add_argument("--rows", type=int, default=ROWS)
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmswitch-ui-bench-") as tmp:
        workdir = Path(tmp)
        url = args.store or args.db or str(workdir / "ui-bench.db")
        asyncio.run(seed(url, args.keys, args.rows))
        today = datetime.now(UTC).date()
        results: dict[str, dict[str, float]] = {}
        with gateway(url, workdir) as port, ThreadPoolExecutor(6) as pool:  # a browser's 6 connections per host
            top = [_key(i) for i in range(0, 10 * TEAMS, TEAMS)]  # ten keys of team-0
            who = {"master key": (h.MASTER, None), "team admin (team-0)": (_key(0), "team-0")}
            for role, (key, team) in who.items():
                for name, steps in pages(today, team, top).items():
                    if team and name.startswith("page"):
                        continue
                    time_page(port, key, steps, pool)  # warm-up
                    times = [time_page(port, key, steps, pool) for _ in range(args.rounds)]
                    results[f"{role}: {name}"] = {"median_ms": h.median(times), "p95_ms": h.percentile(times, 95)}
        load = os.getloadavg()
        print(
            f"\n{args.keys:,} keys, {args.rows:,} spend rows, {'PostgreSQL' if args.store else 'SQLite'}; "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; goal: median < {GOAL_MS:.0f} ms"
        )
        print(f"{'page':<48} {'median ms':>10} {'p95 ms':>10}")
        for name, r in results.items():
            flag = "" if r["median_ms"] < GOAL_MS or "not a goal" in name else "  over the goal"
            print(f"{name:<48} {r['median_ms']:>10.1f} {r['p95_ms']:>10.1f}{flag}")
        if args.json:
            Path(args.json).write_text(json.dumps({"results": results, "load": load}, indent=2))
    met = all(r["median_ms"] < GOAL_MS for name, r in results.items() if "not a goal" not in name)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
