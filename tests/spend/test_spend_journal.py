"""The journal on disk: durable appends, segments, torn and corrupt lines, cleanup, one writer."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from spend_harness import append_bytes, record

from llmswitch.spend import FsyncMode, Journal, JournalError, JournalLockedError, Position, SpendRecord
from llmswitch.spend.framing import encode_line
from llmswitch.spend.segments import CHECKPOINT, list_segments, segment_path, write_checkpoint

MODES: tuple[FsyncMode, ...] = ("always", "os")


async def read_all(journal: Journal, start: Position | None = None) -> tuple[list[SpendRecord], int]:
    """Every committed record from ``start`` (default: where shipping would resume), and lines skipped."""
    position = start or await journal.resume_position()
    records: list[SpendRecord] = []
    skipped = 0
    while True:
        batch = await journal.read(position, limit=7)  # small, to cross batch and segment edges often
        records += batch.records
        skipped += batch.skipped
        if batch.end == position:
            return records, skipped
        position = batch.end


def ids(records: list[SpendRecord]) -> list[str]:
    return [rec.request_id for rec in records]


@pytest.mark.parametrize("recent", [0, 5, 4096], ids=["disk", "both", "memory"])
@pytest.mark.parametrize("fsync", MODES)
def test_appends_read_back_in_order_across_segments(journal_dir: Path, fsync: FsyncMode, recent: int) -> None:
    # recent_lines=0: every read from the segment files; 5: the oldest from them, the last ones from memory
    async def main() -> None:
        records = [record(f"r{i}", user_id="alice", metadata={"i": i}) for i in range(60)]
        async with Journal(journal_dir, fsync=fsync, segment_bytes=500, recent_lines=recent) as journal:
            for rec in records:
                await journal.append(rec)
            assert await read_all(journal) == (records, 0)
            assert journal.committed.segment == list_segments(journal_dir)[-1]
            assert journal.stats.appends == 60

    asyncio.run(main())
    assert len(list_segments(journal_dir)) > 10


def test_a_reopened_journal_writes_a_new_segment_and_old_records_stay_readable(journal_dir: Path) -> None:
    async def write(request_ids: list[str]) -> None:
        async with Journal(journal_dir) as journal:
            for request_id in request_ids:
                await journal.append(record(request_id))

    async def read() -> list[str]:
        async with Journal(journal_dir) as journal:
            return ids((await read_all(journal))[0])

    asyncio.run(write(["a", "b"]))
    asyncio.run(write(["c"]))
    assert asyncio.run(read()) == ["a", "b", "c"]
    assert list_segments(journal_dir) == [1, 2, 3]


def test_one_journal_per_directory(journal_dir: Path) -> None:
    async def main() -> None:
        async with Journal(journal_dir):
            with pytest.raises(JournalLockedError, match="in use by another process"):
                await Journal(journal_dir).open()
        async with Journal(journal_dir):  # released on close
            pass

    asyncio.run(main())


def test_a_journal_taken_over_is_never_made_again_once_gone(journal_dir: Path) -> None:
    # another gateway adopted and removed the directory since it was listed: nothing to take over
    async def main() -> None:
        with pytest.raises(JournalError):
            await Journal(journal_dir / "gone", create=False).open()
        assert not (journal_dir / "gone").exists()
        async with Journal(journal_dir) as journal:
            await journal.append(record("r1"))
        async with Journal(journal_dir, create=False) as journal:  # one that exists is taken as before
            assert (await journal.read(await journal.resume_position())).records[0].request_id == "r1"

    asyncio.run(main())


def test_a_torn_last_line_is_skipped_and_appends_go_on_in_a_new_segment(journal_dir: Path) -> None:
    async def write() -> None:
        async with Journal(journal_dir) as journal:
            for i in range(5):
                await journal.append(record(f"r{i}"))

    asyncio.run(write())
    # what a crash in the middle of a write leaves: the start of a line, without its end
    append_bytes(segment_path(journal_dir, 1), encode_line(record("torn"))[:60])

    async def resume() -> tuple[list[SpendRecord], int]:
        async with Journal(journal_dir) as journal:
            await journal.append(record("after"))
            return await read_all(journal)

    got, skipped = asyncio.run(resume())
    assert ids(got) == ["r0", "r1", "r2", "r3", "r4", "after"]
    assert skipped == 1


def test_a_corrupt_line_is_skipped_and_the_lines_after_it_are_read(journal_dir: Path) -> None:
    async def main() -> tuple[list[SpendRecord], int]:
        async with Journal(journal_dir, recent_lines=0) as journal:  # the segment file read back
            for i in range(5):
                await journal.append(record(f"r{i}"))
            path = segment_path(journal_dir, 1)
            data = bytearray(path.read_bytes())
            third = data.index(b'"r2"')
            data[third + 1] = ord("X")  # a flipped byte in the middle of the segment
            path.write_bytes(bytes(data))
            return await read_all(journal)

    got, skipped = asyncio.run(main())
    assert ids(got) == ["r0", "r1", "r3", "r4"] and skipped == 1


def test_readers_stop_at_the_committed_end_of_the_active_segment(journal_dir: Path) -> None:
    async def main() -> None:
        async with Journal(journal_dir) as journal:
            await journal.append(record("r0"))
            await journal.append(record("r1"))
            # bytes past the committed end, as a write still in progress would leave them
            append_bytes(segment_path(journal_dir, journal.committed.segment), encode_line(record("in-flight"))[:30])
            batch = await journal.read(Position(0, 0))
            assert ids(batch.records) == ["r0", "r1"]
            assert batch.end == journal.committed and batch.skipped == 0

    asyncio.run(main())


def test_acknowledging_deletes_only_segments_wholly_before_the_position(journal_dir: Path) -> None:
    async def main() -> None:
        async with Journal(journal_dir, segment_bytes=400) as journal:
            for i in range(40):
                await journal.append(record(f"r{i}"))
            segments = list_segments(journal_dir)
            assert len(segments) >= 5
            start = await journal.resume_position()
            batch = await journal.read(start, limit=10)
            await journal.acknowledge(batch.end)
            # the segment holding the 11th record is kept; only those wholly read are gone
            assert list_segments(journal_dir) == [s for s in segments if s >= batch.end.segment]
            assert batch.end.segment > segments[0]
            with pytest.raises(ValueError, match="past the committed end"):
                await journal.acknowledge(Position(journal.committed.segment + 1, 0))
            # everything acknowledged: the active segment stays, it is still being written
            await journal.acknowledge(journal.committed)
            assert list_segments(journal_dir) == [journal.committed.segment]
            assert await journal.resume_position() == journal.committed

    asyncio.run(main())


def test_a_shipper_keeping_up_lists_the_directory_only_when_a_segment_is_left_behind(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # read, store, acknowledge, as the shipper does: within the active segment neither the read nor the
    # acknowledgement needs the directory's listing; leaving a segment behind must still delete it
    listed: list[str] = []
    listdir = os.listdir

    def spy(path: Any) -> list[str]:
        if Path(path) == journal_dir:
            listed.append(str(path))
        return listdir(path)

    async def main() -> None:
        async with Journal(journal_dir, segment_bytes=1500) as journal:
            position = await journal.resume_position()
            monkeypatch.setattr(os, "listdir", spy)
            got: list[str] = []
            for i in range(60):
                await journal.append(record(f"r{i}"))
                batch = await journal.read(position)
                got += ids(batch.records)
                await journal.acknowledge(batch.end)
                position = batch.end
            assert got == [f"r{i}" for i in range(60)]
            segments = list_segments(journal_dir)
            assert segments == [journal.committed.segment]  # every segment left behind was deleted
            assert journal.committed.segment >= 3
            # a listing only for a read or acknowledgement that crossed into a new segment
            assert len(listed) <= 2 * journal.committed.segment, listed

    asyncio.run(main())


def test_a_reader_whose_active_segment_is_gone_reads_nothing_and_fails_nothing(journal_dir: Path) -> None:
    async def main() -> None:
        async with Journal(journal_dir, recent_lines=0) as journal:  # the segment file read back
            await journal.append(record("r0"))
            segment_path(journal_dir, journal.committed.segment).unlink()
            batch = await journal.read(Position(journal.committed.segment, 0))
            assert batch.records == [] and batch.end == Position(journal.committed.segment, 0)

    asyncio.run(main())


@pytest.mark.parametrize(
    "checkpoint",
    [
        b"not json",
        b'{"segment": 1, "offset": 5}',  # not a line boundary
        b'{"segment": 99, "offset": 0}',  # no such segment
        b'{"segment": 1, "offset": -1}',
        b"",
    ],
)
def test_an_unbelievable_checkpoint_means_shipping_starts_from_the_oldest_segment(
    journal_dir: Path, checkpoint: bytes
) -> None:
    async def main() -> list[str]:
        async with Journal(journal_dir) as journal:
            for i in range(3):
                await journal.append(record(f"r{i}"))
        (journal_dir / CHECKPOINT).write_bytes(checkpoint)
        async with Journal(journal_dir) as journal:
            assert await journal.resume_position() == Position(1, 0)
            return ids((await read_all(journal))[0])

    assert asyncio.run(main()) == ["r0", "r1", "r2"]


def test_a_believable_checkpoint_is_resumed_from_and_the_segments_before_it_deleted(journal_dir: Path) -> None:
    async def main() -> None:
        async with Journal(journal_dir, segment_bytes=1000) as journal:
            for i in range(20):
                await journal.append(record(f"r{i}"))
            batch = await journal.read(Position(0, 0), limit=8)
        # as if the process died after saving the checkpoint but before deleting what it covers
        (journal_dir / CHECKPOINT).write_text(json.dumps({"segment": batch.end.segment, "offset": batch.end.offset}))
        async with Journal(journal_dir) as journal:
            assert await journal.resume_position() == batch.end
            assert list_segments(journal_dir)[0] == batch.end.segment
            assert ids((await read_all(journal))[0]) == [f"r{i}" for i in range(8, 20)]

    asyncio.run(main())


def test_a_cancelled_append_is_written_all_the_same(journal_dir: Path) -> None:
    async def main() -> list[str]:
        async with Journal(journal_dir) as journal:
            task = asyncio.create_task(journal.append(record("cancelled")))
            await asyncio.sleep(0)  # queued, not yet committed
            task.cancel()
            await journal.append(record("next"))
            return ids((await read_all(journal))[0])

    assert asyncio.run(main()) == ["cancelled", "next"]


def test_a_closed_journal_refuses_appends(journal_dir: Path) -> None:
    async def main() -> None:
        journal = Journal(journal_dir)
        with pytest.raises(JournalError, match="not open"):
            await journal.append(record("early"))
        async with journal:
            await journal.append(record("r1"))
        await journal.close()  # twice is fine
        with pytest.raises(JournalError, match="not open"):
            await journal.append(record("late"))

    asyncio.run(main())


def test_an_encoded_line_is_written_at_once_where_the_fsync_mode_allows(journal_dir: Path) -> None:
    async def main() -> None:
        async with Journal(journal_dir / "os", fsync="os") as journal:
            # mode "os": written (into the page cache) before append_nowait returns, no await needed
            assert journal.append_nowait(encode_line(record("r1")))
            assert ids((await read_all(journal))[0]) == ["r1"]
            assert journal.stats.appends == 1
        async with Journal(journal_dir / "always", fsync="always") as journal:
            # mode "always" needs a sync, awaited: nothing is written, the caller awaits append_encoded
            assert not journal.append_nowait(encode_line(record("r1")))
            assert journal.stats.appends == 0
            await journal.append_encoded(encode_line(record("r2")))
            assert ids((await read_all(journal))[0]) == ["r2"]
        with pytest.raises(JournalError, match="not open"):
            journal.append_nowait(encode_line(record("late")))

    asyncio.run(main())


def test_an_inline_write_never_overtakes_a_commit_in_flight(journal_dir: Path) -> None:
    async def main() -> None:
        async with Journal(journal_dir, fsync="os") as journal:
            # a batch queued behind a commit in the writer thread: a line written inline now would
            # land before lines appended earlier
            journal._flusher = asyncio.get_running_loop().create_future()  # type: ignore[assignment]
            queued = asyncio.create_task(journal.append(record("first")))
            await asyncio.sleep(0)
            assert not journal.append_nowait(encode_line(record("second")))
            journal._flusher.set_result(None)  # type: ignore[union-attr]
            journal._flusher = None
            await journal.append_encoded(encode_line(record("second")))
            await queued
            assert ids((await read_all(journal))[0]) == ["first", "second"]

    asyncio.run(main())


def test_appends_waiting_when_close_starts_are_written(journal_dir: Path) -> None:
    async def main() -> None:
        journal = Journal(journal_dir)
        await journal.open()
        appends = [asyncio.create_task(journal.append(record(f"r{i}"))) for i in range(50)]
        await asyncio.sleep(0)
        await journal.close()
        await asyncio.gather(*appends)
        async with Journal(journal_dir) as reopened:
            assert len((await read_all(reopened))[0]) == 50

    asyncio.run(main())


def test_bad_settings_are_config_errors(journal_dir: Path) -> None:
    with pytest.raises(ValueError, match="fsync"):
        Journal(journal_dir, fsync="never")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="segment_bytes"):
        Journal(journal_dir, segment_bytes=0)
    with pytest.raises(ValueError, match="recent_lines"):
        Journal(journal_dir, recent_lines=-1)


_FULL_DISK = """
import asyncio, json, os, resource, signal, sys
from llmswitch.spend import Journal, SpendRecord

