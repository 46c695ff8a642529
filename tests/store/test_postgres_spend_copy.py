"""A spend batch goes into PostgreSQL as a binary COPY, and again as an INSERT when COPY refuses it: every
field comes back as given either way, and each stored record is charged to its key, user and team once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from llmswitch.store import KeyRecord, SpendRecord, SubjectRecord, generate_key, open_store
from llmswitch.store.postgres import PostgresStore

_FALLBACK = "goes again as an INSERT"


def _fallbacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "llmswitch.store" and _FALLBACK in r.getMessage()]


def _full(request_id: str, key_hash: str, cost: float | None) -> SpendRecord:
    """A record with every field away from its default."""
    return SpendRecord(
        request_id=request_id,
        time=datetime(2026, 12, 7, 5, 59, 58, 123456, tzinfo=UTC),
        key_hash=key_hash,
        key_alias="ci's key",
        user_id="alice",
        team_id="research",
        model_group="gpt-4o",
        deployment_id="eu-1",
        provider="openai",
        model="gpt-4o-2024-08-06",
        input_tokens=2**40,
        output_tokens=17,
        cache_read_tokens=3,
        cache_write_tokens=4,
        reasoning_tokens=5,
        cost=cost,
        latency_ms=12.25,
        ttft_ms=0.1,
        status=429,
        error_class="RateLimitError",
        cache_hit=True,
        stream=True,
        metadata={"tags": ["a", "b\\u0000", 'q"uote'], "nested": {"n": 1.5, "none": None}, "ünï": "✓"},
        call_type="embeddings",
        estimated=True,
        cache_saved_cost=0.000123,
    )


def test_a_batch_comes_back_field_for_field_and_is_charged_exactly(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = KeyRecord.for_key(generate_key(), user_id="alice", team_id="research")
    costs = [0.1, 0.2, 0.3, 1e-9, 0.005, None, 0.0]

    async def main() -> None:
        async with open_store(postgres_url) as store:
            assert isinstance(store, PostgresStore)
            await store.create_key(key)
            await store.create_subject(SubjectRecord(kind="user", id="alice"))
            await store.create_subject(SubjectRecord(kind="team", id="research"))
            batch = [_full(f"copy-{i}", key.token_hash, c) for i, c in enumerate(costs[:-2])]
            batch += [SpendRecord(request_id="copy-bare-1", cost=costs[-2]), SpendRecord(request_id="copy-bare-2")]
            with caplog.at_level(logging.INFO, logger="llmswitch.store"):
                assert await store.insert_spend_logs(batch) == len(batch)
            assert _fallbacks(caplog) == []
            stored = {
                r.request_id: r for r in await store.list_spend_logs(limit=100) if r.request_id.startswith("copy-")
            }
            assert stored == {r.request_id: r for r in batch}
            total = float(sum((Decimal(repr(c)) for c in costs[:-2] if c), Decimal(0)))
            rec = await store.get_key(key.token_hash)
            user = await store.get_subject("user", "alice")
            team = await store.get_subject("team", "research")
            assert rec is not None and rec.spend == total
            assert user is not None and user.spend == total
            assert team is not None and team.spend == total

    asyncio.run(main())


def test_a_replayed_batch_goes_again_as_an_insert_and_charges_only_what_is_new(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = KeyRecord.for_key(generate_key(), user_id="alice")

    async def main() -> None:
        async with open_store(postgres_url) as store:
            await store.create_key(key)
            await store.create_subject(SubjectRecord(kind="user", id="alice"))
            h = key.token_hash
            first = [SpendRecord(request_id=f"replay-{i}", key_hash=h, user_id="alice", cost=0.25) for i in range(3)]
            assert await store.insert_spend_logs(first) == 3
            # a crash after the commit, before the journal's checkpoint: the batch comes again, with more after it
            again = [*first, SpendRecord(request_id="replay-new", key_hash=h, user_id="alice", cost=0.5)]
            with caplog.at_level(logging.INFO, logger="llmswitch.store"):
                assert await store.insert_spend_logs(again) == 1
            [message] = _fallbacks(caplog)  # at info: a replay follows a crash, which an operator wants to see
            assert "of 4 records" in message and "replay-" in message  # PostgreSQL names the duplicate key
            rec = await store.get_key(h)
            user = await store.get_subject("user", "alice")
            assert rec is not None and rec.spend == 1.25
            assert user is not None and user.spend == 1.25
            assert len(await store.list_spend_logs(key_hash=h, limit=100)) == 4
            # and the next batch goes by COPY again
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="llmswitch.store"):
                assert await store.insert_spend_logs([SpendRecord(request_id="replay-next", key_hash=h, cost=1.0)]) == 1
            assert _fallbacks(caplog) == []
            rec = await store.get_key(h)
            assert rec is not None and rec.spend == 2.25

    asyncio.run(main())


def test_a_nul_that_copy_refuses_is_stored_scrubbed_and_charged_once(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = KeyRecord.for_key(generate_key())

    async def main() -> None:
        async with open_store(postgres_url) as store:
            await store.create_key(key)
            h = key.token_hash
            # each NUL after rows COPY has taken: those are undone, and the INSERT stores all of them once
            for i, rec in enumerate(
                [
                    SpendRecord(request_id="nul-text", key_hash=h, user_id="a\x00b", cost=0.5),
                    SpendRecord(request_id="nul-json", key_hash=h, metadata={"k": "v\x00"}, cost=0.25),
                ]
            ):
                batch = [SpendRecord(request_id=f"nul-before-{i}", key_hash=h, cost=1.0), rec]
                with caplog.at_level(logging.DEBUG, logger="llmswitch.store"):
                    assert await store.insert_spend_logs(batch) == 2
            # at debug only: a client can send a NUL with every request
            assert [r.levelno for r in caplog.records if _FALLBACK in r.getMessage()] == [logging.DEBUG] * 2
            assert len(await store.list_spend_logs(key_hash=h, limit=100)) == 4
            text = await store.list_spend_logs(request_id="nul-text")
            meta = await store.list_spend_logs(request_id="nul-json")
            assert [r.user_id for r in text] == ["a\ufffdb"]
            assert [r.metadata for r in meta] == [{"k": "v\ufffd"}]
            got = await store.get_key(h)
            assert got is not None and got.spend == 2.75

    asyncio.run(main())


def test_a_timing_that_is_not_a_finite_number_is_stored_as_null_either_way(postgres_url: str) -> None:
    """As the INSERT's JSON has it: JSON has no NaN or infinity."""
    odd = [
        SpendRecord(request_id="odd-copy", latency_ms=float("inf"), ttft_ms=float("nan")),
        SpendRecord(request_id="odd-copy-2", latency_ms=float("-inf"), ttft_ms=3.5),
    ]
    replayed = [odd[0], SpendRecord(request_id="odd-insert", latency_ms=float("nan"), ttft_ms=float("inf"))]

    async def main() -> None:
        async with open_store(postgres_url) as store:
            assert await store.insert_spend_logs(odd) == 2
            assert await store.insert_spend_logs(replayed) == 1  # by the INSERT: odd-copy is stored
            got = {r.request_id: (r.latency_ms, r.ttft_ms) for r in await store.list_spend_logs(limit=100)}
            assert got["odd-copy"] == (None, None)
            assert got["odd-copy-2"] == (None, 3.5)
            assert got["odd-insert"] == (None, None)

    asyncio.run(main())
