"""SubjectCache: users and teams held in memory, refreshed from the store's change feed in the background."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from llmswitch.server.subjects import SubjectCache
from llmswitch.store import SpendRecord, Store, SubjectRecord, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'subjects.db'}"
    postgres: str = request.getfixturevalue("postgres_url")
    return postgres


def run(url: str, body: Callable[[Store, Store], Awaitable[Any]]) -> Any:
    """``body(cache_store, other_store)``: the cache's own store, and a second one writing as another gateway."""

    async def main() -> Any:
        async with open_store(url) as mine, open_store(url) as other:
            return await body(mine, other)

    return asyncio.run(main())


async def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the cache did not catch up in time"
        await asyncio.sleep(0.01)


def test_start_loads_everything_and_refresh_follows_changes(url: str) -> None:
    prefix = os.urandom(4).hex()
    t, u = f"{prefix}-t", f"{prefix}-u"

    async def body(mine: Store, other: Store) -> None:
        await other.create_subject(SubjectRecord(kind="team", id=t, rpm_limit=5))
        cache = SubjectCache(mine)
        await cache.start()
        try:
            got = cache.get("team", t)
            assert got is not None and got.rpm_limit == 5
            assert cache.get("user", t) is None and cache.get("team", None) is None
            await other.create_subject(SubjectRecord(kind="user", id=u))
            await other.update_subject("team", t, rpm_limit=6)
            await other.insert_spend_logs([SpendRecord(request_id=f"{prefix}-r", user_id=u, team_id=t, cost=0.5)])
            await cache.refresh()
            team_now, user_now = cache.get("team", t), cache.get("user", u)
            assert team_now is not None and (team_now.rpm_limit, team_now.spend) == (6, 0.5)
            assert user_now is not None and user_now.spend == 0.5
            await other.delete_subjects("team", [t])
            await cache.refresh()
            assert cache.get("team", t) is None and cache.get("user", u) is not None
        finally:
            await cache.stop()

    run(url, body)


def test_put_and_remove_act_at_once(url: str) -> None:
    async def body(mine: Store, other: Store) -> None:
        cache = SubjectCache(mine)
        rec = SubjectRecord(kind="team", id="not-stored-yet")
        cache.put(rec)
        assert cache.get("team", "not-stored-yet") is rec
        cache.remove("team", "not-stored-yet")
        cache.remove("team", "never-there")
        assert cache.get("team", "not-stored-yet") is None

    run(url, body)


def test_the_background_loop_catches_up_and_survives_a_store_outage(url: str, caplog: pytest.LogCaptureFixture) -> None:
    prefix = os.urandom(4).hex()

    async def body(mine: Store, other: Store) -> None:
        cache = SubjectCache(mine, refresh_interval=0.01)
        await cache.start()
        await cache.start()  # a second start does not start a second loop
        try:
            await other.create_subject(SubjectRecord(kind="user", id=f"{prefix}-a"))
            await eventually(lambda: cache.get("user", f"{prefix}-a") is not None)
            with caplog.at_level(logging.WARNING, logger="llmswitch.subjects"):
                await mine.close()  # the database goes away: keep serving what is in memory
                await eventually(lambda: "refresh failed" in caplog.text)
                await asyncio.sleep(0.05)
                assert caplog.text.count("refresh failed") == 1
                assert cache.get("user", f"{prefix}-a") is not None
                await mine.open()
                await other.create_subject(SubjectRecord(kind="user", id=f"{prefix}-b"))
                await eventually(lambda: cache.get("user", f"{prefix}-b") is not None)
                assert "recovered" in caplog.text
        finally:
            await cache.stop()
            await cache.stop()

    run(url, body)


def test_a_replaced_database_is_reloaded_from_scratch(tmp_path: Path) -> None:
    path = tmp_path / "replaced.db"

    async def main() -> None:
        async with open_store(f"sqlite:///{path}") as store:
            for i in range(3):
                await store.create_subject(SubjectRecord(kind="team", id=f"old-{i}"))
            cache = SubjectCache(store)
            await cache.refresh()
            assert len(cache) == 3
            await store.close()
            await asyncio.to_thread(_remove_database, tmp_path)
            await store.open()
            await store.migrate()
            await store.create_subject(SubjectRecord(kind="team", id="new"))
            await cache.refresh()  # the feed's cursor went backwards: start over
            assert len(cache) == 1 and cache.get("team", "new") is not None

    asyncio.run(main())


def _remove_database(directory: Path) -> None:
    for path in directory.glob("replaced.db*"):
        path.unlink()


def test_without_a_store_it_stays_empty() -> None:
    async def main() -> None:
        cache = SubjectCache(None)
        await cache.start()
        await cache.refresh()
        assert len(cache) == 0 and cache.get("user", "anyone") is None
        await cache.stop()

    asyncio.run(main())
