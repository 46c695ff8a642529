"""The shipper on real stores: batches, replay, exactly-once spend, outages, cleanup, refused records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from spend_harness import Unpluggable, key_spend, new_key, record, via_port, wait_until

from llmswitch.spend import Journal, Shipper, SpendRecord
from llmswitch.spend.framing import decode_line, encode_line
from llmswitch.spend.segments import REJECTED, list_segments, read_checkpoint
from llmswitch.store import Store, open_store
from llmswitch.store.urls import sqlite_path

FAST_RETRY: dict[str, Any] = {"retry_initial": 0.02, "retry_max": 0.1, "interval": 0.01}


async def append_many(journal: Journal, keys: list[str], count: int, prefix: str = "r") -> float:
    """``count`` records spread over ``keys``, appended by 50 concurrent tasks; their total cost."""

    async def worker(w: int) -> None:
        for i in range(w, count, 50):
            await journal.append(record(f"{prefix}{i}", keys[i % len(keys)], cost=(i % 5 + 1) / 1024))

    await asyncio.gather(*(worker(w) for w in range(50)))
    return sum((i % 5 + 1) / 1024 for i in range(count))


async def stored_ids(store: Store) -> list[str]:
    return [rec.request_id for rec in await store.list_spend_logs(limit=1_000_000)]


def test_records_ship_in_batches_and_add_to_their_keys_spend(store_url: str, journal_dir: Path) -> None:
    async def main() -> None:
        async with open_store(store_url) as store:
            keys = [await new_key(store) for _ in range(3)]
            async with Journal(journal_dir, segment_bytes=50_000) as journal, Shipper(journal, store) as shipper:
                await append_many(journal, keys, 1500)
                await asyncio.wait_for(shipper.drain(), 30)
                assert sorted(await stored_ids(store)) == sorted(f"r{i}" for i in range(1500))
                for k, key in enumerate(keys):
                    expected = sum((i % 5 + 1) / 1024 for i in range(k, 1500, 3))
                    assert await key_spend(store, key) == expected
                assert shipper.stats.shipped == shipper.stats.inserted == 1500
                assert 2 <= shipper.stats.batches < 1500  # batched, at most max_batch_size (1000) a transaction
                assert shipper.position == journal.committed
                # everything is stored: only the segment being written is left
                assert list_segments(journal_dir) == [journal.committed.segment]

    asyncio.run(main())


def test_records_left_by_an_earlier_run_ship_on_start(store_url: str, journal_dir: Path) -> None:
    async def main() -> None:
        async with open_store(store_url) as store:
            key = await new_key(store)
            async with Journal(journal_dir, segment_bytes=3_000) as journal:  # no shipper: as if it died
                total = await append_many(journal, [key], 300)
            assert len(list_segments(journal_dir)) > 3
            assert await stored_ids(store) == []
            async with Journal(journal_dir) as journal, Shipper(journal, store) as shipper:
                await asyncio.wait_for(shipper.drain(), 30)
                assert len(await stored_ids(store)) == 300
                assert await key_spend(store, key) == total
                assert list_segments(journal_dir) == [journal.committed.segment]

    asyncio.run(main())


def test_shipping_the_same_journal_twice_stores_and_counts_each_record_once(
    store_url: str, journal_dir: Path, tmp_path: Path
) -> None:
    async def main() -> None:
        async with open_store(store_url) as store:
            key = await new_key(store)
            async with Journal(journal_dir) as journal:
                total = await append_many(journal, [key], 400)
            # the journal as a crash would leave it if the store had committed but the checkpoint not moved
            shutil.copytree(journal_dir, tmp_path / "copy")
            for attempt in range(2):
                async with Journal(journal_dir) as journal, Shipper(journal, store) as shipper:
                    await asyncio.wait_for(shipper.drain(), 30)
                    assert shipper.stats.shipped == 400
                    assert shipper.stats.inserted == (400 if attempt == 0 else 0)
                shutil.rmtree(journal_dir)
                shutil.copytree(tmp_path / "copy", journal_dir)
            assert sorted(await stored_ids(store)) == sorted(f"r{i}" for i in range(400))
            assert await key_spend(store, key) == total

    asyncio.run(main())


async def _outage(
    shipper_store: Store,
    check_store: Store,
    journal_dir: Path,
    take_down: Callable[[], AbstractAsyncContextManager[None]],
) -> Shipper:
    """Ship, take the database away, keep appending, bring it back; every record lands once."""
    key = await new_key(check_store)
    async with Journal(journal_dir, segment_bytes=5_000) as journal:
        shipper = Shipper(journal, shipper_store, **FAST_RETRY)
        async with shipper:
            before = await append_many(journal, [key], 100, prefix="before-")
            await asyncio.wait_for(shipper.drain(), 30)
            async with take_down():
                # appends never wait for the database: these all return while it is away
                during = await asyncio.wait_for(append_many(journal, [key], 400, prefix="during-"), 30)
                appended_at = time.monotonic()
                await wait_until(lambda: shipper.stats.failed_attempts >= 3)
                assert shipper.last_error is not None
                # the lag it reports covers the records waiting: not caught up since they were appended
                assert shipper.caught_up_at <= appended_at
                # nothing shipped, so nothing deleted: the records are all still on disk
                assert len(list_segments(journal_dir)) > 5
            await asyncio.wait_for(shipper.drain(), 30)
            assert shipper.last_error is None
            await wait_until(lambda: shipper.caught_up_at > appended_at)
        assert len(await stored_ids(check_store)) == 500
        assert await key_spend(check_store, key) == before + during
        assert list_segments(journal_dir) == [journal.committed.segment]
    return shipper


def _assert_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "llmswitch.spend"]
    paused = [m for level, m in messages if level == logging.WARNING and "spend shipping paused" in m]
    resumed = [m for level, m in messages if level == logging.INFO and "spend shipping resumed" in m]
    assert len(paused) == 1 and len(resumed) == 1, messages


def test_postgres_unreachable_then_back(postgres_url: str, journal_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llmswitch.spend")

    async def main() -> None:
        proxy = Unpluggable.in_front_of(postgres_url)
        await proxy.plug()

        @asynccontextmanager
        async def unplugged() -> AsyncIterator[None]:
            await proxy.unplug()
            yield
            await proxy.plug()

        try:
            async with (
                open_store(postgres_url) as direct,
                open_store(via_port(postgres_url, proxy.port), connect_timeout=1, command_timeout=2) as proxied,
            ):
                shipper = await _outage(proxied, direct, journal_dir, unplugged)
                assert "StoreConnectionError" in caplog.text
                assert shipper.stats.failed_attempts >= 3
        finally:
            await proxy.unplug()

    asyncio.run(main())
    _assert_logged_once(caplog)


def test_sqlite_locked_by_another_process_then_free(
    sqlite_url: str, journal_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llmswitch.spend")

    async def main() -> None:
        @asynccontextmanager
        async def locked() -> AsyncIterator[None]:
            # another writer holding the database: SQLite's way of being unavailable
            other = sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None)
            other.execute("BEGIN EXCLUSIVE")
            try:
                yield
            finally:
                other.execute("ROLLBACK")
                other.close()

        async with open_store(sqlite_url, busy_timeout=0.05) as store:
            await _outage(store, store, journal_dir, locked)

    asyncio.run(main())
    _assert_logged_once(caplog)
    assert "database is locked" in caplog.text


def test_stopping_while_the_database_is_down_keeps_the_records_for_the_next_start(
    postgres_url: str, journal_dir: Path
) -> None:
    async def main() -> None:
        proxy = Unpluggable.in_front_of(postgres_url)
        async with open_store(postgres_url) as direct:
            key = await new_key(direct)
            await proxy.plug()
            async with open_store(via_port(postgres_url, proxy.port), connect_timeout=1) as proxied:
                await proxy.unplug()
                async with Journal(journal_dir) as journal:
                    shipper = Shipper(journal, proxied, **FAST_RETRY)
                    await shipper.start()
                    total = await append_many(journal, [key], 200)
                    await asyncio.wait_for(shipper.stop(timeout=0.3), 10)
            assert await stored_ids(direct) == []
            async with Journal(journal_dir) as journal, Shipper(journal, direct) as shipper:
                await asyncio.wait_for(shipper.drain(), 30)
            assert len(await stored_ids(direct)) == 200
            assert await key_spend(direct, key) == total

    asyncio.run(main())


def test_a_record_the_store_refuses_is_set_aside_and_the_others_ship(
    sqlite_url: str, journal_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> Shipper:
        async with open_store(sqlite_url) as store:
            key = await new_key(store)
            insert = store.insert_spend_logs

            async def refusing(records: Sequence[SpendRecord]) -> int:
                # what a backend does with a record it can never hold (see Store.insert_spend_logs)
                if any(rec.request_id == "poison" for rec in records):
                    raise ValueError("cannot store poison")
                return await insert(records)

            store.insert_spend_logs = refusing  # type: ignore[method-assign]
            async with Journal(journal_dir) as journal, Shipper(journal, store, **FAST_RETRY) as shipper:
                for i in range(5):
                    await journal.append(record(f"r{i}", key, cost=0.25))
                await journal.append(record("poison", key, cost=8.0))
                await journal.append(record("r5", key, cost=0.25))
                await asyncio.wait_for(shipper.drain(), 30)
            assert sorted(await stored_ids(store)) == [f"r{i}" for i in range(6)]
            assert await key_spend(store, key) == 1.5
            return shipper

    shipper = asyncio.run(main())
    assert shipper.stats.rejected == 1 and shipper.stats.inserted == 6
    rejected = (journal_dir / REJECTED).read_bytes().splitlines()
    assert [decode_line(line).request_id for line in rejected] == ["poison"]  # type: ignore[union-attr]
    assert "spend record poison refused by the store" in caplog.text


def test_drain_needs_a_started_shipper(sqlite_url: str, journal_dir: Path) -> None:
    async def main() -> None:
        async with open_store(sqlite_url) as store, Journal(journal_dir) as journal:
            shipper = Shipper(journal, store)
            with pytest.raises(RuntimeError, match="start"):
                await shipper.drain()
            await shipper.stop()  # not started: nothing to do

    asyncio.run(main())
    with pytest.raises(ValueError, match="batch_size"):
        Shipper(None, None, batch_size=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_batch_size"):
        Shipper(None, None, batch_size=100, max_batch_size=50)  # type: ignore[arg-type]


class _BatchSizes:
    """A real store whose ``insert_spend_logs`` also notes each batch's size."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.sizes: list[int] = []

    async def insert_spend_logs(self, records: Sequence[SpendRecord]) -> int:
        self.sizes.append(len(records))
        return await self.store.insert_spend_logs(records)


