"""max_parallel_requests: slots held while a request runs, given back when it ends or its lease expires."""

from __future__ import annotations

from limits_helpers import FakeClock, RunLimiter

from llmswitch.limits import Limiter, Refusal, Reservation, SubjectLimits, rate_limit_headers


def test_slots_are_taken_and_given_back(run_limiter: RunLimiter) -> None:
    async def body(limiter: Limiter) -> None:
        first = await limiter.acquire_slot("key:a", 2)
        second = await limiter.acquire_slot("key:a", 2)
        assert isinstance(first, Reservation) and isinstance(second, Reservation)
        third = await limiter.acquire_slot("key:a", 2)
        assert isinstance(third, Refusal)
        assert (third.which_limit.kind, third.limit, third.used) == ("max_parallel_requests", 2, 2)
        assert third.retry_after_s is None and rate_limit_headers(third.decision) == {}
        assert third.message == "Max parallel request limit reached for key:a: max_parallel_requests=2 in flight"
        await limiter.release(first)
        assert isinstance(await limiter.acquire_slot("key:a", 2), Reservation)
        await limiter.settle(second, 0.0)  # settling frees the slot too
        assert isinstance(await limiter.acquire_slot("key:a", 2), Reservation)
        assert isinstance(await limiter.acquire_slot("key:a", 2), Refusal)

    run_limiter(body)


def test_giving_a_slot_back_twice_frees_it_once(run_limiter: RunLimiter) -> None:
    async def body(limiter: Limiter) -> None:
        held = await limiter.acquire_slot("key:a", 1)
        assert isinstance(held, Reservation)
        await limiter.release(held)
        again = await limiter.acquire_slot("key:a", 1)
        await limiter.release(held)  # a second release of the first must not free the second's slot
        assert isinstance(again, Reservation) and held.settled
        assert isinstance(await limiter.acquire_slot("key:a", 1), Refusal)

    run_limiter(body)


def test_a_slot_never_given_back_expires_with_its_lease(run_limiter: RunLimiter, clock: FakeClock) -> None:
    async def body(limiter: Limiter) -> None:
        assert isinstance(await limiter.acquire_slot("key:a", 1), Reservation)  # its holder dies
        clock.advance(59.999)
        assert isinstance(await limiter.acquire_slot("key:a", 1), Refusal)
        clock.advance(0.001)
        assert isinstance(await limiter.acquire_slot("key:a", 1), Reservation)

    run_limiter(body, lease_ttl_s=60)


def test_slots_count_per_subject_and_all_must_be_free(run_limiter: RunLimiter) -> None:
    key = SubjectLimits("key:a", max_parallel_requests=5)
    user = SubjectLimits("user:u", max_parallel_requests=1)

    async def body(limiter: Limiter) -> None:
        held = await limiter.admit([key, user])
        assert isinstance(held, Reservation)
        refused = await limiter.admit([key, user])
        assert isinstance(refused, Refusal) and refused.which_limit.subject == "user:u"
        # the refused request took none of the key's slots: four more fit
        for _ in range(4):
            assert isinstance(await limiter.admit([key]), Reservation)
        assert isinstance(await limiter.admit([key]), Refusal)

    run_limiter(body)


def test_a_renewed_lease_outlives_the_ttl_and_is_given_back_at_the_end(
    run_limiter: RunLimiter, clock: FakeClock
) -> None:
    """A request running longer than the lease TTL (a long stream) keeps its slot and its budget
    reservation while it renews them; settled, it frees both at once."""
    lim = SubjectLimits("key:a", max_parallel_requests=1, max_budget=1.0)

    async def body(limiter: Limiter) -> None:
        held = await limiter.admit([lim], cost=0.6)
        assert isinstance(held, Reservation)
        for _ in range(5):  # five TTLs, renewed at half of each
            clock.advance(30)
            await limiter.renew(held)
            clock.advance(30)
            refused = await limiter.admit([lim], cost=0.1)
            assert isinstance(refused, Refusal) and refused.which_limit.kind == "max_parallel_requests"
            state = await limiter.budget("key:a")
            assert state is not None and state.reserved == 0.6
        await limiter.settle(held, 0.25)
        await limiter.renew(held)  # settled: nothing to keep, and nothing comes back
        again = await limiter.admit([lim], cost=0.1)
        assert isinstance(again, Reservation)
        state = await limiter.budget("key:a")
        assert state is not None and (state.spent, state.reserved) == (0.25, 0.1)

    run_limiter(body, lease_ttl_s=60)


def test_a_lease_not_renewed_still_expires(run_limiter: RunLimiter, clock: FakeClock) -> None:
    lim = SubjectLimits("key:a", max_parallel_requests=1)

    async def body(limiter: Limiter) -> None:
        renewed = await limiter.admit([lim])
        assert isinstance(renewed, Reservation)
        clock.advance(59)
        await limiter.renew(renewed)
        clock.advance(59)
        assert isinstance(await limiter.admit([lim]), Refusal)
        clock.advance(1)  # 60 s after the renewal: its holder stopped renewing it (it died)
        assert isinstance(await limiter.admit([lim]), Reservation)

    run_limiter(body, lease_ttl_s=60)
