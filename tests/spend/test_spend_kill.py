"""kill -9 under load loses no answered request's spend, and the replay counts none twice.

A child process plays the gateway: 64 tasks append records as fast as they can, and each prints
its request id only after ``append`` returned (the moment a gateway would finish the response),
while a shipper in the same process stores batches. The test kills it with SIGKILL mid-run, at a
random point (mid-append, mid-fsync, mid-transaction, mid-checkpoint: wherever it happens to be),
then replays the journal with a fresh Journal and Shipper into the same real database.
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from spend_harness import key_spend, new_key

from llmswitch.spend import FsyncMode, Journal, Shipper
from llmswitch.store import Store, open_store

GATEWAY = """
import asyncio, sys
from llmswitch.spend import Journal, Shipper, SpendRecord
from llmswitch.store import open_store

directory, url, fsync, keys = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
sys.stdout.reconfigure(line_buffering=True)  # one write per id, so the kill loses none printed

async def serve(worker, journal):
    for i in range(10**9):
        request_id = f"w{worker}-{i}"
        cost = (i % 7 + 1) / 1024  # binary fractions: sums are exact in any order
        await journal.append(SpendRecord(request_id=request_id, key_hash=keys[i % len(keys)], cost=cost))
        print(request_id)  # answered

async def main():
    async with (
        open_store(url) as store,
        Journal(directory, fsync=fsync, segment_bytes=64_000) as journal,
        Shipper(journal, store, batch_size=200, interval=0.01),
    ):
        await asyncio.gather(*(serve(w, journal) for w in range(64)))

asyncio.run(main())
"""

_ID = re.compile(r"w(\d+)-(\d+)")


def cost_of(request_id: str) -> float:
    match = _ID.fullmatch(request_id)
    assert match is not None, request_id
    return (int(match[2]) % 7 + 1) / 1024


def run_and_kill(journal_dir: Path, url: str, fsync: FsyncMode, keys: list[str], kill_after: int) -> list[str]:
    """Run the child until it has answered ``kill_after`` requests, SIGKILL it; the ids it answered."""
    command = [sys.executable, "-c", GATEWAY, str(journal_dir), url, fsync, ",".join(keys)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stderr is not None
        watchdog = threading.Timer(120, child.kill)
        watchdog.start()
        try:
            answered: list[bytes] = []
            for line in child.stdout:
                answered.append(line)
                if len(answered) >= kill_after:
                    child.send_signal(signal.SIGKILL)
                    break
            answered += child.stdout.readlines()  # whatever it printed before the signal landed
            errors = child.stderr.read().decode()
        finally:
            watchdog.cancel()
    assert child.returncode == -signal.SIGKILL, errors
    # a line cut by the kill (no newline) was not fully printed: it does not count as answered
    return [line.decode().strip() for line in answered if line.endswith(b"\n")]


@pytest.mark.slow
@pytest.mark.parametrize("fsync", ["always", "os"])
def test_kill_9_under_load_loses_no_answered_record(store_url: str, journal_dir: Path, fsync: FsyncMode) -> None:
    async def make_keys() -> list[str]:
        async with open_store(store_url) as store:
            return [await new_key(store) for _ in range(3)]

    keys = asyncio.run(make_keys())
    started = time.perf_counter()
    answered = run_and_kill(journal_dir, store_url, fsync, keys, kill_after=random.randint(5000, 20000))
    elapsed = time.perf_counter() - started

    async def replay() -> None:
        async with open_store(store_url) as store:
            before = len(await _stored(store))
            async with Journal(journal_dir) as journal, Shipper(journal, store) as shipper:
                await asyncio.wait_for(shipper.drain(), 60)
            stored = await _stored(store)
            print(
                f"\nkill -9 ({fsync}, {store.url.split(':')[0]}): {len(answered)} answered in {elapsed:.1f}s, "
                f"{before} stored before the kill, {len(stored)} after replay "
                f"({shipper.stats.inserted} new, {shipper.stats.shipped - shipper.stats.inserted} already stored, "
                f"{shipper.stats.skipped_lines} torn lines skipped)"
            )
            assert len(answered) == len(set(answered))
            missing = set(answered) - set(stored)
            assert not missing, f"{len(missing)} answered records lost, e.g. {sorted(missing)[:5]}"
            # appended but killed before printing: stored too, and as much a part of the spend
            assert len(stored) == len(set(stored)) >= len(answered)
            for k, key in enumerate(keys):
                mine = [rid for rid in stored if int(_ID.fullmatch(rid)[2]) % len(keys) == k]  # type: ignore[index]
                assert await key_spend(store, key) == sum(cost_of(rid) for rid in mine)

    asyncio.run(replay())


async def _stored(store: Store) -> list[str]:
    return [rec.request_id for rec in await store.list_spend_logs(limit=10**7)]
