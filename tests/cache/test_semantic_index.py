"""The semantic index as the exact cache calls it: build_semantic, lookup, add, aclose.

The local model is real; Redis is the real server at LLMSWITCH_TEST_REDIS_URL (default
127.0.0.1:6379), each test under a key namespace of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import redis

from llmswitch.cache.semantic import SemanticIndex, build_semantic
from llmswitch.cache.semantic.local_model import LocalEmbedder
from llmswitch.errors import ConfigError

REDIS_URL = os.environ.get("LLMSWITCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def local_embed() -> LocalEmbedder:
    return LocalEmbedder.load()


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"test-semantic-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); .ci/run starts it")
    yield name
    for key in client.scan_iter(match=f"{name}:llmswitch:semantic:*"):
        client.delete(key)
    client.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_paraphrase_hits_and_a_swap_another_scope_or_question_miss() -> None:
    async def run() -> None:
        index = build_semantic({"similarity_threshold": 0.9}, embed=None, redis_url=None)
        try:
            await index.add("team-a|cached", "Which flights go from Paris to NYC on Monday?", "k-flights")
            await index.add("team-a|cached", "What is the capital of France?", "k-capital")
            assert await index.lookup("team-a|cached", "which flights go from paris to nyc on monday") == "k-flights"
            assert await index.lookup("team-a|cached", "What's the capital of France") == "k-capital"
            assert await index.lookup("team-a|cached", "Which flights go from NYC to Paris on Monday?") is None
            assert await index.lookup("team-a|cached", "Which flights go from Paris to NYC on Tuesday?") is None
            assert await index.lookup("team-b|cached", "What is the capital of France?") is None
            assert await index.lookup("team-a|cached", "How tall is Mount Everest?") is None
        finally:
            await index.aclose()

    asyncio.run(run())


def test_entries_expire_after_ttl(local_embed: LocalEmbedder) -> None:
    clock = Clock()
    index = SemanticIndex(local_embed.embed, threshold=0.9, ttl=60, max_entries=100, clock=clock)

    async def run() -> None:
        await index.add("s", "What is the capital of France?", "k1")
        clock.now += 59
        assert await index.lookup("s", "what is the capital of france") == "k1"
        clock.now += 2
        assert await index.lookup("s", "what is the capital of france") is None
        assert len(index.table) == 0

    asyncio.run(run())


def test_the_index_holds_at_most_max_entries(local_embed: LocalEmbedder) -> None:
    index = SemanticIndex(local_embed.embed, threshold=0.9, ttl=None, max_entries=2)

    async def run() -> None:
        for n, city in enumerate(["Paris", "Rome", "Oslo"]):
            await index.add("s", f"What is the population of {city}?", f"k{n}")
        assert len(index.table) == 2
        assert await index.lookup("s", "what is the population of paris") is None
        assert await index.lookup("s", "what is the population of oslo") == "k2"

    asyncio.run(run())


def bag_embed_calls() -> tuple[list[list[str]], object]:
    """An embedding deployment stand-in: a bag-of-words hash, order-blind like the real ones."""
    calls: list[list[str]] = []

    async def embed(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        out = []
        for text in texts:
            v = [0.0] * 64
            for word in text.lower().replace("?", " ").split():
                v[hashlib.sha256(word.encode()).digest()[0] % 64] += 3.0  # unnormalised on purpose
            out.append(v)
        return out

    return calls, embed


def test_a_remote_embedding_is_normalised_and_the_guard_still_decides() -> None:
    calls, embed = bag_embed_calls()

    async def run() -> None:
        index = build_semantic({"similarity_threshold": 0.95}, embed=embed, redis_url=None)  # type: ignore[arg-type]
        try:
            assert await index.lookup("s", "is 5 greater than 3") is None
            assert calls == []  # an empty scope is a miss without an embedding call
            await index.add("s", "is 5 greater than 3", "k1")
            embedded = len(calls)
            # words no cached question has: a miss without an embedding call
            assert await index.lookup("s", "is 5 smaller than 3") is None
            assert len(calls) == embedded
            assert await index.lookup("s", "Is 5 greater than 3?") == "k1"
            assert len(calls) == embedded + 1
            # cosine 1.0 for the same bag of words; the order check refuses it
            assert await index.lookup("s", "is 3 greater than 5") is None
        finally:
            await index.aclose()

    asyncio.run(run())


def test_an_embedding_failure_or_timeout_is_a_miss_not_an_error() -> None:
    async def failing(texts: list[str]) -> list[list[float]]:
        raise ConnectionError("embedding deployment down")

    async def hanging(texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(30)
        return []

    async def run() -> None:
        index = SemanticIndex(failing, threshold=0.9, ttl=None, max_entries=10)
        await index.add("s", "anything", "k")
        assert len(index.table) == 0
        index.table.add("s", "anything", "k", _unit(), float("inf"))
        assert await index.lookup("s", "anything") is None

        slow = SemanticIndex(hanging, threshold=0.9, ttl=None, max_entries=10, embed_timeout=0.2)
        slow.table.add("s", "anything", "k", _unit(), float("inf"))
        started = time.monotonic()
        assert await slow.lookup("s", "anything") is None
        assert time.monotonic() - started < 2

    asyncio.run(run())


def _unit() -> np.ndarray:
    v = np.zeros(384, dtype=np.float32)
    v[0] = 1.0
    return v


@pytest.mark.parametrize(
    "params",
    [
        {"similarity_threshold": 1.5},
        {"similarity_threshold": "high"},
        {"ttl": 0},
        {"max_vectors": 0},
        {"max_vectors": 2.5},
        {"max_entries": "many"},
    ],
)
def test_build_semantic_refuses_bad_params(params: dict[str, object]) -> None:
    _calls, embed = bag_embed_calls()
    with pytest.raises(ConfigError, match="cache_params"):
        build_semantic(params, embed=embed, redis_url=None)  # type: ignore[arg-type]


def test_processes_share_entries_through_redis(namespace: str) -> None:
    params = {"type": "redis-semantic", "namespace": namespace, "ttl": 600, "max_vectors": 3}

    async def run() -> None:
        first = build_semantic(params, embed=None, redis_url=REDIS_URL)
        second = build_semantic(params, embed=None, redis_url=REDIS_URL)
        other = build_semantic({**params, "namespace": namespace + "-other"}, embed=None, redis_url=REDIS_URL)
        try:
            assert await first.wait_ready(5)
            assert await second.wait_ready(5)
            assert await other.wait_ready(5)
            await first.add("s", "What is the boiling point of water at sea level?", "k-water")
            for _ in range(100):
                if len(second.table):
                    break
                await asyncio.sleep(0.02)
            assert await second.lookup("s", "what's the boiling point of water at sea level") == "k-water"
            assert await second.lookup("s", "What is the freezing point of water at sea level?") is None
            assert await other.lookup("s", "What is the boiling point of water at sea level?") is None

            # a process started later loads what is there; the shared log is bounded like the tables
            for n, city in enumerate(["Paris", "Rome", "Oslo", "Lima"]):
                await second.add("s", f"What is the population of {city}?", f"k{n}")
            late = build_semantic(params, embed=None, redis_url=REDIS_URL)
            try:
                assert await late.wait_ready(5)
                assert len(late.table) == 3
                assert await late.lookup("s", "what is the population of lima") == "k3"
                assert await late.lookup("s", "What is the boiling point of water at sea level?") is None
            finally:
                await late.aclose()
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{namespace}:llmswitch:semantic:*"))
            assert len(keys) == 1
            assert client.xlen(keys[0]) == 3
            assert 0 < client.pttl(keys[0]) <= 600_000
            client.close()
        finally:
            for index in (first, second, other):
                await index.aclose()

    asyncio.run(run())


def test_redis_away_costs_no_request(local_embed: LocalEmbedder) -> None:
    # nothing listens on port 9: appends fail fast, lookups never touch Redis
    index = SemanticIndex(local_embed.embed, threshold=0.9, ttl=60, max_entries=10, redis_url="redis://127.0.0.1:9/0")

    async def run() -> None:
        try:
            assert not await index.wait_ready(0.3)
            started = time.monotonic()
            await index.add("s", "What is the capital of France?", "k1")
            assert await index.lookup("s", "what is the capital of france") == "k1"
            assert time.monotonic() - started < 2
        finally:
            await index.aclose()

    asyncio.run(run())


@pytest.mark.parametrize(
    ("params", "max_entries", "ttl"),
    [
        ({}, 10_000, 86_400.0),
        ({"max_entries": 5, "default_in_memory_ttl": 30}, 5, 30.0),
        ({"max_vectors": 7, "max_entries": 5, "ttl": "60", "default_in_memory_ttl": 30}, 7, 60.0),
    ],
)
def test_build_semantic_reads_the_cache_params_it_shares_with_the_exact_cache(
    params: dict[str, object], max_entries: int, ttl: float
) -> None:
    _calls, embed = bag_embed_calls()
    index = build_semantic(params, embed=embed, redis_url=None)  # type: ignore[arg-type]
    assert (index.table.max_entries, index.ttl, index.threshold) == (max_entries, ttl, 0.9)


def test_a_local_model_that_cannot_load_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="local model"):
        build_semantic({"local_model": "/nonexistent/model.onnx"}, embed=None, redis_url=None)


def test_a_shared_index_keeps_following_redis_across_event_loops(namespace: str) -> None:
    # sync code may call asyncio.run per request: each run is a new loop, the index outlives them
    params = {"namespace": namespace, "ttl": 600}
    index = build_semantic(params, embed=None, redis_url=REDIS_URL)
    watcher = build_semantic(params, embed=None, redis_url=REDIS_URL)

    async def add(query: str, key: str) -> None:
        assert await index.wait_ready(5)
        await index.add("s", query, key)

    async def seen_by_watcher(query: str) -> str | None:
        assert await watcher.wait_ready(5)
        for _ in range(100):
            found = await watcher.lookup("s", query)
            if found is not None:
                return found
            await asyncio.sleep(0.02)
        return None

    asyncio.run(add("What is the speed of light in a vacuum?", "k1"))
    asyncio.run(add("How many moons does Jupiter have?", "k2"))  # a new loop: new connections
    assert asyncio.run(seen_by_watcher("how many moons does jupiter have")) == "k2"
    assert asyncio.run(seen_by_watcher("what's the speed of light in a vacuum")) == "k1"
    client = redis.Redis.from_url(REDIS_URL)
    (key,) = client.scan_iter(match=f"{namespace}:llmswitch:semantic:*")
    assert client.xlen(key) == 2
    client.close()
    asyncio.run(index.aclose())
    asyncio.run(watcher.aclose())


def test_questions_longer_than_the_limit_are_left_to_the_exact_cache() -> None:
    from llmswitch.cache.semantic.index import MAX_QUERY_CHARS

    calls, embed = bag_embed_calls()
    long = "why " * (MAX_QUERY_CHARS // 4 + 1)

    async def run() -> None:
        index = build_semantic({}, embed=embed, redis_url=None)  # type: ignore[arg-type]
        await index.add("s", long, "k")
        assert await index.lookup("s", long) is None
        assert calls == [] and len(index.table) == 0
        await index.aclose()

    asyncio.run(run())
