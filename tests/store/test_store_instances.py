"""The instances table: a beat records this instance and returns the others still live, on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from llmswitch.store import InstanceRecord, Store


def _instance(name: str, pid: int) -> InstanceRecord:
    return InstanceRecord(instance_id=name, host="h", pid=pid, limits="memory")


def test_a_beat_returns_the_other_live_instances_and_forgets_silent_ones(
    store_url: str, run_store: Callable[..., Any], raw_rows: Callable[[str, str], list[Any]]
) -> None:
    async def body(store: Store) -> tuple[list[str], list[str], list[str]]:
        assert await store.beat_instance(_instance("a", 1), dead_after_s=30) == []
        seen_by_b = await store.beat_instance(_instance("b", 2), dead_after_s=30)
        seen_by_a = await store.beat_instance(_instance("a", 1), dead_after_s=30)
        await asyncio.sleep(0.3)
        # b has not beaten for 0.3 s: with a 0.2 s deadline it is gone, and its row with it
        alone = await store.beat_instance(_instance("a", 1), dead_after_s=0.2)
        return [i.instance_id for i in seen_by_b], [i.describe() for i in seen_by_a], [i.instance_id for i in alone]

    seen_by_b, seen_by_a, alone = run_store(store_url, body)
    assert seen_by_b == ["a"]
    assert seen_by_a[0].startswith("h pid 2, started ")
    assert alone == []
    assert raw_rows(store_url, "SELECT instance_id FROM llmswitch_instances") == [("a",)]


def test_a_stopped_instance_is_forgotten_at_once(store_url: str, run_store: Callable[..., Any]) -> None:
    async def body(store: Store) -> list[InstanceRecord]:
        await store.beat_instance(_instance("a", 1), dead_after_s=30)
        await store.beat_instance(_instance("b", 2), dead_after_s=30)
        await store.remove_instance("b")
        return await store.beat_instance(_instance("a", 1), dead_after_s=30)

    assert run_store(store_url, body) == []
