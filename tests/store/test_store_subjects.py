"""Users and teams ("subjects", migration 3), the same suite on every backend: CRUD, checks, the change
feed with deletions, and spend attributed through insert_spend_logs, idempotent on replay."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from old_schema import write_keys_as_of_old_schema

from llmswitch.store import (
    KeyRecord,
    SpendRecord,
    Store,
    SubjectExistsError,
    SubjectRecord,
    generate_key,
    open_store,
)
from llmswitch.store.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from llmswitch.store.urls import sqlite_path, url_scheme

RunStore = Callable[..., Any]


def team(subject_id: str = "research", **fields: Any) -> SubjectRecord:
    return SubjectRecord(kind="team", id=subject_id, **fields)


def user(subject_id: str = "alice", **fields: Any) -> SubjectRecord:
    return SubjectRecord(kind="user", id=subject_id, **fields)


# ---------------------------------------------------------------- create, get, update, delete, list


def test_every_field_round_trips(store_url: str, run_store: RunStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    rec = team(
        alias="Research",
        models=["gpt-4o", "claude-sonnet-4"],
        max_budget=100.5,
        budget_duration="30d",
        budget_reset_at=datetime(2031, 5, 17, 14, 3, 9, 123456, tzinfo=plus_two),
        rpm_limit=600,
        tpm_limit=2**63 - 1,
        max_parallel_requests=8,
        metadata={"owner": "Zoë 🚀", "tags": ["eu"], "nested": {"n": [1, {"x": None}]}, "big": 2**53 + 1},
        blocked=True,
        spend=1.25,
    )

    async def body(store: Store) -> None:
        assert await store.create_subject(rec) == rec
        got = await store.get_subject("team", "research")
        assert got == rec
        assert got is not None and got.budget_reset_at is not None
        assert got.budget_reset_at.tzinfo is UTC and got.budget_reset_at.hour == 12  # 14:03 at +02:00
        assert await store.get_subject("user", "research") is None  # same id, other kind
        assert await store.get_subject("team", "nobody") is None

    run_store(store_url, body)


def test_users_and_teams_are_separate_namespaces(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        await store.create_subject(user("shared", alias="a user"))
        await store.create_subject(team("shared", alias="a team"))
        u, t = await store.get_subject("user", "shared"), await store.get_subject("team", "shared")
        assert u is not None and t is not None and (u.alias, t.alias) == ("a user", "a team")
        with pytest.raises(SubjectExistsError) as info:
            await store.create_subject(user("shared"))
        assert (info.value.kind, info.value.subject_id) == ("user", "shared")
        assert await store.count_subjects("user") == await store.count_subjects("team") == 1

    run_store(store_url, body)


def test_update_changes_only_the_given_fields(store_url: str, run_store: RunStore) -> None:
    rec = user(alias="Alice", rpm_limit=10, models=["gpt-4o"], max_budget=5.0)

    async def body(store: Store) -> None:
        await store.create_subject(rec)
        updated = await store.update_subject("user", "alice", rpm_limit=20, blocked=True, models=[], spend=0.5)
        assert updated is not None
        assert (updated.rpm_limit, updated.blocked, updated.models, updated.spend) == (20, True, [], 0.5)
        assert (updated.alias, updated.max_budget, updated.created_at) == ("Alice", 5.0, rec.created_at)
        assert updated.updated_at > rec.updated_at
        assert await store.get_subject("user", "alice") == updated
        cleared = await store.update_subject("user", "alice", rpm_limit=None, max_budget=None)
        assert cleared is not None and (cleared.rpm_limit, cleared.max_budget) == (None, None)
        assert await store.update_subject("user", "alice") == cleared  # nothing to change
        assert await store.update_subject("user", "nobody", rpm_limit=1) is None
        assert await store.update_subject("team", "alice", rpm_limit=1) is None

    run_store(store_url, body)


def test_update_refuses_fixed_fields_and_bad_values(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        await store.create_subject(team())
        before = await store.get_subject("team", "research")
        for field in ("id", "kind", "created_at", "nonsense"):
            with pytest.raises(TypeError, match=field):
                await store.update_subject("team", "research", **{field: "x"})
        for field, value in (("tpm_limit", "lots"), ("rpm_limit", 2**63), ("max_budget", float("nan")),
                             ("budget_duration", "weekly"), ("alias", "a\x00b"), ("metadata", {"k": ["\x00"]})):  # fmt: skip
            with pytest.raises(ValueError, match=field if field != "budget_duration" else "'weekly'"):
                await store.update_subject("team", "research", **{field: value})
        assert await store.get_subject("team", "research") == before

    run_store(store_url, body)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"rpm_limit": "sixty"}, "rpm_limit"),
        ({"tpm_limit": -1}, "tpm_limit"),
        ({"max_parallel_requests": 2**63}, "max_parallel_requests"),
        ({"max_budget": float("inf")}, "max_budget"),
        ({"spend": float("nan")}, "spend"),
        ({"models": "gpt-4o"}, "models"),
        ({"models": ["gpt\x00"]}, "models"),
        ({"alias": "x\x00"}, "alias"),
        ({"id": "a\x00b"}, "id"),
        ({"metadata": {"k\x00": 1}}, "metadata"),
        ({"metadata": {"k": object()}}, "metadata"),
        ({"blocked": "yes"}, "blocked"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_create_refuses_what_either_backend_could_not_hold(
    store_url: str, run_store: RunStore, fields: dict[str, Any], named: str
) -> None:
    rec = SubjectRecord(**{"kind": "team", "id": "checked", **fields})

    async def body(store: Store) -> None:
        with pytest.raises(ValueError, match=named):
            await store.create_subject(rec)
        assert await store.list_subjects("team") == []

    run_store(store_url, body)


def test_records_check_kind_id_and_duration_when_built() -> None:
    with pytest.raises(ValueError, match="kind must be 'user' or 'team'"):
        SubjectRecord(kind="org", id="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string"):
        SubjectRecord(kind="user", id="")
    with pytest.raises(ValueError, match="'30days'"):
        SubjectRecord(kind="user", id="u", budget_duration="30days")
    naive = SubjectRecord(kind="user", id="u", created_at=datetime(2030, 1, 1))
    assert naive.created_at.tzinfo is UTC


def test_kind_is_checked_by_every_method(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        calls = [
            store.get_subject("org", "x"),  # type: ignore[arg-type]
            store.update_subject("org", "x", rpm_limit=1),  # type: ignore[arg-type]
            store.delete_subjects("org", ["x"]),  # type: ignore[arg-type]
            store.list_subjects("org"),  # type: ignore[arg-type]
            store.count_subjects("org"),  # type: ignore[arg-type]
            store.add_subject_spend("org", "x", 1.0),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(ValueError, match="kind must be"):
                await call

    run_store(store_url, body)


def test_delete_counts_only_existing_subjects_of_that_kind(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        for name in ("a", "b", "c"):
            await store.create_subject(team(name))
        await store.create_subject(user("a"))
        assert await store.delete_subjects("team", ["a", "b", "a", "missing"]) == 2
        assert await store.delete_subjects("team", []) == 0
        assert [t.id for t in await store.list_subjects("team")] == ["c"]
        assert await store.get_subject("user", "a") is not None

    run_store(store_url, body)


def test_list_pages_oldest_first_per_kind(store_url: str, run_store: RunStore) -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    teams = [team(f"t{i}", created_at=t0 + timedelta(seconds=10 - i)) for i in range(7)]

    async def body(store: Store) -> None:
        for rec in teams:
            await store.create_subject(rec)
        await store.create_subject(user("u"))
        oldest_first = [rec.id for rec in reversed(teams)]
        assert [t.id for t in await store.list_subjects("team")] == oldest_first
        pages = [await store.list_subjects("team", limit=3, offset=o) for o in (0, 3, 6, 9)]
        assert [[t.id for t in p] for p in pages] == [oldest_first[:3], oldest_first[3:6], oldest_first[6:], []]
        assert (await store.count_subjects("team"), await store.count_subjects("user")) == (7, 1)
        with pytest.raises(ValueError, match="negative"):
            await store.list_subjects("team", limit=-1)

    run_store(store_url, body)


# ---------------------------------------------------------------- the change feed


def test_refresh_sees_creates_updates_spend_and_deletes(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        assert await store.subjects_changed_since(0) == ([], [], 0)
        for rec in (team("t1"), team("t2"), user("u1")):
            await store.create_subject(rec)
        changed, deleted, cursor = await store.subjects_changed_since(0)
        assert {(r.kind, r.id) for r in changed} == {("team", "t1"), ("team", "t2"), ("user", "u1")}
        assert deleted == []
        assert await store.subjects_changed_since(cursor) == ([], [], cursor)

        await store.update_subject("team", "t1", rpm_limit=7)
        await store.delete_subjects("team", ["t2"])
        await store.add_subject_spend("user", "u1", 0.5)
        changed, deleted, after = await store.subjects_changed_since(cursor)
        assert after > cursor
        assert {(r.kind, r.id): (r.rpm_limit, r.spend) for r in changed} == {
            ("team", "t1"): (7, 0.0),
            ("user", "u1"): (None, 0.5),
        }
        assert deleted == [("team", "t2")]

        # deleted and created again: live again, and no stale tombstone deletes it on refresh
        await store.delete_subjects("user", ["u1"])
        await store.create_subject(user("u1"))
        changed, deleted, after2 = await store.subjects_changed_since(after)
        assert [(r.kind, r.id) for r in changed] == [("user", "u1")] and deleted == []

        # a full load is everything alive, and no deletions
        everything, deleted, full = await store.subjects_changed_since(0)
        assert {(r.kind, r.id) for r in everything} == {("team", "t1"), ("user", "u1")}
        assert deleted == [] and full == after2

    run_store(store_url, body)


def test_keys_and_subjects_have_separate_cursors(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        key = KeyRecord.for_key(generate_key(), user_id="u1")
        await store.create_key(key)
        _, _, key_cursor = await store.keys_changed_since(0)
        _, _, subject_cursor = await store.subjects_changed_since(0)
        await store.create_subject(user("u1"))
        await store.update_subject("user", "u1", blocked=True)
        assert await store.keys_changed_since(key_cursor) == ([], [], key_cursor)
        await store.update_key(key.token_hash, rpm_limit=1)
        changed, _, _ = await store.subjects_changed_since(subject_cursor)
        assert [(r.id, r.blocked) for r in changed] == [("u1", True)]

    run_store(store_url, body)


def test_failed_writes_do_not_show_as_changes(store_url: str, run_store: RunStore) -> None:
    async def body(store: Store) -> None:
        await store.create_subject(team())
        _, _, cursor = await store.subjects_changed_since(0)
        with pytest.raises(SubjectExistsError):
            await store.create_subject(team())
        assert await store.update_subject("team", "missing", rpm_limit=1) is None
        assert await store.add_subject_spend("team", "missing", 1.0) is None
        assert await store.delete_subjects("team", ["missing"]) == 0
        changed, deleted, _ = await store.subjects_changed_since(cursor)
        assert (changed, deleted) == ([], [])

    run_store(store_url, body)


def test_a_polling_replica_converges_under_concurrent_writers(store_url: str) -> None:
    """Two gateways create, update, spend and delete users and teams at random, spend logs arrive beside
    them, and a third keeps an in-memory copy from the change feed: the copy ends up exact."""

    async def writer(store: Store, seed: int, live: list[tuple[str, str]]) -> None:
        rng = random.Random(seed)
        for step in range(50):
            action = rng.random()
            if action < 0.3 or not live:
                rec = SubjectRecord(kind=rng.choice(("user", "team")), id=f"w{seed}-{step}")
                await store.create_subject(rec)
                live.append((rec.kind, rec.id))
            elif action < 0.5:
                kind, sid = rng.choice(live)
                await store.update_subject(kind, sid, rpm_limit=step, metadata={"by": seed})  # type: ignore[arg-type]
            elif action < 0.85:
                kind, sid = rng.choice(live)
                ids = {"user_id": sid} if kind == "user" else {"team_id": sid}
                await store.insert_spend_logs([SpendRecord(request_id=f"r{seed}-{step}", cost=0.25, **ids)])
            else:
                kind, sid = live.pop(rng.randrange(len(live)))
                await store.delete_subjects(kind, [sid])  # type: ignore[arg-type]

    async def main() -> None:
        async with open_store(store_url) as one, open_store(store_url) as two, open_store(store_url) as reader:
            replica: dict[tuple[str, str], SubjectRecord] = {}
            cursor = 0
            done = asyncio.Event()

            async def poll() -> None:
                nonlocal cursor
                changed, deleted, cursor = await reader.subjects_changed_since(cursor)
                replica.update(((r.kind, r.id), r) for r in changed)
                for pair in deleted:
                    replica.pop(pair, None)

            async def poller() -> None:
                while not done.is_set():
                    await poll()
                    await asyncio.sleep(0)

            polling = asyncio.create_task(poller())
            await asyncio.gather(*(writer(s, seed, []) for seed, s in enumerate((one, two, one, two))))
            done.set()
            await polling
            await poll()
            truth = {
                (r.kind, r.id): r
                for kind in ("user", "team")
                for r in await reader.list_subjects(kind, limit=10_000)  # type: ignore[arg-type]
            }
            assert replica == truth
            assert any(r.spend > 0 for r in truth.values())

    asyncio.run(main())


# ---------------------------------------------------------------- spend


def test_add_spend_is_atomic_and_refuses_poison(store_url: str) -> None:
    amounts = [0.125, 0.25, 1.5, 0.0625] * 25  # binary fractions: the total is exact in any order

    async def main() -> None:
        async with open_store(store_url) as one, open_store(store_url) as two:
            await one.create_subject(team())
            results = await asyncio.gather(
                *(s.add_subject_spend("team", "research", a) for s, a in zip([one, two] * 50, amounts, strict=True))
            )
            assert len(set(results)) == len(amounts) and max(r or 0 for r in results) == sum(amounts) == 48.4375
            for bad in (float("nan"), float("inf"), "1.0", True):
                with pytest.raises(ValueError, match="finite number"):
                    await one.add_subject_spend("team", "research", bad)  # type: ignore[arg-type]
            assert await one.add_subject_spend("user", "research", 1.0) is None

    asyncio.run(main())


def test_spend_logs_add_to_their_user_and_team_once_even_on_replay(store_url: str, run_store: RunStore) -> None:
    key = KeyRecord.for_key(generate_key(), user_id="alice", team_id="research")
    batch = [
        SpendRecord(request_id="r1", key_hash=key.token_hash, user_id="alice", team_id="research", cost=0.5),
        SpendRecord(request_id="r2", key_hash=key.token_hash, user_id="alice", team_id="research", cost=0.25),
        SpendRecord(request_id="r3", user_id="bob", team_id="research", cost=1.0),  # bob is no stored user
        SpendRecord(request_id="r4", user_id="alice", cost=None),  # price unknown: adds nothing
        SpendRecord(request_id="r5", team_id="ghosts", cost=4.0),  # no such team
    ]

    async def spends(store: Store) -> tuple[float | None, ...]:
        recs = [
            await store.get_subject("user", "alice"),
            await store.get_subject("team", "research"),
            await store.get_subject("user", "bob"),
            await store.get_key(key.token_hash),
        ]
        return tuple(None if r is None else r.spend for r in recs)

    async def body(store: Store) -> None:
        await store.create_key(key)
        await store.create_subject(user("alice", spend=1.0))
        await store.create_subject(team("research"))
        _, _, cursor = await store.subjects_changed_since(0)
        assert await store.insert_spend_logs(batch) == 5
        assert await spends(store) == (1.75, 1.75, None, 0.75)
        changed, _, cursor = await store.subjects_changed_since(cursor)
        assert {(r.kind, r.id): r.spend for r in changed} == {("user", "alice"): 1.75, ("team", "research"): 1.75}
        # the journal replays the whole batch after a crash, plus one new record: only that one counts
        more = SpendRecord(request_id="r6", user_id="alice", team_id="research", cost=0.125)
        assert await store.insert_spend_logs([*batch, more]) == 1
        assert await spends(store) == (1.875, 1.875, None, 0.75)
        assert await store.insert_spend_logs(batch) == 0
        assert await spends(store) == (1.875, 1.875, None, 0.75)

    run_store(store_url, body)


def test_spend_logs_beside_subject_and_key_writes_never_deadlock(store_url: str) -> None:
    """Spend batches take the keys' counter and then the subjects'; admin writes take one each. Many of all
    three at once, from two connections' pools, finish with exact totals."""
    key = KeyRecord.for_key(generate_key(), user_id="alice", team_id="research")

    async def main() -> None:
        async with open_store(store_url) as one, open_store(store_url) as two:
            await one.create_key(key)
            await one.create_subject(user("alice"))
            await one.create_subject(team("research"))
            logs = [
                s.insert_spend_logs(
                    [
                        SpendRecord(
                            request_id=f"r{i}", key_hash=key.token_hash, user_id="alice", team_id="research", cost=0.5
                        )
                    ]
                )
                for i, s in enumerate([one, two] * 20)
            ]
            admin = [s.update_subject("team", "research", rpm_limit=i) for i, s in enumerate([two, one] * 10)]
            admin += [s.update_key(key.token_hash, tpm_limit=i) for i, s in enumerate([one, two] * 10)]
            await asyncio.wait_for(asyncio.gather(*logs, *admin), timeout=60)
            alice, research = await one.get_subject("user", "alice"), await one.get_subject("team", "research")
            stored_key = await one.get_key(key.token_hash)
            assert alice is not None and research is not None and stored_key is not None
            assert alice.spend == research.spend == stored_key.spend == 20.0

    asyncio.run(main())