def test_a_shipper_behind_takes_bigger_batches_and_small_ones_again_once_caught_up(
    store_url: str, journal_dir: Path
) -> None:
    # a backlog (records an earlier run left, or a saturated event loop making each round trip slow)
    # ships in batches that double up to max_batch_size; records arriving one by one afterwards go
    # in batches of at most batch_size again
    async def main() -> None:
        async with open_store(store_url) as store:
            key = await new_key(store)
            async with Journal(journal_dir) as journal:
                total = await append_many(journal, [key], 3000)
            sizes = _BatchSizes(store)
            async with Journal(journal_dir) as journal, Shipper(journal, sizes, interval=0.005) as shipper:  # type: ignore[arg-type]
                await asyncio.wait_for(shipper.drain(), 30)
                assert sizes.sizes == [100, 200, 400, 800, 1000, 500]
                sizes.sizes.clear()
                for i in range(250):
                    await journal.append(record(f"later{i}", key, cost=1 / 1024))
                    if i % 25 == 0:
                        await asyncio.sleep(0.01)
                await asyncio.wait_for(shipper.drain(), 30)
                assert sizes.sizes and max(sizes.sizes) <= 100 and sum(sizes.sizes) == 250
            assert len(await stored_ids(store)) == 3250
            assert await key_spend(store, key) == total + 250 / 1024

    asyncio.run(main())


