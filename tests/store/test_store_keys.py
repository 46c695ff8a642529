"""Key CRUD and listing, the same suite on every backend (``store_url`` runs each test per backend)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from llmswitch.store import KeyExistsError, KeyRecord, Store, generate_key, hash_key


def new_key(**fields: object) -> tuple[str, KeyRecord]:
    key = generate_key()
    return key, KeyRecord.for_key(key, **fields)


def test_create_then_get_returns_the_same_record(store_url: str, run_store: Callable[..., Any]) -> None:
    _, rec = new_key(
        key_alias="ci",
        models=["gpt-4o", "claude-sonnet-4"],
        max_budget=12.5,
        budget_duration="30d",
        rpm_limit=60,
        tpm_limit=100_000,
        max_parallel_requests=4,
        user_id="alice",
        team_id="research",
    )

    async def body(store: Store) -> None:
        assert await store.create_key(rec) == rec
        assert await store.get_key(rec.token_hash) == rec

    run_store(store_url, body)


def test_get_unknown_key_is_none(store_url: str, run_store: Callable[..., Any]) -> None:
    async def body(store: Store) -> None:
        assert await store.get_key(hash_key("sk-nope")) is None

    run_store(store_url, body)


def test_create_twice_raises_key_exists(store_url: str, run_store: Callable[..., Any]) -> None:
    _, rec = new_key()

    async def body(store: Store) -> None:
        await store.create_key(rec)
        with pytest.raises(KeyExistsError) as info:
            await store.create_key(rec)
        assert info.value.token_hash == rec.token_hash

    run_store(store_url, body)


def test_create_rejects_a_wrongly_typed_field(store_url: str, run_store: Callable[..., Any]) -> None:
    _, rec = new_key(rpm_limit="sixty")

    async def body(store: Store) -> None:
        with pytest.raises(ValueError, match="rpm_limit"):
            await store.create_key(rec)
        assert await store.list_keys() == []

    run_store(store_url, body)


def test_expiry_blocked_and_datetimes_round_trip_in_utc(store_url: str, run_store: Callable[..., Any]) -> None:
    plus_two = timezone(timedelta(hours=2))
    expires = datetime(2031, 5, 17, 14, 3, 9, 123456, tzinfo=plus_two)
    reset_at = datetime(2030, 1, 1, 0, 0, 0, 1)  # naive: taken as UTC
    _, rec = new_key(expires=expires, budget_reset_at=reset_at, blocked=True)

    async def body(store: Store) -> None:
        await store.create_key(rec)
        got = await store.get_key(rec.token_hash)
        assert got is not None
        assert got.blocked is True
        assert got.expires == expires and got.expires.tzinfo == UTC
        assert got.expires.hour == 12  # 14:03 at +02:00
        assert got.budget_reset_at == reset_at.replace(tzinfo=UTC)
        assert got.created_at == rec.created_at and got.updated_at == rec.updated_at
        assert not got.is_expired(now=datetime(2031, 5, 17, 12, 3, tzinfo=UTC))
        assert got.is_expired(now=datetime(2031, 5, 17, 12, 4, tzinfo=UTC))

    run_store(store_url, body)


def test_json_metadata_round_trips(store_url: str, run_store: Callable[..., Any]) -> None:
    metadata = {
        "owner": "Zoë 🚀",
        "tags": ["prod", "eu"],
        "limits": {"daily": 1.5, "strict": True, "note": None},
        "nested": [{"a": [1, 2, {"b": "c"}]}],
        "big": 2**53 + 1,
    }
    _, rec = new_key(metadata=metadata)

    async def body(store: Store) -> None:
        await store.create_key(rec)
        got = await store.get_key(rec.token_hash)
        assert got is not None and got.metadata == metadata
        updated = await store.update_key(rec.token_hash, metadata={"replaced": [True]})
        assert updated is not None and updated.metadata == {"replaced": [True]}

    run_store(store_url, body)


def test_update_changes_only_the_given_fields(store_url: str, run_store: Callable[..., Any]) -> None:
    _, rec = new_key(user_id="alice", rpm_limit=10, models=["gpt-4o"])

    async def body(store: Store) -> None:
        await store.create_key(rec)
        updated = await store.update_key(rec.token_hash, rpm_limit=20, blocked=True, models=[], key_alias="renamed")
        assert updated is not None
        assert (updated.rpm_limit, updated.blocked, updated.models, updated.key_alias) == (20, True, [], "renamed")
        assert updated.user_id == "alice" and updated.created_at == rec.created_at
        assert updated.updated_at > rec.updated_at
        assert await store.get_key(rec.token_hash) == updated
        # setting a field back to "no limit"
        cleared = await store.update_key(rec.token_hash, rpm_limit=None)
        assert cleared is not None and cleared.rpm_limit is None

    run_store(store_url, body)


def test_update_with_no_fields_returns_the_record_unchanged(store_url: str, run_store: Callable[..., Any]) -> None:
    _, rec = new_key()

    async def body(store: Store) -> None:
        await store.create_key(rec)
        assert await store.update_key(rec.token_hash) == rec

    run_store(store_url, body)


def test_update_unknown_key_is_none(store_url: str, run_store: Callable[..., Any]) -> None:
    async def body(store: Store) -> None:
        assert await store.update_key(hash_key("sk-nope"), rpm_limit=1) is None

    run_store(store_url, body)


def test_update_refuses_unknown_or_fixed_fields_and_bad_values(store_url: str, run_store: Callable[..., Any]) -> None:
    _, rec = new_key()

    async def body(store: Store) -> None:
        await store.create_key(rec)
        with pytest.raises(TypeError, match="nonsense"):
            await store.update_key(rec.token_hash, nonsense=1)
        with pytest.raises(TypeError, match="token_hash"):
            await store.update_key(rec.token_hash, token_hash=hash_key("sk-other"))
        with pytest.raises(TypeError, match="created_at"):
            await store.update_key(rec.token_hash, created_at=datetime.now(UTC))
        with pytest.raises(ValueError, match="tpm_limit"):
            await store.update_key(rec.token_hash, tpm_limit="lots")
        with pytest.raises(ValueError, match="'weekly'"):
            await store.update_key(rec.token_hash, budget_duration="weekly")
        assert await store.get_key(rec.token_hash) == rec

    run_store(store_url, body)


def test_delete_counts_only_existing_keys(store_url: str, run_store: Callable[..., Any]) -> None:
    records = [new_key()[1] for _ in range(3)]

    async def body(store: Store) -> None:
        for rec in records:
            await store.create_key(rec)
        gone = [records[0].token_hash, records[1].token_hash]
        assert await store.delete_keys([*gone, gone[0], hash_key("sk-never")]) == 2
        assert await store.get_key(gone[0]) is None
        assert await store.get_key(records[2].token_hash) == records[2]
        assert await store.delete_keys(gone) == 0
        assert await store.delete_keys([]) == 0

    run_store(store_url, body)


def test_delete_many_keys_at_once(store_url: str, run_store: Callable[..., Any]) -> None:
    # more than one SQLite statement's worth of parameters
    records = [new_key()[1] for _ in range(520)]

    async def body(store: Store) -> None:
        for rec in records:
            await store.create_key(rec)
        assert await store.delete_keys(rec.token_hash for rec in records) == 520
        assert await store.list_keys(limit=10) == []

    run_store(store_url, body)


def test_list_filters_by_user_and_team_and_pages_in_creation_order(
    store_url: str, run_store: Callable[..., Any]
) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    owners = [("alice", "a"), ("alice", "b"), ("bob", "a"), ("carol", None), ("alice", "a")]
    records = [
        new_key(user_id=user, team_id=team, created_at=start + timedelta(minutes=i))[1]
        for i, (user, team) in enumerate(owners)
    ]

    async def body(store: Store) -> None:
        for rec in reversed(records):
            await store.create_key(rec)
        assert await store.list_keys() == records
        assert await store.list_keys(user_id="alice") == [records[0], records[1], records[4]]
        assert await store.list_keys(team_id="a") == [records[0], records[2], records[4]]
        assert await store.list_keys(user_id="alice", team_id="a") == [records[0], records[4]]
        assert await store.list_keys(user_id="nobody") == []
        pages = [await store.list_keys(limit=2, offset=offset) for offset in (0, 2, 4, 6)]
        assert pages == [records[0:2], records[2:4], records[4:5], []]
        with pytest.raises(ValueError, match="limit"):
            await store.list_keys(limit=-1)

    run_store(store_url, body)


def test_keys_are_never_stored_in_clear(
    store_url: str, run_store: Callable[..., Any], raw_rows: Callable[[str, str], list[Any]]
) -> None:
    key, rec = new_key(user_id="alice")

    async def body(store: Store) -> None:
        await store.create_key(rec)
        await store.update_key(rec.token_hash, rpm_limit=5)

    run_store(store_url, body)
    dumped = repr(raw_rows(store_url, "SELECT * FROM llmswitch_keys"))
    assert rec.token_hash in dumped
    assert key not in dumped and key[3:] not in dumped
