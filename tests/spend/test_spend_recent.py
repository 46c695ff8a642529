"""Reads served from the lines a journal keeps in memory give exactly what the disk would."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from spend_harness import record

from llmswitch.spend import FsyncMode, Journal, Position, SpendRecord
from llmswitch.spend import journal as journal_module
from llmswitch.spend.framing import SpendLine, encode_line, encode_spend_line
from llmswitch.spend.segments import ReadResult, list_segments, read_records


def ids(records: list[SpendRecord]) -> list[str]:
    return [rec.request_id for rec in records]


async def read_checked(journal: Journal, after: Position, limit: int) -> ReadResult:
    """``journal.read``, after checking that the segment files say the same at this moment."""
    on_disk = read_records(journal.directory, after, limit, journal.committed)
    got = await journal.read(after, limit)
    assert (ids(got.records), got.end, got.skipped) == (ids(on_disk.records), on_disk.end, on_disk.skipped)
    assert got.records == on_disk.records
    return got


@pytest.mark.parametrize("fsync", ["always", "os"])
@pytest.mark.parametrize("seed", range(4))
def test_reads_from_memory_match_the_segment_files_whatever_the_order_of_things(
    journal_dir: Path, fsync: FsyncMode, seed: int
) -> None:
    # appends one at a time and in bursts (a burst is one group commit in mode "always"), small
    # segments, a small memory bound, reads of any size, and readers that start over from the oldest
    # record as a restarted shipper would: every read equals the disk's at that moment
    rng = random.Random(seed)

    async def main() -> None:
        async with Journal(journal_dir, fsync=fsync, segment_bytes=1500, recent_lines=12) as journal:
            position = await journal.resume_position()
            seen: list[str] = []
            n = 0
            for _ in range(150):
                step = rng.random()
                if step < 0.45:
                    burst = rng.choice([1, 1, 2, 5, 20])
                    await asyncio.gather(
                        *(journal.append(record(f"r{n + i}", metadata={"n": n + i})) for i in range(burst))
                    )
                    n += burst
                elif step < 0.95:
                    got = await read_checked(journal, position, rng.choice([1, 3, 7, 100]))
                    seen += ids(got.records)
                    position = got.end
                else:  # start over: what was read already is read again, from the disk
                    position = await journal.resume_position()
                    seen = []
            while True:
                got = await read_checked(journal, position, 100)
                if got.end == position:
                    break
                seen += ids(got.records)
                position = got.end
            assert position == journal.committed
            assert seen == [f"r{i}" for i in range(n)][-len(seen) :] and len(seen) == n
        assert len(list_segments(journal_dir)) > 3

    asyncio.run(main())


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Position]:
    """Where each read the journal sends to the segment files starts (a read from memory adds nothing)."""
    started: list[Position] = []

    def counted(directory: Path, after: Position, limit: int, committed: Position) -> ReadResult:
        started.append(after)
        return read_records(directory, after, limit, committed)

    monkeypatch.setattr(journal_module, "read_records", counted)
    return started


def test_a_reader_keeping_up_reads_no_segment_file(journal_dir: Path, reads: list[Position]) -> None:
    async def main() -> None:
        async with Journal(journal_dir, fsync="os", segment_bytes=800) as journal:
            position = await journal.resume_position()
            got: list[str] = []
            for i in range(100):
                assert journal.append_nowait(encode_line(record(f"r{i}")))
                if i % 3 == 2:
                    batch = await journal.read(position)
                    got += ids(batch.records)
                    await journal.acknowledge(batch.end)
                    position = batch.end
            batch = await journal.read(position)
            got += ids(batch.records)
            assert got == [f"r{i}" for i in range(100)]
            assert batch.end == journal.committed and journal.committed.segment > 3  # segments crossed
            assert reads == []
            # a reader that starts over reads from the disk what is left there (the active segment)
            again = await journal.read(Position(0, 0), limit=1000)
            assert again.records and ids(again.records) == got[-len(again.records) :] and len(reads) == 1

    asyncio.run(main())


def test_a_reader_past_the_memory_bound_reads_the_disk_and_then_memory_again(
    journal_dir: Path, reads: list[Position]
) -> None:
    async def main() -> None:
        async with Journal(journal_dir, fsync="os", recent_lines=10) as journal:
            position = await journal.resume_position()
            for i in range(50):
                journal.append_nowait(encode_line(record(f"r{i}")))
            first = await journal.read(position, limit=45)  # the 40 oldest fell out of memory
            assert ids(first.records) == [f"r{i}" for i in range(45)] and len(reads) == 1
            rest = await journal.read(first.end, limit=100)  # in memory again
            assert ids(rest.records) == [f"r{i}" for i in range(45, 50)] and len(reads) == 1
            assert rest.end == journal.committed

    asyncio.run(main())


_HELD_THEN_WRITTEN = """
import asyncio, json, resource, signal, sys
from llmswitch.spend import Journal, SpendRecord
from llmswitch.spend.segments import read_records

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the size limit fail (EFBIG), as on a full disk
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

