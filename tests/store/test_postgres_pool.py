"""The PostgreSQL store's pool gives connections back without a reset query: nothing it does leaves
session state behind, and a call cut short mid-transaction leaves a connection fit for the next."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from llmswitch.store import KeyRecord, SpendRecord, generate_key, open_store
from llmswitch.store.postgres import PostgresStore

# one connection: every call below runs on it, so what one leaves behind the next would meet
_ONE = "&connection_limit=1"


async def _session_state(store: PostgresStore) -> dict[str, object]:
    async with store._connection() as conn:
        return {
            "advisory locks": await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            ),
            "channels": await conn.fetch("SELECT pg_listening_channels()"),
            "cursors": await conn.fetchval("SELECT count(*) FROM pg_cursors WHERE name <> ''"),
            # settings SET in the session away from what a new connection has (startup settings, like
            # search_path, are the 'client's; asyncpg sets jit off and back around its type look-ups)
            "settings": [
                r[0]
                for r in await conn.fetch(
                    "SELECT name FROM pg_settings WHERE source = 'session' AND setting IS DISTINCT FROM reset_val"
                )
            ],
            "in transaction": conn.is_in_transaction(),
        }


@asynccontextmanager
async def _one_connection_store(url: str) -> AsyncIterator[PostgresStore]:
    store = open_store(url + _ONE)
    assert isinstance(store, PostgresStore)
    await store.migrate()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


_CLEAN = {"advisory locks": 0, "channels": [], "cursors": 0, "settings": [], "in transaction": False}


def test_the_stores_calls_leave_no_session_state_on_a_pooled_connection(postgres_url: str) -> None:
    async def main() -> None:
        async with _one_connection_store(postgres_url) as store:
            rec = KeyRecord.for_key(generate_key(), budget_duration="1d", max_budget=5.0)
            await store.create_key(rec)
            await store.add_key_spend(rec.token_hash, 0.25)
            await store.insert_spend_logs([SpendRecord(request_id="r1", key_hash=rec.token_hash, cost=0.5)])
            await store.keys_changed_since(0)
            await store.list_spend_logs(key_hash=rec.token_hash)
            await store.spend_since("key_hash", rec.token_hash, datetime.now(UTC) - timedelta(days=1))
            await store.reset_budgets(datetime.now(UTC) + timedelta(days=2))
            await store.delete_keys([rec.token_hash])
            assert await _session_state(store) == _CLEAN

    asyncio.run(main())


def test_a_call_cancelled_inside_its_transaction_leaves_the_connection_usable(postgres_url: str) -> None:
    async def main() -> None:
        async with _one_connection_store(postgres_url) as store:
            blocker = await asyncpg.connect(postgres_url.split("?")[0], server_settings={"search_path": store.schema})
            try:
                rec = KeyRecord.for_key(generate_key())
                await store.create_key(rec)
                # another session holds the keys' change counter: the store's call waits inside its transaction
                blocking = blocker.transaction()
                await blocking.start()
                await blocker.execute("UPDATE llmswitch_change_counters SET value = value WHERE name = 'keys'")
                call = asyncio.create_task(store.add_key_spend(rec.token_hash, 1.0))
                await asyncio.sleep(0.3)
                assert not call.done()
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
                await blocking.rollback()
                # the one connection is back in the pool, its transaction rolled back: nothing was added
                assert await _session_state(store) == _CLEAN
                assert await store.add_key_spend(rec.token_hash, 2.0) == 2.0
            finally:
                await blocker.close()

    asyncio.run(main())
