"""The store's spend logs (migration 2), the same suite on every backend."""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
import struct
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from msgspec import structs
from spend_harness import key_spend, new_key, record

from llmswitch.store import DailySpend, SpendGroup, SpendRecord, Store, open_store
from llmswitch.store.records import SPEND_FIELDS

T0 = datetime(2025, 6, 1, 22, 0, tzinfo=UTC)


def run(url: str, body: Callable[[Store], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with open_store(url) as store:
            return await body(store)

    return asyncio.run(main())


def test_every_field_round_trips(store_url: str) -> None:
    rec = SpendRecord(
        request_id="req-all-fields",
        time=datetime(2025, 6, 1, 12, 30, 15, 123456, tzinfo=UTC),
        key_hash="ab" * 32,
        key_alias="ci",
        user_id="alice",
        team_id="research",
        model_group="gpt-4o",
        deployment_id="azure-eu-1",
        provider="azure",
        model="gpt-4o-2024-08-06",
        input_tokens=1200,
        output_tokens=340,
        cache_read_tokens=1024,
        cache_write_tokens=0,
        reasoning_tokens=128,
        cost=0.0123,
        latency_ms=812.5,
        ttft_ms=95.25,
        status=200,
        error_class=None,
        cache_hit=True,
        stream=True,
        metadata={"tags": ["a", "b"], "n": 1, "nested": {"x": None}},
    )

    async def body(store: Store) -> None:
        assert await store.insert_spend_logs([rec]) == 1
        assert await store.list_spend_logs() == [rec]

    run(store_url, body)


def test_fields_at_their_defaults_and_away_from_them_round_trip(store_url: str) -> None:
    # a field at its default is left out of the record's JSON: the store must read it back as that default
    plain = SpendRecord(request_id="req-defaults", time=datetime(2025, 6, 1, 12, 0, tzinfo=UTC))
    assert msgspec.json.encode(plain) == b'{"request_id":"req-defaults","time":"2025-06-01T12:00:00Z"}'
    changed = {
        "input_tokens": 1,
        "output_tokens": 2,
        "cache_read_tokens": 3,
        "cache_write_tokens": 4,
        "reasoning_tokens": 5,
        "cost": 0.0,
        "latency_ms": 0.0,
        "ttft_ms": 0.0,
        "status": 503,
        "error_class": "ServiceUnavailableError",
        "cache_hit": True,
        "stream": True,
        "metadata": {"k": "v"},
        "call_type": "embeddings",
        "estimated": True,
        "cache_saved_cost": 0.5,
    }
    # every field with a default, away from it (the id, the time and the names are covered above)
    assert set(changed) | {"key_hash", "key_alias", "user_id", "team_id", "model_group", "deployment_id"} | {
        "provider",
        "model",
    } == set(SPEND_FIELDS) - {"request_id", "time"}
    away = structs.replace(plain, request_id="req-away", time=datetime(2025, 6, 1, 12, 1, tzinfo=UTC), **changed)

    async def body(store: Store) -> None:
        assert await store.insert_spend_logs([plain, away]) == 2
        assert await store.list_spend_logs() == [away, plain]

    run(store_url, body)


def test_inserting_again_adds_nothing_and_counts_spend_once(store_url: str) -> None:
    async def body(store: Store) -> None:
        key = await new_key(store)
        first = [record(f"r{i}", key, cost=i / 8) for i in range(4)]
        assert await store.insert_spend_logs(first) == 4
        assert await key_spend(store, key) == 6 / 8
        # a replay overlapping the first batch: only r4 is new
        assert await store.insert_spend_logs([*first, record("r4", key, cost=1.0)]) == 1
        assert await store.insert_spend_logs(first) == 0
        assert await key_spend(store, key) == 6 / 8 + 1.0
        assert len(await store.list_spend_logs(limit=100)) == 5

    run(store_url, body)


def test_a_request_id_twice_in_one_batch_is_stored_and_counted_once(store_url: str) -> None:
    async def body(store: Store) -> None:
        key = await new_key(store)
        assert await store.insert_spend_logs([record("dup", key, cost=0.5), record("dup", key, cost=0.5)]) == 1
        assert await key_spend(store, key) == 0.5

    run(store_url, body)


def test_spend_goes_to_each_key_and_skips_unknown_costs_and_keys(store_url: str) -> None:
    async def body(store: Store) -> None:
        a, b = await new_key(store), await new_key(store)
        batch = [
            record("1", a, cost=0.25),
            record("2", b, cost=0.5),
            record("3", a, cost=0.125),
            record("4", a, cost=None),  # price unknown: logged, nothing added
            record("5", None, cost=2.0),  # no key (no auth configured)
            record("6", "cd" * 32, cost=4.0),  # a key deleted since: its log is still kept
        ]
        assert await store.insert_spend_logs(batch) == 6
        assert (await key_spend(store, a), await key_spend(store, b)) == (0.375, 0.5)

    run(store_url, body)


def test_new_spend_reaches_key_refreshers(store_url: str) -> None:
    async def body(store: Store) -> None:
        key = await new_key(store)
        cursor = (await store.keys_changed_since(0)).cursor
        await store.insert_spend_logs([record("r1", key, cost=0.5)])
        changed, _, after = await store.keys_changed_since(cursor)
        assert [(rec.token_hash, rec.spend) for rec in changed] == [(key, 0.5)]
        # a replay changes nothing, so it must not wake refreshers either
        await store.insert_spend_logs([record("r1", key, cost=0.5)])
        assert (await store.keys_changed_since(after)).records == []

    run(store_url, body)


def test_empty_strings_zeros_and_missing_values_stay_apart(store_url: str) -> None:
    # the SQLite store binds a missing value as a stand-in that SQL turns into NULL: an empty string,
    # a zero or false must not be taken for one
    empty = SpendRecord(
        request_id="empty",
        time=datetime(2025, 6, 1, 12, 0, tzinfo=UTC),  # no fraction of a second
        key_hash="",
        key_alias="",
        user_id="",
        team_id="",
        model_group="",
        deployment_id="",
        provider="",
        model="",
        cost=0.0,
        latency_ms=0.0,
        ttft_ms=0.0,
        error_class="",
    )
    missing = SpendRecord(request_id="missing", time=datetime(2025, 6, 1, 11, 0, tzinfo=UTC))

    async def body(store: Store) -> None:
        assert await store.insert_spend_logs([empty, missing]) == 2
        assert await store.list_spend_logs() == [empty, missing]

    run(store_url, body)


def test_records_read_from_the_journal_are_not_checked_twice(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmswitch.store import records

    checked: list[str] = []
    original = records.validate_spend_record

    def counting(rec: SpendRecord) -> SpendRecord:
        checked.append(rec.request_id)
        return original(rec)

    monkeypatch.setattr(records, "validate_spend_record", counting)

    async def body(store: Store) -> None:
        key = await new_key(store)
        assert await store.insert_spend_logs(records.CheckedSpendRecords([record("j1", key), record("j2", key)])) == 2
        assert checked == []  # the journal's reader decoded (and so checked) them
        assert await store.insert_spend_logs([record("p1", key)]) == 1
        assert checked == ["p1"]  # anyone else's are checked

    run(store_url, body)


def test_a_wrongly_typed_record_is_refused_before_anything_is_written(store_url: str) -> None:
    async def body(store: Store) -> None:
        key = await new_key(store)
        bad = SpendRecord(request_id="bad", key_hash=key, input_tokens="many")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="bad"):
            await store.insert_spend_logs([record("good", key, cost=1.0), bad])
        assert await store.list_spend_logs() == []
        assert await key_spend(store, key) == 0.0
        assert await store.insert_spend_logs([]) == 0

    run(store_url, body)


def test_nul_characters_are_stored_on_every_backend(store_url: str) -> None:
    # PostgreSQL text and jsonb cannot hold NUL: it becomes U+FFFD there, and SQLite keeps it
    rec = record("nul", user_id="a\x00b", metadata={"k\x00": ["v\x00"]})

    async def body(store: Store) -> SpendRecord:
        assert await store.insert_spend_logs([rec]) == 1
        return (await store.list_spend_logs())[0]

    got = run(store_url, body)
    assert got.user_id in ("a\x00b", "a\ufffdb")
    assert got.metadata in ({"k\x00": ["v\x00"]}, {"k\ufffd": ["v\ufffd"]})


def test_text_that_looks_like_escapes_or_json_is_stored_as_it_is(store_url: str) -> None:
    # PostgreSQL reads a batch as one JSON document: text holding a NUL escape's characters, quotes,
    # backslashes, JSON of its own or non-ASCII must come back unchanged, beside a real NUL
    odd = ["a\\u0000b", '"}]', "\\", '{"cost": 1}', "ключ 🔑", "\u2028"]
    recs = [record(f"odd-{i}", user_id=text, metadata={text: [text]}) for i, text in enumerate(odd)]
    recs.append(record("odd-nul", user_id="x\x00y", team_id="\\u0000"))

    async def body(store: Store) -> list[SpendRecord]:
        assert await store.insert_spend_logs(recs) == len(recs)
        return await store.list_spend_logs(limit=100)

    got = {r.request_id: r for r in run(store_url, body)}
    for i, text in enumerate(odd):
        assert got[f"odd-{i}"].user_id == text and got[f"odd-{i}"].metadata == {text: [text]}
    assert got["odd-nul"].user_id in ("x\x00y", "x\ufffdy") and got["odd-nul"].team_id == "\\u0000"


def test_a_batch_keeps_every_string_and_float_exactly(store_url: str) -> None:
    # PostgreSQL reads a batch as one JSON document: every float must come back to the bit, and text
    # holding escapes, quotes, JSON, control characters or non-ASCII as it was
    rnd = random.Random(22)
    odd = ["a\\u0000b", '"}]', "\\", '{"cost": 1}', "ключ 🔑", "\u2028", "tab\tnl\n", "\x01\x1f"]
    recs = []
    for i in range(120):
        bits = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
        cost = abs(bits) if math.isfinite(bits) and abs(bits) < 1e300 else rnd.random()
        text = odd[i % len(odd)]
        recs.append(
            record(
                f"exact-{i}",
                cost=cost if i % 3 else rnd.random() * 10 ** rnd.randint(-12, 3),
                latency_ms=rnd.random() * 1e4,
                ttft_ms=None if i % 2 else rnd.random(),
                user_id=text,
                model=None,
                input_tokens=2**63 - 1 if i == 7 else i,
                metadata={text: [text, i]} if i % 4 else {},
            )
        )

    async def body(store: Store) -> list[SpendRecord]:
        assert await store.insert_spend_logs(recs) == len(recs)
        return await store.list_spend_logs(limit=500)

    got = {r.request_id: r for r in run(store_url, body)}
    for rec in recs:
        back = got[rec.request_id]
        assert back == rec, (rec, back)  # float == float: the same bits (none is a zero or NaN)


def test_batches_of_every_shape_store_each_record_once(store_url: str) -> None:
    # SQLite inserts a batch in groups of 64, 32, ..., 1 rows a statement: sizes that need every group,
    # one row short of a group and one past it, then a replay mixing stored and new records
    async def body(store: Store) -> None:
        key = await new_key(store)
        expected, n = 0.0, 0
        for size in (1, 2, 63, 64, 65, 127, 130):
            batch = [record(f"shape-{size}-{i}", key, cost=(i + 1) / 1024) for i in range(size)]
            assert await store.insert_spend_logs(batch) == size
            expected += sum((i + 1) / 1024 for i in range(size))
            n += size
        replay = [record(f"shape-127-{i}", key, cost=1.0) for i in range(0, 127, 2)]
        replay += [record(f"shape-new-{i}", key, cost=1 / 1024) for i in range(70)]
        assert await store.insert_spend_logs(replay) == 70
        expected += 70 / 1024
        n += 70
        assert await key_spend(store, key) == pytest.approx(expected, rel=1e-12)
        logs = await store.list_spend_logs(limit=10_000)
        assert len(logs) == len({rec.request_id for rec in logs}) == n
        # the replayed ids kept their first record (cost (i + 1) / 1024, not 1.0)
        assert {rec.cost for rec in logs if rec.request_id.startswith("shape-127-")} == {
            (i + 1) / 1024 for i in range(127)
        }

    run(store_url, body)


@pytest.mark.parametrize("limit", [999, len(SPEND_FIELDS), 2 * len(SPEND_FIELDS) - 1])
def test_a_sqlite_build_allowing_few_parameters_still_stores_a_batch(sqlite_url: str, limit: int) -> None:
    # SQLite before 3.32 allows 999 bound parameters a statement, and a build may allow fewer: a spend
    # row binds one per field, so the last two limits leave room for one row a statement
    async def body(store: Store) -> None:
        await store._call(lambda conn: conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit))  # type: ignore[attr-defined]
        key = await new_key(store)
        batch = [record(f"few-{i}", key, cost=1 / 8) for i in range(100)]
        assert await store.insert_spend_logs(batch) == 100
        assert await store.insert_spend_logs([*batch[:10], record("few-new", key, cost=1 / 8)]) == 1
        assert await key_spend(store, key) == 101 / 8
        assert len(await store.list_spend_logs(limit=500)) == 101

    run(sqlite_url, body)


def test_a_sqlite_limit_below_one_row_fails_the_batch_instead_of_storing_nothing(sqlite_url: str) -> None:
    async def body(store: Store) -> None:
        key = await new_key(store)
        await store._call(lambda conn: conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, len(SPEND_FIELDS) - 1))  # type: ignore[attr-defined]
        with pytest.raises(sqlite3.OperationalError, match="too many SQL variables"):
            await store.insert_spend_logs([record("too-wide", key, cost=1 / 8)])
        await store._call(lambda conn: conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999))  # type: ignore[attr-defined]
        assert await store.list_spend_logs() == []
        assert await key_spend(store, key) == 0
        assert await store.insert_spend_logs([record("too-wide", key, cost=1 / 8)]) == 1

    run(sqlite_url, body)


