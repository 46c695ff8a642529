"""The journal's directory on disk: numbered segment files, read back in order, and a checkpoint.

    spend-journal/
      lock                          held (flock) by the one process writing here
      00000000000000000007.journal  sealed: a previous run's, or rotated out; read to its end
      00000000000000000008.journal  active: this run appends here, readers stop at the committed offset
      shipped.json                  {"segment": 7, "offset": 12345}: shipped up to here (a hint)
      rejected.journal              records the database refused for good (see Shipper); kept as
                                    ../rejected/<directory>.journal when the directory is removed
      owner.json                    who wrote here (the gateway writes it; see llmswitch.server.journals)

A position in the journal is ``(segment, offset)``: the byte just after a line. Positions compare as
tuples, so "everything before P" is well defined across segments. Everything here is blocking file
I/O: the :class:`~llmswitch.spend.journal.Journal` runs it in threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Annotated, NamedTuple

import msgspec

from llmswitch.spend.framing import decode_line
from llmswitch.store.records import CheckedSpendRecords, SpendRecord

SUFFIX = ".journal"
CHECKPOINT = "shipped.json"
REJECTED = "rejected.journal"
_READ_CHUNK = 1 << 20

_log = logging.getLogger("llmswitch.spend")


class Position(NamedTuple):
    """A place in the journal: a segment number and a byte offset in it, at a line boundary."""

    segment: int
    offset: int


class ReadResult(NamedTuple):
    """What one read returned: records in journal order, where the next read starts, lines skipped."""

    records: list[SpendRecord]
    end: Position
    skipped: int


def segment_path(directory: Path, index: int) -> Path:
    # zero-padded so that name order is number order for anyone listing the directory
    return directory / f"{index:020d}{SUFFIX}"


def list_segments(directory: Path) -> list[int]:
    """The segment numbers in ``directory``, ascending."""
    found = []
    for name in os.listdir(directory):
        stem, dot, ext = name.partition(".")
        if dot and "." + ext == SUFFIX and stem.isdigit():
            found.append(int(stem))
    return sorted(found)


def read_records(directory: Path, after: Position, limit: int, committed: Position) -> ReadResult:
    """Up to ``limit`` records from ``after`` on, never past ``committed``, across segments.

    Segments below ``committed.segment`` are sealed: read to their end, where a torn last line (a
    crash mid-write) is skipped. The active segment is read only up to the committed offset, which
    is always a line boundary, so a write in progress is never seen half done.
    """
    # decoding checked every field (see decode_line): the store need not check them again
    records = CheckedSpendRecords()
    skipped = 0
    position = after
    if after.segment == committed.segment:
        # the usual case, a reader keeping up: only the active segment can hold what it wants, so the
        # directory need not be listed (a listing and its syscalls each time the shipper reads)
        try:
            got, offset, skipped, _ = _read_segment(
                segment_path(directory, after.segment), after.offset, committed.offset, limit
            )
        except FileNotFoundError:
            pass  # gone: the listing below finds where to go on
        else:
            records += got
            return ReadResult(records, Position(after.segment, offset), skipped)
    segments = [index for index in list_segments(directory) if index <= committed.segment]
    while len(records) < limit:
        later = [index for index in segments if index >= position.segment]
        if not later:
            break
        if later[0] != position.segment:  # ours was deleted, or we are past its end
            position = Position(later[0], 0)
        sealed = position.segment < committed.segment
        stop = None if sealed else committed.offset
        path = segment_path(directory, position.segment)
        got, offset, bad, at_end = _read_segment(path, position.offset, stop, limit - len(records))
        records += got
        skipped += bad
        position = Position(position.segment, offset)
        if not (at_end and sealed):
            break
        position = Position(position.segment + 1, 0)
    return ReadResult(records, position, skipped)


def _read_segment(path: Path, start: int, stop: int | None, limit: int) -> tuple[list[SpendRecord], int, int, bool]:
    """Records of one segment from ``start``: ``(records, next offset, lines skipped, reached the end)``."""
    records: list[SpendRecord] = []
    skipped = 0
    offset = start  # just after the last line consumed
    pending = b""  # bytes read after ``offset``, not yet a whole line
    with open(path, "rb") as file:
        file.seek(start)
        while len(records) < limit:
            want = _READ_CHUNK if stop is None else min(_READ_CHUNK, stop - offset - len(pending))
            chunk = file.read(want) if want > 0 else b""
            if not chunk:
                if pending:  # only a sealed segment can end without a newline: a torn write
                    _log.warning("spend journal %s: skipped a torn last line at offset %d", path, offset)
                    offset += len(pending)
                    skipped += 1
                return records, offset, skipped, True
            pending += chunk
            begin = 0
            while len(records) < limit:
                newline = pending.find(b"\n", begin)
                if newline < 0:
                    break
                record = decode_line(pending[begin:newline])
                if record is None:
                    _log.error("spend journal %s: skipped a corrupt line at offset %d", path, offset + begin)
                    skipped += 1
                else:
                    records.append(record)
                begin = newline + 1
            offset += begin
            pending = pending[begin:]
    return records, offset, skipped, False


# -- checkpoint ----------------------------------------------------------------------------------


class _Checkpoint(msgspec.Struct):
    segment: Annotated[int, msgspec.Meta(ge=0)]
    offset: Annotated[int, msgspec.Meta(ge=0)]


def read_checkpoint(directory: Path) -> Position | None:
    """The shipped position saved last, if it is still believable; else ``None`` (start over).

    It is only a hint: shipping is idempotent, so starting earlier costs time, never correctness.
    Believable means its segment exists and its offset is a line boundary in it.
    """
    try:
        saved = msgspec.json.decode((directory / CHECKPOINT).read_bytes(), type=_Checkpoint)
        with open(segment_path(directory, saved.segment), "rb") as file:
            if saved.offset > 0:
                file.seek(saved.offset - 1)
                if file.read(1) != b"\n":
                    return None
    except (OSError, msgspec.DecodeError):
        return None
    return Position(saved.segment, saved.offset)


def write_checkpoint(directory: Path, position: Position) -> None:
    """Save ``position`` atomically (write aside, rename over); not fsynced, as it is only a hint."""
    temporary = directory / f"{CHECKPOINT}.tmp"
    try:
        temporary.write_bytes(msgspec.json.encode(_Checkpoint(position.segment, position.offset)))
        os.replace(temporary, directory / CHECKPOINT)
    except OSError:
        # a full disk (say) must not leave the half-written file behind, one more each time it is tried
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def delete_segments_before(directory: Path, segment: int) -> list[int]:
    """Delete the segments numbered below ``segment``; the numbers deleted."""
    deleted = []
    for index in list_segments(directory):
        if index >= segment:
            break
        segment_path(directory, index).unlink(missing_ok=True)
        deleted.append(index)
    return deleted


def resume_position(directory: Path) -> Position:
    """Where shipping starts after a (re)start: the checkpoint if believable, else the oldest segment."""
    saved = read_checkpoint(directory)
    if saved is not None:
        # a crash between saving the checkpoint and deleting what it covers leaves segments behind
        delete_segments_before(directory, saved.segment)
        return saved
    segments = list_segments(directory)
    return Position(segments[0] if segments else 0, 0)


def append_rejected(directory: Path, lines: bytes, *, sync: bool) -> None:
    """Keep lines the database refused for good, in the journal's own format, for a person to look at."""
    fd = os.open(directory / REJECTED, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, lines)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
