"""The journal's writing end: appends bytes to the active segment and makes them durable.

Used by one party at a time (the journal's writer thread, or in mode ``"os"`` the event loop while
no thread commit is in flight), so it needs no locks. Each ``append`` is one group
commit: the lines of every record waiting at that moment, written with one ``write`` and made
durable with one ``fdatasync`` (mode ``"always"``) or left in the OS page cache (mode ``"os"``).
"""

from __future__ import annotations

import os
from pathlib import Path

from llmswitch.spend.segments import Position, segment_path

# fdatasync skips the inode times but still syncs the file size; macOS has only fsync
_datasync = getattr(os, "fdatasync", os.fsync)
# Position(index, size) without the named tuple's Python-level __new__: one per append
_position = tuple.__new__


class SegmentWriter:
    """Appends to numbered segments in ``directory``, starting a new one past ``segment_bytes``.

    >>> writer = SegmentWriter(Path("/var/lib/llmswitch/spend"), first=8, segment_bytes=1 << 24, sync=True)
    >>> writer.append(b"...\\n")  # doctest: +SKIP
    Position(segment=8, offset=4)
    """

    def __init__(self, directory: Path, *, first: int, segment_bytes: int, sync: bool) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.sync = sync
        self.index = first
        self._fd: int | None = None
        self._size = 0
        self._open(first)

    @property
    def position(self) -> Position:
        """Where the next append lands: everything before it is written (and synced, if ``sync``)."""
        return Position(self.index, self._size)

    def append(self, data: bytes) -> Position:
        """Write ``data`` (whole lines) durably; the position after it.

        After a failure the segment may end in part of ``data``: it is cut back to its last whole line
        and the next append goes on there (a full disk fails every append: starting a new segment each
        time would fill the directory with empty files). Only if that cut fails is the segment sealed,
        for the next append to start a new one: appending after a torn line would glue a good record
        onto it.
        """
        fd = self._fd
        if fd is None:
            self._open(self.index + 1)
            fd = self._fd
            assert fd is not None
        try:
            written = os.write(fd, data)
            if written < len(data):  # rare (a full disk, a signal): write the rest
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(fd, view) :]
            if self.sync:
                _datasync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, self._size)  # shrinking needs no space
                os.lseek(fd, self._size, os.SEEK_SET)
            except OSError:
                self.close()
            raise
        size = self._size = self._size + len(data)
        position = _position(Position, (self.index, size))
        if size >= self.segment_bytes:
            # a failure to start the next segment is reported by the next append, not this one
            self.close()
        return position

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _open(self, index: int) -> None:
        # O_EXCL: a segment is written by one run only, so a torn tail is never appended to
        fd = os.open(segment_path(self.directory, index), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self._fd, self.index, self._size = fd, index, 0
        if self.sync:
            # the new file's name must survive a power cut as surely as the lines written into it
            sync_directory(self.directory)


def sync_directory(directory: Path) -> None:
    """fsync a directory, so files created or renamed in it are durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
