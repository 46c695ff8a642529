"""Fixtures for the cache's tests: keys under a namespace of the test's own on the real Redis, and a
redis-server of the test's own (see redis_servers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from redis_servers import REDIS_URL, OwnRedis


@pytest.fixture
def namespace() -> Iterator[str]:
    """A key namespace no other test uses; its keys are removed after the test."""
    ns = f"test-{uuid.uuid4().hex[:12]}"
    yield ns
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=f"{ns}:*"):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    yield server
    server.stop()
