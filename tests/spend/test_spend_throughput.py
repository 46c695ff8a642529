"""Group commit: many concurrent appends share each write and fsync. Reports records/s, asserts no timing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from spend_harness import record

from llmswitch.spend import FsyncMode, Journal


@pytest.mark.parametrize("fsync", ["always", "os"])
def test_concurrent_appends_share_commits(journal_dir: Path, fsync: FsyncMode) -> None:
    tasks, per_task = 500, 40

    async def main() -> tuple[float, float, Journal]:
        async with Journal(journal_dir, fsync=fsync) as journal:
            # one append at a time: every record pays a whole commit (the floor of per-request latency)
            started = time.perf_counter()
            for i in range(500):
                await journal.append(record(f"solo-{i}", "ab" * 32, user_id="alice", model_group="gpt-4o"))
            solo = 500 / (time.perf_counter() - started)
            assert journal.stats.commits == 500

            async def gateway_task(t: int) -> None:
                for i in range(per_task):
                    await journal.append(record(f"{t}-{i}", "ab" * 32, user_id="alice", model_group="gpt-4o"))

            started = time.perf_counter()
            await asyncio.gather(*(gateway_task(t) for t in range(tasks)))
            concurrent = tasks * per_task / (time.perf_counter() - started)
        return solo, concurrent, journal

    solo, concurrent, journal = asyncio.run(main())
    commits = journal.stats.commits - 500
    print(
        f"\nspend journal, fsync={fsync}: {solo:,.0f} records/s one at a time; "
        f"{concurrent:,.0f} records/s from {tasks} concurrent tasks "
        f"({tasks * per_task} records in {commits} commits, {tasks * per_task / commits:.0f} per commit)"
    )
    assert journal.stats.appends == 500 + tasks * per_task
    if fsync == "always":
        # the point of group commit: far fewer writes and fsyncs than records
        assert commits <= tasks * per_task / 20
    else:
        # mode "os" writes each line from the event loop as it comes: no thread, no batching needed
        assert commits == tasks * per_task
