"""Choosing and configuring a backend by name, from settings or the environment."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from llmswitch.errors import ConfigError
from llmswitch.limits import Limiter, SubjectLimits, open_limiter, redis_url_from, register_backend
from llmswitch.limits.fallback import FallbackLimiter
from llmswitch.limits.memory import MemoryLimiter
from llmswitch.limits.redis_limiter import RedisLimiter
from llmswitch.store import KeyRecord


@pytest.mark.parametrize(
    ("kwargs", "env", "url"),
    [
        ({}, {}, None),
        ({"redis_url": "redis://r:6379/1"}, {"REDIS_URL": "redis://other/0"}, "redis://r:6379/1"),
        ({}, {"REDIS_URL": "rediss://r:6380/0"}, "rediss://r:6380/0"),
        (
            {},
            {"REDIS_HOST": "cache", "REDIS_PORT": "6380", "REDIS_PASSWORD": "p@ss/word"},
            "redis://:p%40ss%2Fword@cache:6380/0",
        ),
        ({"redis_host": "cache", "redis_db": 3}, {"REDIS_URL": "redis://ignored/0"}, "redis://cache:6379/3"),
        ({"redis_host": "::1", "redis_port": 7000}, {}, "redis://[::1]:7000/0"),
    ],
)
def test_redis_url_from_settings_or_environment(
    kwargs: dict[str, object], env: dict[str, str], url: str | None
) -> None:
    assert redis_url_from(env=env, **kwargs) == url  # type: ignore[arg-type]


def test_a_bad_port_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="redis_port"):
        redis_url_from(redis_host="cache", redis_port="http", env={})


def test_no_redis_means_memory() -> None:
    assert isinstance(open_limiter(env={}), MemoryLimiter)


def test_redis_settings_mean_redis_with_fallback() -> None:
    limiter = open_limiter(redis_url="redis://127.0.0.1:1/0", env={})
    assert isinstance(limiter, FallbackLimiter)
    assert isinstance(limiter.primary, RedisLimiter) and isinstance(limiter.local, MemoryLimiter)
    asyncio.run(limiter.aclose())  # never connected


def test_fallback_can_be_turned_off() -> None:
    limiter = open_limiter(redis_url="redis://127.0.0.1:1/0", fallback=False)
    assert isinstance(limiter, RedisLimiter) and limiter.url == "redis://127.0.0.1:1/0"
    asyncio.run(limiter.aclose())


def test_the_backend_can_be_forced_to_memory() -> None:
    assert isinstance(open_limiter("memory", redis_url="redis://127.0.0.1:1/0"), MemoryLimiter)


def test_redis_without_a_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="needs redis_url"):
        open_limiter("redis", env={})


def test_unknown_backends_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown limits backend 'etcd'; known: memory, redis"):
        open_limiter("etcd")


def test_third_party_backends_register_by_name() -> None:
    made: list[str | None] = []

    def factory(url: str | None, **options: object) -> Limiter:
        made.append(url)
        return MemoryLimiter()

    register_backend("custom-test", factory)
    assert isinstance(open_limiter("custom-test", redis_url="redis://x/0"), MemoryLimiter)
    assert made == ["redis://x/0"]


def test_the_password_is_masked_in_the_limiter_url() -> None:
    limiter = RedisLimiter("redis://:s3cret@cache:6379/0")
    assert limiter.url == "redis://:***@cache:6379/0"
    asyncio.run(limiter.aclose())


def test_redis_py_is_imported_only_when_redis_is_opened() -> None:
    code = (
        "import sys, asyncio\n"
        "from llmswitch.limits import open_limiter, SubjectLimits\n"
        "lim = open_limiter(env={})\n"
        "asyncio.run(lim.check_and_consume([SubjectLimits('k', rpm_limit=1)]))\n"
        "assert 'redis' not in sys.modules, 'redis imported'\n"
        "import llmswitch\n"
        "assert 'llmswitch.limits.memory' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_subject_limits_of_a_key_record() -> None:
    rec = KeyRecord.for_key(
        "sk-" + "k" * 30, rpm_limit=60, tpm_limit=1000, max_parallel_requests=2, max_budget=5.0, budget_duration="30d"
    )
    limits = SubjectLimits.for_key(rec)
    assert limits.subject == f"key:{rec.token_hash}"
    assert (limits.rpm_limit, limits.tpm_limit, limits.max_parallel_requests, limits.max_budget) == (60, 1000, 2, 5.0)
    assert limits.budget_period is not None and limits.budget_period.duration == "30d"
    assert SubjectLimits.for_key(KeyRecord.for_key("sk-" + "j" * 30)).budget_period is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"subject": ""}, "non-empty string"),
        ({"rpm_limit": -1}, "rpm_limit of k must be a non-negative integer"),
        ({"tpm_limit": 1.5}, "tpm_limit of k must be a non-negative integer"),
        ({"max_parallel_requests": True}, "max_parallel_requests"),
        ({"max_budget": float("nan")}, "max_budget of k must be a finite number"),
        ({"max_budget": -2}, "max_budget"),
    ],
)
def test_invalid_limits_are_config_errors(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SubjectLimits(**{"subject": "k", **fields})  # type: ignore[arg-type]


def test_invalid_lease_ttl_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="lease_ttl_s"):
        MemoryLimiter(lease_ttl_s=0)