def test_list_filters_pages_and_orders_newest_first(store_url: str) -> None:
    records = [
        record(f"r{i}", key_hash=("ab" if i % 2 else "cd") * 32, user_id=f"u{i % 3}", team_id="t" if i < 3 else None)
        for i in range(6)
    ]
    records = [structs.replace(rec, time=T0 + timedelta(hours=i)) for i, rec in enumerate(records)]

    async def body(store: Store) -> None:
        await store.insert_spend_logs(records)
        ids = [rec.request_id for rec in await store.list_spend_logs()]
        assert ids == ["r5", "r4", "r3", "r2", "r1", "r0"]
        assert [r.request_id for r in await store.list_spend_logs(key_hash="ab" * 32)] == ["r5", "r3", "r1"]
        assert [r.request_id for r in await store.list_spend_logs(user_id="u1")] == ["r4", "r1"]
        assert [r.request_id for r in await store.list_spend_logs(team_id="t", user_id="u0")] == ["r0"]
        window = await store.list_spend_logs(start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=4))
        assert [r.request_id for r in window] == ["r3", "r2", "r1"]
        # naive bounds are UTC; other offsets are converted
        naive = await store.list_spend_logs(start=datetime(2025, 6, 2, 2, 0))
        assert [r.request_id for r in naive] == ["r5", "r4"]
        plus2 = timezone(timedelta(hours=2))
        assert [r.request_id for r in await store.list_spend_logs(end=datetime(2025, 6, 2, 1, 0, tzinfo=plus2))] == [
            "r0"
        ]
        pages = [await store.list_spend_logs(limit=4, offset=offset) for offset in (0, 4, 8)]
        assert [[r.request_id for r in page] for page in pages] == [["r5", "r4", "r3", "r2"], ["r1", "r0"], []]
        with pytest.raises(ValueError, match="negative"):
            await store.list_spend_logs(limit=-1)

    run(store_url, body)