# a file size limit makes writes past it fail (EFBIG) as on a full disk, in this process only
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, hard))

async def main():
    out = {}
    async with Journal(sys.argv[1], segment_bytes=10**9, retry_s=0.01, max_held_bytes=int(sys.argv[2])) as journal:
        for i in range(200):
            # about 500 bytes a line: 200 of them overrun the file size limit by far
            await journal.append(SpendRecord(request_id=f"r{i}", cost=0.5, metadata={"pad": "x" * 450}))  # never raises: held
        await asyncio.sleep(0.1)  # retries that fail again
        out["while_full"] = {
            "failing": journal.failing, "held": journal.stats.held, "dropped": journal.stats.dropped,
            "errors": journal.stats.write_errors, "files": sorted(os.listdir(sys.argv[1])),
        }
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # the disk has room again
        for _ in range(500):
            if not journal.failing:
                break
            await asyncio.sleep(0.01)
        out["after"] = {"failing": journal.failing, "held": journal.stats.held, "appends": journal.stats.appends}
    print(json.dumps(out))

asyncio.run(main())
"""


@pytest.mark.parametrize("bound", [64 << 20, 30_000], ids=["held", "bounded"])
def test_a_full_disk_holds_records_in_memory_without_new_segments_and_writes_them_when_it_can(
    journal_dir: Path, bound: int
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(journal_dir), str(bound)], capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    full = result["while_full"]
    assert full["failing"] and full["errors"] >= 2  # the first failure, and retries that failed again
    # no file per failure: the one segment was cut back to its last whole line and is retried
    assert [f for f in full["files"] if f.endswith(".journal")] == [segment_path(journal_dir, 1).name]
    assert full["held"] > 0
    assert result["after"] == {"failing": False, "held": 0, "appends": 200 - full["dropped"]}
    if bound == 30_000:
        assert full["dropped"] > 0  # past the bound, records are dropped (and counted)
    else:
        assert full["dropped"] == 0

    async def read() -> tuple[list[SpendRecord], int]:
        async with Journal(journal_dir) as journal:
            return await read_all(journal)

    got, skipped = asyncio.run(read())
    assert skipped == 0  # no torn line left behind
    assert len(got) == 200 - full["dropped"] == len(set(ids(got)))
    assert ids(got)[: len(got)] == [f"r{i}" for i in range(len(got))]  # in the order they were answered


def test_a_checkpoint_the_disk_refuses_leaves_no_file_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(self: Path, data: bytes) -> int:
        self.touch()  # the file is made, then the write finds no room
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    for _ in range(3):  # each shipped batch tries again
        with pytest.raises(OSError):
            write_checkpoint(tmp_path, Position(1, 10))
    assert list(tmp_path.iterdir()) == []
