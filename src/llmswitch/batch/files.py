"""Where file contents live: a local directory (one instance), or the store (instances sharing PostgreSQL).

Only a file's bytes move between the two; its record is always in the store.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import Any

from llmswitch.store.batch_records import FileRecord


def new_id(prefix: str) -> str:
    """An id like OpenAI's (``file-…``, ``batch_…``): unguessable, so one key cannot probe another's."""
    return f"{prefix}{secrets.token_hex(12)}"


class FileBox:
    """File records in the store, their bytes where ``storage`` says."""

    def __init__(self, store: Any, directory: str, storage: str) -> None:
        self.store = store
        self.directory = Path(directory)
        self.storage: str = storage

    def _path(self, file_id: str) -> Path:
        if not file_id.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"not a file id: {file_id!r}")
        return self.directory / file_id

    async def save(
        self, *, owner: str, purpose: str, filename: str, content: bytes, file_id: str | None = None
    ) -> FileRecord:
        rec = FileRecord(
            id=file_id or new_id("file-"),
            owner=owner,
            purpose=purpose,
            filename=filename,
            bytes=len(content),
            created_at=int(time.time()),
            storage="store" if self.storage == "store" else "local",
        )
        if rec.storage == "local":
            await asyncio.to_thread(self._write, rec.id, content)
            await self.store.create_file(rec, None)
        else:
            await self.store.create_file(rec, content)
        return rec

    def _write(self, file_id: str, content: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(file_id)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)  # a reader never sees half a file

    async def read(self, rec: FileRecord) -> bytes | None:
        """The file's bytes, or ``None`` when they are gone (a local file on another instance's disk)."""
        if rec.storage == "store":
            content: bytes | None = await self.store.file_content(rec.id)
            return content
        path = self._path(rec.id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, rec: FileRecord) -> bool:
        deleted: bool = await self.store.delete_file(rec.id)
        if rec.storage == "local":
            await asyncio.to_thread(self._path(rec.id).unlink, missing_ok=True)
        return deleted
