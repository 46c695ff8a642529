"""The Redis limits backend's pipelined calls: written as made without waiting for earlier answers,
queued (settlements first) only while connecting, and a settlement whose answer was lost replayed
exactly once.

Real Redis: the shared one for the write order and the replay check, a redis-server of the test's own
(frozen with SIGSTOP, never the shared one) for a settlement written with an admission and then cut.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from limits_helpers import REDIS_URL, FakeClock, RedisProcess, back_from_frozen
from test_fallback import Monotonic, fallback_limiter

from llmswitch.cache.backends.resp import parse_reply
from llmswitch.limits import LimiterUnavailableError, Reservation, SubjectLimits
from llmswitch.limits.money import to_nanos
from llmswitch.limits.redis_limiter import RedisLimiter
from llmswitch.limits.redis_pipe import ScriptPipe

KEY = SubjectLimits("key:a", rpm_limit=1000, tpm_limit=100_000, max_budget=1.0)


def record_writes(pipe: ScriptPipe) -> list[tuple[int, list[bytes]]]:
    """Wrap the live connection's writes: each entry is one write, as how many calls were then still
    waiting for an answer and the script SHAs (or command names) it carried."""
    lean = pipe._lean
    assert lean is not None
    proto = lean.live()
    assert proto is not None
    writes: list[tuple[int, list[bytes]]] = []
    original = proto.send_many

    def send_many(data: bytes, waiters: list[asyncio.Future[Any]]) -> bool:
        commands, at = [], 0
        while at < len(data):
            found = parse_reply(data[at:])  # a command is written as an array of bulk strings
            assert found is not None
            commands.append(found[0][1] if found[0][0] == b"EVALSHA" else found[0][0])  # a script by its SHA
            at += found[1]
        writes.append((len(proto.waiting), commands))
        return original(data, waiters)

    proto.send_many = send_many  # type: ignore[method-assign]
    return writes


def test_a_settlement_goes_out_before_the_next_admission_without_waiting_for_its_answer(prefix: str) -> None:
    async def body() -> None:
        async with RedisLimiter(REDIS_URL, prefix=prefix, clock=FakeClock(), timeout_s=2, deadline_s=5) as limiter:
            pipe = limiter._pipe
            assert pipe is not None
            first = await limiter.admit([KEY], tokens=100, cost=0.6)
            assert isinstance(first, Reservation)
            writes = record_writes(pipe)
            # the next request is admitted while the first one's settlement is on its way: without the
            # settlement first, the budget (0.6 reserved of 1.0) would refuse 0.5 more
            _, second = await asyncio.gather(
                limiter.settle(first, 0.2, actual_tokens=50), limiter.admit([KEY], tokens=100, cost=0.5)
            )
            assert isinstance(second, Reservation)
            settle, admit = limiter._settle_script.sha.encode(), limiter._admit_script.sha.encode()
            assert writes == [(0, [settle]), (1, [admit])]  # one round trip for both
            state = await limiter.budget("key:a")
            assert state is not None and state.spent == 0.2 and state.reserved == 0.5

    asyncio.run(body())


def test_many_settlements_are_pipelined(prefix: str) -> None:
    async def body() -> None:
        async with RedisLimiter(REDIS_URL, prefix=prefix, clock=FakeClock(), timeout_s=2, deadline_s=5) as limiter:
            pipe = limiter._pipe
            assert pipe is not None
            held = [await limiter.admit([KEY], tokens=10, cost=0.01) for _ in range(20)]
            writes = record_writes(pipe)
            await asyncio.gather(*(limiter.settle(res, 0.01) for res in held if isinstance(res, Reservation)))
            assert [waiting for waiting, _ in writes] == list(range(20))  # none waited for another's answer
            state = await limiter.budget("key:a")
            assert state is not None and state.spent == pytest.approx(0.2) and state.reserved == 0.0

    asyncio.run(body())


def test_calls_made_while_connecting_go_out_together_settlements_first(prefix: str) -> None:
    async def body() -> None:
        async with RedisLimiter(REDIS_URL, prefix=prefix, clock=FakeClock(), timeout_s=2, deadline_s=5) as limiter:
            pipe = limiter._pipe
            assert pipe is not None
            admit = pipe.call(limiter._renew_script.evalsha([], ["1", "2", "a"]))
            settle = pipe.call(limiter._renew_script.evalsha([], ["1", "2", "s"]), first=True)
            gone = pipe.call(limiter._renew_script.evalsha([], ["1", "2", "g"]))
            gone.cancel()  # its caller gave up before it was written: it never is
            order: list[str] = []
            settle.add_done_callback(lambda _: order.append("settle"))
            admit.add_done_callback(lambda _: order.append("admit"))
            assert await admit == b"ok" and await settle == b"ok"
            assert order == ["settle", "admit"]
            lean = pipe._lean
            assert lean is not None
            proto = lean.live()
            assert proto is not None and not proto.waiting

    asyncio.run(body())


def test_a_replayed_settlement_that_was_already_done_is_not_charged_again(prefix: str) -> None:
    clock = FakeClock()

    async def body() -> None:
        async with RedisLimiter(REDIS_URL, prefix=prefix, clock=clock, timeout_s=2, deadline_s=5) as limiter:
            done = await limiter.admit([KEY], tokens=100, cost=0.5)
            lost = await limiter.admit([KEY], tokens=100, cost=0.1)
            assert isinstance(done, Reservation) and isinstance(lost, Reservation)
            at = limiter.now_us()
            # done in Redis, its answer lost (the fallback then keeps it for replay): the replay is a no-op
            await limiter.settle(done, 0.3)
            clock.advance(10)
            await limiter._replay_settle(done, to_nanos(0.3), None, at, limiter.now_us())
            # never reached Redis: the replay is what charges it, once
            lost._done = True
            await limiter._replay_settle(lost, to_nanos(0.05), None, at, limiter.now_us())
            await limiter._replay_settle(lost, to_nanos(0.05), None, at, limiter.now_us())
            state = await limiter.budget("key:a")
            assert state is not None and state.spent == pytest.approx(0.35) and state.reserved == 0.0

    asyncio.run(body())


def test_a_replay_after_the_lease_could_have_expired_is_charged_as_before(prefix: str) -> None:
    clock = FakeClock()

    async def body() -> None:
        async with RedisLimiter(
            REDIS_URL, prefix=prefix, clock=clock, timeout_s=2, deadline_s=5, lease_ttl_s=60
        ) as limiter:
            res = await limiter.admit([KEY], cost=0.4)
            assert isinstance(res, Reservation)
            at = limiter.now_us()
            res._done = True
            clock.advance(61)  # its reservation expired unsettled: the replay is the only charge
            await limiter._replay_settle(res, to_nanos(0.3), None, at, limiter.now_us())
            state = await limiter.budget("key:a")
            assert state is not None and state.spent == pytest.approx(0.3) and state.reserved == 0.0

    asyncio.run(body())


def test_a_settlement_written_with_an_admission_then_cut_counts_once(own_redis: RedisProcess) -> None:
    mono = Monotonic()

    async def body() -> None:
        async with fallback_limiter(own_redis.url, mono, deadline_s=0.3, timeout_s=0.1) as limiter:
            res = await limiter.admit([KEY], cost=0.5)
            assert isinstance(res, Reservation) and not limiter.degraded
            own_redis.freeze()  # takes the bytes, answers nothing until thawed
            # the settlement goes out in the same write as the next admission; both wait in vain
            settled, other = await asyncio.gather(
                limiter.settle(res, 0.3), limiter.admit([SubjectLimits("key:b", rpm_limit=5)]), return_exceptions=True
            )
            assert settled is None and isinstance(other, Reservation) and limiter.degraded
            assert limiter.deferred == 1
            # Redis now runs what it was sent: the settlement is done there, unanswered
            await back_from_frozen(own_redis, limiter, mono)  # the replay: neither lost nor charged a second time
            state = await limiter.budget("key:a")
            assert state is not None and state.spent == pytest.approx(0.3) and state.reserved == 0.0

    asyncio.run(body())


def test_an_unreachable_redis_fails_every_waiting_call(prefix: str) -> None:
    async def body() -> None:
        from limits_helpers import free_port

        async with RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", prefix=f"t{uuid.uuid4().hex}") as limiter:
            results = await asyncio.gather(
                limiter.admit([KEY], cost=0.1), limiter.admit([KEY], cost=0.1), return_exceptions=True
            )
            assert all(isinstance(r, LimiterUnavailableError) for r in results)

    asyncio.run(body())


def test_settle_soon_has_written_the_settlement_when_it_returns(redis_server: str) -> None:
    mono = Monotonic()

    async def body() -> None:
        async with fallback_limiter(redis_server, mono, deadline_s=5) as limiter:
            res = await limiter.admit([KEY], tokens=100, cost=0.5)
            assert isinstance(res, Reservation)
            primary = limiter.primary
            assert isinstance(primary, RedisLimiter) and primary._pipe is not None
            writes = record_writes(primary._pipe)
            pending = limiter.settle_soon(res, 0.25, actual_tokens=80)
            # on the wire before anything is awaited: the answer that follows cannot overtake it
            assert writes == [(0, [primary._settle_script.sha.encode()])]
            await pending
            await limiter.settle(res, 0.25)  # settled once: a second settle does nothing
            state = await limiter.budget("key:a")
            assert state is not None and state.spent == 0.25 and state.reserved == 0.0

    asyncio.run(body())


def test_settle_soon_on_a_frozen_redis_is_kept_and_replayed_once(own_redis: RedisProcess) -> None:
    mono = Monotonic()

    async def body() -> None:
        async with fallback_limiter(own_redis.url, mono, deadline_s=0.3) as limiter:
            res = await limiter.admit([KEY], cost=0.5)
            assert isinstance(res, Reservation)
            own_redis.freeze()
            await limiter.settle_soon(res, 0.3)  # written, unanswered: kept for replay, counted locally
            assert limiter.degraded and limiter.deferred == 1
            await back_from_frozen(own_redis, limiter, mono)
            state = await limiter.budget("key:a")
            assert state is not None and state.spent == pytest.approx(0.3) and state.reserved == 0.0

    asyncio.run(body())
