"""Helpers for the spend tests: records, keys, polling, and a PostgreSQL that can be unplugged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llmswitch.spend import SpendRecord
from llmswitch.store import KeyRecord, Store, generate_key


async def new_key(store: Store) -> str:
    """A fresh key in ``store``; its hash."""
    rec = KeyRecord.for_key(generate_key())
    await store.create_key(rec)
    return rec.token_hash


def record(request_id: str, key_hash: str | None = None, cost: float | None = 1 / 1024, **fields: Any) -> SpendRecord:
    """A spend record; costs are binary fractions by default, so sums are exact in any order."""
    return SpendRecord(request_id=request_id, key_hash=key_hash, cost=cost, **fields)


async def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``condition`` until true; fail the test after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110  (counters, which no event announces)
            await asyncio.sleep(0.01)


def append_bytes(path: Path, data: bytes) -> None:
    """Add raw bytes to a file, as a crash or a bad disk would."""
    with open(path, "ab") as file:
        file.write(data)


async def key_spend(store: Store, key_hash: str) -> float:
    rec = await store.get_key(key_hash)
    assert rec is not None
    return rec.spend


class Unpluggable:
    """A TCP proxy in front of PostgreSQL: ``unplug()`` drops every connection and refuses new ones.

    It makes a real outage (the client sees reset and refused connections, as when the database
    host goes away) without stopping the shared server.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def in_front_of(cls, url: str) -> Unpluggable:
        """A proxy to the server of a PostgreSQL URL; connect through ``via_port(url, proxy.port)``."""
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432)

    async def plug(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def unplug(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


def via_port(url: str, port: int) -> str:
    """``url`` pointed at ``127.0.0.1:port`` (user, database and query kept)."""
    parts = urlsplit(url)
    user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))
