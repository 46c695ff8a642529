"""Files, batches and batch lines in the store, on every backend: claims, leases, answers written once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from llmswitch.store import Store
from llmswitch.store.batch_records import BatchRecord, FileRecord, LineOutcome


def _batch(batch_id: str = "batch_1", owner: str = "k1", created_at: int = 100) -> BatchRecord:
    return BatchRecord(
        id=batch_id,
        owner=owner,
        endpoint="/v1/chat/completions",
        model_group="gpt-4o",
        input_file_id="file-in",
        created_at=created_at,
        expires_at=created_at + 86400,
        total=3,
        metadata={"job": "nightly"},
    )


def test_files_round_trip_with_content_in_the_store(store_url: str, run_store: Callable[..., Any]) -> None:
    async def body(store: Store) -> Any:
        a = FileRecord(id="file-a", owner="k1", purpose="batch", filename="a.jsonl", bytes=3, created_at=1)
        b = FileRecord(id="file-b", owner="k2", purpose="batch", filename="b.jsonl", bytes=2, created_at=2)
        c = FileRecord(
            id="file-c", owner="k1", purpose="batch_output", filename="c.jsonl", bytes=2, created_at=3, storage="store"
        )
        for rec, content in ((a, None), (b, None), (c, b"{}")):
            await store.create_file(rec, content)  # type: ignore[attr-defined]
        mine = await store.list_files(owner="k1")  # type: ignore[attr-defined]
        outputs = await store.list_files(owner="k1", purpose="batch_output")  # type: ignore[attr-defined]
        paged = await store.list_files(owner="k1", after="file-c")  # type: ignore[attr-defined]
        got = await store.get_file("file-c")  # type: ignore[attr-defined]
        content = await store.file_content("file-c")  # type: ignore[attr-defined]
        deleted = await store.delete_file("file-a"), await store.delete_file("file-a")  # type: ignore[attr-defined]
        return [f.id for f in mine], [f.id for f in outputs], [f.id for f in paged], got, content, deleted

    mine, outputs, paged, got, content, deleted = run_store(store_url, body)
    assert mine == ["file-c", "file-a"]  # newest first, another key's file not listed
    assert outputs == ["file-c"]
    assert paged == ["file-a"]
    assert got.storage == "store" and got.purpose == "batch_output" and got.bytes == 2
    assert content == b"{}"
    assert deleted == (True, False)


def test_lines_are_claimed_once_leased_and_answered_once(store_url: str, run_store: Callable[..., Any]) -> None:
    async def body(store: Store) -> Any:
        s: Any = store
        await s.create_batch(_batch(), [("a", '{"x":1}'), ("b", '{"x":2}'), ("c", '{"x":3}')])
        first = await s.claim_batch_lines("batch_1", "w1", 30.0, 2)
        second = await s.claim_batch_lines("batch_1", "w2", 30.0, 5)
        nothing = await s.claim_batch_lines("batch_1", "w3", 30.0, 5)
        # w1 answers line 1 twice (a retried write) and w2 answers line 3: three lines, two answers counted
        n1 = await s.finish_batch_lines("batch_1", [LineOutcome(1, 200, '{"ok":1}', False)])
        n2 = await s.finish_batch_lines(
            "batch_1", [LineOutcome(1, 200, '{"ok":"again"}', False), LineOutcome(3, 500, '{"e":1}', True)]
        )
        # w1 dies holding line 2: once its lease runs out, another worker claims it
        await s.claim_batch_lines("batch_1", "w1", 0.2, 5)  # nothing left to take; w1's line 2 lease stays 30 s
        await s.release_batch_lines("batch_1", "w1", [2])
        again = await s.claim_batch_lines("batch_1", "w1", 0.2, 5)
        await asyncio.sleep(0.4)
        states = await s.batch_line_states("batch_1")
        taken = await s.claim_batch_lines("batch_1", "w4", 30.0, 5)
        n3 = await s.finish_batch_lines("batch_1", [LineOutcome(2, 200, '{"ok":2}', False)])
        batch = await s.get_batch("batch_1")
        lines = await s.batch_lines("batch_1", 0, 10)
        return first, second, nothing, n1, n2, again, states, taken, n3, batch, lines

    first, second, nothing, n1, n2, again, states, taken, n3, batch, lines = run_store(store_url, body)
    assert [c.line_no for c in first] == [1, 2] and first[0].custom_id == "a" and first[0].body == '{"x":1}'
    assert [c.line_no for c in second] == [3]
    assert nothing == []
    assert (n1, n2, n3) == (1, 1, 1)
    assert [c.line_no for c in again] == [2]
    assert states == {"done": 2, "pending": 1}  # line 2's lease ran out
    assert [(c.line_no, c.attempts) for c in taken] == [(2, 3)]
    assert (batch.completed, batch.failed, batch.metadata) == (2, 1, {"job": "nightly"})
    assert [(line.custom_id, line.state, line.response, line.failed) for line in lines] == [
        ("a", "done", '{"ok":1}', False),
        ("b", "done", '{"ok":2}', False),
        ("c", "done", '{"e":1}', True),
    ]


def test_batch_updates_are_conditional_and_batch_leases_exclusive(
    store_url: str, run_store: Callable[..., Any]
) -> None:
    async def body(store: Store) -> Any:
        s: Any = store
        await s.create_batch(_batch("batch_1", "k1", 100), [("a", "{}")])
        await s.create_batch(_batch("batch_2", "k2", 200), [("a", "{}")])
        moved = await s.update_batch("batch_1", when=("validating",), status="in_progress", in_progress_at=101)
        not_moved = await s.update_batch("batch_1", when=("validating",), status="failed")
        errors = await s.update_batch("batch_2", status="failed", errors=[{"code": "x", "line": 1}])
        active = await s.active_batches()
        listed = await s.list_batches(owner=None)
        k1 = await s.list_batches(owner="k1")
        leases = [
            await s.lease_batch("batch_1", "w1", 30.0),
            await s.lease_batch("batch_1", "w2", 30.0),
            await s.lease_batch("batch_1", "w1", 30.0),
        ]
        return moved, not_moved, errors, active, listed, k1, leases

    moved, not_moved, errors, active, listed, k1, leases = run_store(store_url, body)
    assert moved.status == "in_progress" and moved.in_progress_at == 101
    assert not_moved is None
    assert errors.errors == [{"code": "x", "line": 1}]
    assert [b.id for b in active] == ["batch_1"]
    assert [b.id for b in listed] == ["batch_2", "batch_1"]
    assert [b.id for b in k1] == ["batch_1"]
    assert leases == [True, False, True]