async def main():
    async with Journal(sys.argv[1], fsync=sys.argv[2], retry_s=0.01) as journal:
        position = await journal.resume_position()
        for i in range(5):
            await journal.append(SpendRecord(request_id=f"ok{i}", cost=0.5))
        first = await journal.read(position)
        position = first.end
        resource.setrlimit(resource.RLIMIT_FSIZE, (position.offset + 300, hard))
        for i in range(20):
            await journal.append(SpendRecord(request_id=f"held{i}", cost=0.5))
        failed = journal.failing
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        for _ in range(500):
            if not journal.failing:
                break
            await asyncio.sleep(0.01)
        for i in range(3):
            await journal.append(SpendRecord(request_id=f"later{i}", cost=0.5))
        disk = read_records(journal.directory, position, 1000, journal.committed)
        got, reads = [], 0
        while True:
            batch = await journal.read(position, limit=4)
            if batch.end == position:
                break
            got += [r.request_id for r in batch.records]
            position = batch.end
        print(json.dumps({"failed": failed, "first": [r.request_id for r in first.records], "got": got,
                          "disk": [r.request_id for r in disk.records], "end": position == journal.committed}))

asyncio.run(main())
"""


@pytest.mark.parametrize("fsync", ["always", "os"])
def test_records_held_through_a_full_disk_are_read_once_in_the_order_of_the_file(
    journal_dir: Path, fsync: FsyncMode
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _HELD_THEN_WRITTEN, str(journal_dir), fsync], capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert result["failed"] and result["end"]
    assert result["first"] == [f"ok{i}" for i in range(5)]
    assert sorted(result["got"]) == sorted([f"held{i}" for i in range(20)] + [f"later{i}" for i in range(3)])
    assert result["got"] == result["disk"]  # the order they lie in the segment file


def test_a_line_that_does_not_decode_is_skipped_from_memory_as_from_the_disk(journal_dir: Path) -> None:
    # encode_spend_line trusts its values' types: a wrong one makes a line whose checksum is right but
    # whose record does not decode; both readers pass over it, and count it
    fields = dict.fromkeys(SpendLine.__struct_fields__)
    fields.update(request_id="bad", time="not a time", input_tokens="many", metadata={}, call_type="chat")
    bad = encode_spend_line(SpendLine(**fields))

    async def main() -> None:
        async with Journal(journal_dir, fsync="os") as journal:
            position = journal.committed
            for line in (encode_line(record("r0")), bad, encode_line(record("r1"))):
                assert journal.append_nowait(line)
            got = await read_checked(journal, position, 10)
            assert ids(got.records) == ["r0", "r1"] and got.skipped == 1 and got.end == journal.committed

    asyncio.run(main())
