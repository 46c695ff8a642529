"""The lines a journal wrote in this run and its reader has not read yet, kept in memory.

A shipper that keeps up reads records a few milliseconds after they were appended. Reading them back
from the segment file means a thread hop, a ``read`` syscall and a checksum per line, and the reading
thread then contends with the event loop for the GIL. :class:`RecentLines` keeps each written line
with the positions just before and just after it, so a read that starts where the oldest of them
starts takes them from memory, and decodes them without the checksum (these bytes never went through
a file). Everything else (a reader that fell behind the bound, or replays an earlier run's segments)
reads from the disk as before: the segment files stay the truth, and this is only a shortcut to the
same records. The default bound, 4096 lines, is about 2.5 MB for the gateway's records.

Each line taken must start where the one before it ended (the journal notes the position before each
write where it is exact: in the writer's thread, or on the loop when no other write is in flight).
Should a write ever go unnoted here, the take stops at it and the disk gives what lies between. A
line that begins a new segment starts where the last line of the one before ended, so a reader
keeping up crosses segments without the disk too.
"""

from __future__ import annotations

import logging
from collections import deque

from llmswitch.spend.framing import decode_own_line
from llmswitch.spend.segments import Position, ReadResult
from llmswitch.store.records import CheckedSpendRecords

_log = logging.getLogger("llmswitch.spend")
# Position(segment, offset) without the named tuple's Python-level __new__: one per line written
_position = tuple.__new__


class RecentLines:
    """Up to ``max_lines`` lines written most recently, each as ``(position before, position after, line)``.

    ``max_lines=0`` keeps none: every read goes to the disk.
    """

    def __init__(self, max_lines: int = 4096) -> None:
        if max_lines < 0:
            raise ValueError(f"max_lines must be >= 0; got {max_lines}")
        # past the bound the oldest fall off: a reader that far behind reads them from the disk
        self._lines: deque[tuple[Position, Position, bytes]] = deque(maxlen=max_lines)

    def __len__(self) -> int:
        return len(self._lines)

    def add_written(self, before: Position, end: Position, lines: list[bytes]) -> None:
        """``lines`` were written with one ``write`` after ``before``, the last ending at ``end``.

        One write lands in one segment, so each line's end is the one before it plus its length.
        """
        append = self._lines.append
        if len(lines) == 1:
            append((before, end, lines[0]))
            return
        segment, offset = end
        offset -= sum(map(len, lines))
        for line in lines:
            offset += len(line)
            after = _position(Position, (segment, offset))
            append((before, after, line))
            before = after

    def clear(self) -> None:
        self._lines.clear()

    def take(self, after: Position, limit: int) -> ReadResult | None:
        """Up to ``limit`` records from ``after`` on, as the disk would give them; ``None`` if the
        oldest line kept does not follow ``after`` (then read from the disk)."""
        lines = self._lines
        while lines and lines[0][1] <= after:  # read already (from the disk, most likely)
            lines.popleft()
        records = CheckedSpendRecords()
        skipped = 0
        position = after
        while lines and len(records) < limit:
            before, end, line = lines[0]
            if before != position:
                break  # a write between them was not noted here: the disk has it
            lines.popleft()
            position = end
            record = decode_own_line(line[:-1])
            if record is None:  # a line the disk reader would skip too (see decode_line)
                _log.error("spend journal: skipped a line that does not decode, ending at %s", end)
                skipped += 1
            else:
                records.append(record)
        if position == after:
            return None
        return ReadResult(records, position, skipped)