def test_under_steady_appends_the_shipper_catches_up_between_batches(sqlite_url: str, journal_dir: Path) -> None:
    # what the metrics' shipper lag reads: under steady load some records are always waiting, but none
    # for long; the lag must say so rather than grow with the time since the backlog was last empty
    async def main() -> list[float]:
        lags: list[float] = []
        async with open_store(sqlite_url) as store:
            key = await new_key(store)
            async with Journal(journal_dir, fsync="os") as journal, Shipper(journal, store) as shipper:
                for i in range(3000):
                    journal.append_nowait(encode_line(record(f"r{i}", key)))
                    if i % 5 == 0:
                        await asyncio.sleep(0.002)
                        if shipper.position is not None and shipper.position < journal.committed:
                            lags.append(time.monotonic() - shipper.caught_up_at)
                await asyncio.wait_for(shipper.drain(), 30)
            assert len(await stored_ids(store)) == 3000
        return lags

    lags = asyncio.run(main())
    assert len(lags) > 100 and max(lags) < 0.5, max(lags)


class _Saves:
    """Counts a real journal's checkpoint saves (``acknowledge``), each still made."""

    def __init__(self, journal: Journal) -> None:
        self.positions: list[Any] = []
        real = journal.acknowledge

        async def acknowledge(upto: Any) -> None:
            self.positions.append(upto)
            await real(upto)

        journal.acknowledge = acknowledge  # type: ignore[method-assign]


