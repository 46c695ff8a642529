"""A spend batch in PostgreSQL: a request id repeated in a batch counts once, as first given; a batch that
adds nothing moves no change counter; and the counters' locks come in the order every other writer
takes them, whichever rows a batch touches."""

from __future__ import annotations

import asyncio

from llmswitch.store import KeyRecord, SpendRecord, SubjectRecord, generate_key, open_store
from llmswitch.store.postgres import PostgresStore


def test_a_request_id_repeated_in_a_batch_counts_as_first_given(postgres_url: str) -> None:
    key = KeyRecord.for_key(generate_key())

    async def main() -> None:
        async with open_store(postgres_url) as store:
            await store.create_key(key)
            h = key.token_hash
            batch = [
                SpendRecord(request_id="same", key_hash=h, cost=0.5),
                SpendRecord(request_id="other", key_hash=h, cost=0.25),
                SpendRecord(request_id="same", key_hash=h, cost=2.0),
                SpendRecord(request_id="same", key_hash=h, cost=4.0),
            ]
            assert await store.insert_spend_logs(batch) == 2
            rec = await store.get_key(h)
            assert rec is not None and rec.spend == 0.75
            [same] = await store.list_spend_logs(request_id="same")
            assert same.cost == 0.5

    asyncio.run(main())


def test_a_batch_that_adds_nothing_moves_no_change_counter(postgres_url: str) -> None:
    key = KeyRecord.for_key(generate_key(), user_id="alice")

    async def counters(store: PostgresStore) -> dict[str, int]:
        async with store._connection() as conn:
            return dict(await conn.fetch("SELECT name, value FROM llmswitch_change_counters"))

    async def main() -> None:
        async with open_store(postgres_url) as store:
            assert isinstance(store, PostgresStore)
            await store.create_key(key)
            await store.create_subject(SubjectRecord(kind="user", id="alice"))
            h = key.token_hash
            assert await store.insert_spend_logs([SpendRecord(request_id="r1", key_hash=h, cost=1.0)]) == 1
            before = await counters(store)
            unpriced = SpendRecord(request_id="r2", key_hash=h, user_id="alice", cost=None)
            free = SpendRecord(request_id="r3", key_hash=h, user_id="alice", cost=0.0)
            replay = SpendRecord(request_id="r1", key_hash=h, user_id="alice", cost=1.0)
            assert await store.insert_spend_logs([unpriced, free, replay]) == 2
            assert await counters(store) == before
            with_user = SpendRecord(request_id="r4", user_id="alice", cost=1.0)  # no key: only the users' counter
            assert await store.insert_spend_logs([with_user]) == 1
            after = await counters(store)
            assert after["keys"] == before["keys"] and after["subjects"] == before["subjects"] + 1

    asyncio.run(main())


def test_batches_for_a_deleted_key_beside_other_writers_never_deadlock(postgres_url: str) -> None:
    """A batch whose key is gone still bumps the keys' counter, before the subjects' one: batches for it
    and for a live key, from two pools at once, beside admin writes that take one counter each, all end."""
    live = KeyRecord.for_key(generate_key(), user_id="alice", team_id="research")
    gone = KeyRecord.for_key(generate_key(), user_id="alice", team_id="research")

    async def main() -> None:
        async with open_store(postgres_url) as one, open_store(postgres_url) as two:
            await one.create_key(live)
            await one.create_key(gone)
            await one.create_subject(SubjectRecord(kind="user", id="alice"))
            await one.create_subject(SubjectRecord(kind="team", id="research"))
            assert await one.delete_keys([gone.token_hash]) == 1
            writes = []
            for i in range(60):
                store = (one, two)[i % 2]
                key = (live, gone)[(i // 2) % 2]
                rec = SpendRecord(
                    request_id=f"r{i}", key_hash=key.token_hash, user_id="alice", team_id="research", cost=0.5
                )
                writes.append(store.insert_spend_logs([rec]))
                if i % 3 == 0:
                    writes.append(store.update_key(live.token_hash, tpm_limit=i))
                    writes.append((two, one)[i % 2].add_subject_spend("team", "research", 0.25))
            await asyncio.wait_for(asyncio.gather(*writes), timeout=60)
            rec = await one.get_key(live.token_hash)
            assert rec is not None and rec.spend == 0.5 * 30
            team = await one.get_subject("team", "research")
            user = await one.get_subject("user", "alice")
            assert team is not None and team.spend == 0.5 * 60 + 0.25 * 20
            assert user is not None and user.spend == 0.5 * 60

    asyncio.run(main())