# ---------------------------------------------------------------- migration 3 on a database at version 2


def test_a_version_2_database_upgrades_and_keeps_its_rows(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    key = KeyRecord.for_key(generate_key(), team_id="research")
    _apply_first_two_migrations(store_url)

    async def main() -> None:
        store = open_store(store_url)
        await store.open()
        try:
            assert await store.schema_version() == 2
            write_keys_as_of_old_schema(monkeypatch, store)
            await store.create_key(key)
            monkeypatch.undo()
            assert await store.migrate() == [m.version for m in SQLITE_MIGRATIONS[2:]]
            assert await store.get_key(key.token_hash) == key
            await store.create_subject(team("research"))
            spent = SpendRecord(request_id="r1", key_hash=key.token_hash, team_id="research", cost=2.0)
            assert await store.insert_spend_logs([spent]) == 1
            got = await store.get_subject("team", "research")
            assert got is not None and got.spend == 2.0
        finally:
            await store.close()

    asyncio.run(main())


def _apply_first_two_migrations(url: str) -> None:
    if url_scheme(url) == "sqlite":
        with sqlite3.connect(sqlite_path(url)) as conn:
            conn.execute(
                "CREATE TABLE llmswitch_schema_version (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
            )
            for m in SQLITE_MIGRATIONS[:2]:
                for statement in m.statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO llmswitch_schema_version VALUES (?, ?, 'then')", (m.version, m.name))
        return

    async def postgres() -> None:
        dsn, _, schema = url.partition("?schema=")
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'CREATE SCHEMA "{schema}"')
            await conn.execute(f'SET search_path TO "{schema}"')
            await conn.execute(
                "CREATE TABLE llmswitch_schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            for m in POSTGRES_MIGRATIONS[:2]:
                for statement in m.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO llmswitch_schema_version (version, name) VALUES ($1, $2)", m.version, m.name
                )
        finally:
            await conn.close()

    asyncio.run(postgres())