def test_while_batches_follow_each_other_the_checkpoint_is_saved_once_an_interval(
    sqlite_url: str, journal_dir: Path
) -> None:
    # each save is a hop to the journal's thread and a file replaced: under steady load, at most one a
    # checkpoint_interval, and the quiet journal's last position saved within one interval of the end
    async def main() -> None:
        async with open_store(sqlite_url) as store:
            key = await new_key(store)
            async with Journal(journal_dir, fsync="os") as journal:
                saves = _Saves(journal)
                async with Shipper(journal, store, interval=0.005, checkpoint_interval=0.3) as shipper:
                    started = time.monotonic()
                    for i in range(1500):
                        journal.append_nowait(encode_line(record(f"r{i}", key)))
                        if i % 10 == 0:
                            await asyncio.sleep(0.002)
                    busy = time.monotonic() - started
                    await wait_until(lambda: shipper.position == journal.committed)
                    assert shipper.stats.batches > 2 * len(saves.positions)  # not one save a batch
                    assert len(saves.positions) <= busy / 0.3 + 2
                    # quiet now: the last position is saved without a drain or a stop
                    await wait_until(lambda: read_checkpoint(journal_dir) == journal.committed, timeout=2)
                    assert saves.positions[-1] == journal.committed
                    assert list_segments(journal_dir) == [journal.committed.segment]
            assert len(await stored_ids(store)) == 1500

    asyncio.run(main())


def test_a_drain_returns_with_the_checkpoint_saved_and_the_shipped_segments_deleted(
    sqlite_url: str, journal_dir: Path
) -> None:
    async def main() -> None:
        async with open_store(sqlite_url) as store:
            key = await new_key(store)
            async with (
                Journal(journal_dir, segment_bytes=5_000) as journal,
                Shipper(journal, store, checkpoint_interval=3600) as shipper,
            ):
                for round_ in range(3):
                    await append_many(journal, [key], 200, prefix=f"r{round_}-")
                    if round_:  # shipped already, not yet saved: the drain must still save it
                        await wait_until(lambda: shipper.position == journal.committed)
                    await asyncio.wait_for(shipper.drain(), 30)
                    assert read_checkpoint(journal_dir) == journal.committed
                    assert list_segments(journal_dir) == [journal.committed.segment]
            assert len(await stored_ids(store)) == 600

    asyncio.run(main())


def test_a_crash_before_the_checkpoint_is_saved_ships_again_and_counts_once(store_url: str, journal_dir: Path) -> None:
    # the shipper's task dies (as with the process) after storing batches whose checkpoint it had not
    # saved yet: the next run starts from the older checkpoint, and the store counts each record once
    async def main() -> None:
        async with open_store(store_url) as store:
            key = await new_key(store)
            async with Journal(journal_dir) as journal:
                first = await append_many(journal, [key], 100, prefix="a")
                shipper = Shipper(journal, store, checkpoint_interval=3600)
                await shipper.start()
                await asyncio.wait_for(shipper.drain(), 30)  # saved up to here
                second = await append_many(journal, [key], 300, prefix="b")
                await wait_until(lambda: shipper.position == journal.committed)
                assert read_checkpoint(journal_dir) != journal.committed  # shipped, not saved
                task = shipper._task
                assert task is not None
                task.cancel()  # no drain, no stop: nothing more is saved
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                shipper._task = None
            async with Journal(journal_dir) as journal, Shipper(journal, store) as again:
                await asyncio.wait_for(again.drain(), 30)
                assert again.stats.shipped == 300 and again.stats.inserted == 0
            assert len(await stored_ids(store)) == 400
            assert await key_spend(store, key) == first + second

    asyncio.run(main())


@pytest.mark.parametrize("in_flight", [20, 0], ids=["busy", "quiet"])
def test_while_many_requests_are_in_flight_the_shipper_waits_longer_and_ships_bigger_batches(
    sqlite_url: str, journal_dir: Path, in_flight: int
) -> None:
    # the process's load (requests in flight) is read once the journal has a commit to ship: at
    # busy_requests (8) or more the shipper waits busy_interval and takes busy_batch_size records at once
    async def main() -> tuple[list[int], float]:
        async with open_store(sqlite_url) as store:
            key = await new_key(store)
            sizes = _BatchSizes(store)
            async with (
                Journal(journal_dir) as journal,
                Shipper(journal, sizes, interval=0.005, busy_interval=1.0, load=lambda: in_flight),  # type: ignore[arg-type]
            ):
                await asyncio.sleep(0.05)  # caught up with the empty journal
                started = time.monotonic()
                for i in range(150):  # over about 0.15 s
                    await journal.append(record(f"r{i}", key, cost=1 / 1024))
                    if i % 10 == 9:
                        await asyncio.sleep(0.01)
                await wait_until(lambda: sum(sizes.sizes) == 150, timeout=10)
                took = time.monotonic() - started
            assert len(await stored_ids(store)) == 150
            return sizes.sizes, took

    sizes, took = asyncio.run(main())
    if in_flight:
        assert sizes == [150] and took >= 1.0, (sizes, took)
    else:
        assert len(sizes) > 1 and max(sizes) <= 100 and took < 1.0, (sizes, took)