def test_daily_spend_sums_per_utc_day_and_group(store_url: str) -> None:
    def at(hours: float, request_id: str, **fields: Any) -> SpendRecord:
        return record(request_id, time=T0 + timedelta(hours=hours), input_tokens=10, output_tokens=1, **fields)

    records = [
        at(0, "a", team_id="t1", user_id="u1", model_group="gpt", key_hash="ab" * 32, cost=0.5),
        at(1, "b", team_id="t1", user_id="u2", model_group="gpt", key_hash="ab" * 32, cost=0.25),
        at(1.5, "c", team_id=None, user_id="u1", model_group="claude", key_hash="cd" * 32, cost=None),
        # 22:00 UTC + 3h: the next UTC day, whatever the server's time zone
        at(3, "d", team_id="t1", user_id="u1", model_group="claude", key_hash="cd" * 32, cost=1.0),
        at(4, "e", team_id="t2", user_id="u1", model_group="gpt", key_hash="ab" * 32, cost=2.0),
    ]
    d1, d2 = date(2025, 6, 1), date(2025, 6, 2)

    async def body(store: Store) -> dict[str, list[DailySpend]]:
        await store.insert_spend_logs(records)
        groups: tuple[SpendGroup, ...] = ("key", "user", "team", "model")
        result: dict[str, list[DailySpend]] = {group: await store.daily_spend(group) for group in groups}
        result["window"] = await store.daily_spend("team", start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=4))
        with pytest.raises(ValueError, match="group_by"):
            await store.daily_spend("deployment")  # type: ignore[arg-type]
        return result

    got = run(store_url, body)
    assert got["team"] == [
        DailySpend(d1, "t1", 2, 20, 2, 0.75),
        DailySpend(d1, None, 1, 10, 1, 0.0),
        DailySpend(d2, "t1", 1, 10, 1, 1.0),
        DailySpend(d2, "t2", 1, 10, 1, 2.0),
    ]
    assert got["user"] == [
        DailySpend(d1, "u1", 2, 20, 2, 0.5),
        DailySpend(d1, "u2", 1, 10, 1, 0.25),
        DailySpend(d2, "u1", 2, 20, 2, 3.0),
    ]
    assert got["model"] == [
        DailySpend(d1, "claude", 1, 10, 1, 0.0),
        DailySpend(d1, "gpt", 2, 20, 2, 0.75),
        DailySpend(d2, "claude", 1, 10, 1, 1.0),
        DailySpend(d2, "gpt", 1, 10, 1, 2.0),
    ]
    assert [(row.day, row.group, row.cost) for row in got["key"]] == [
        (d1, "ab" * 32, 0.75),
        (d1, "cd" * 32, 0.0),
        (d2, "ab" * 32, 2.0),
        (d2, "cd" * 32, 1.0),
    ]
    assert got["window"] == [
        DailySpend(d1, "t1", 1, 10, 1, 0.25),
        DailySpend(d1, None, 1, 10, 1, 0.0),
        DailySpend(d2, "t1", 1, 10, 1, 1.0),
    ]
