"""Which Redis the limiter uses: ``redis_url``, or LiteLLM's ``redis_host``/``redis_port``/``redis_password``.

    >>> redis_url_from(redis_host="cache.internal", redis_port=6380, redis_password="s3cret", env={})
    'redis://:s3cret@cache.internal:6380/0'
    >>> redis_url_from(env={"REDIS_URL": "redis://r:6379/2"})
    'redis://r:6379/2'
    >>> redis_url_from(env={}) is None
    True

Explicit arguments win; only when none is given are ``REDIS_URL``, then ``REDIS_HOST``,
``REDIS_PORT``, ``REDIS_PASSWORD`` read from the environment (the names LiteLLM reads).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote

from llmswitch.errors import ConfigError


def redis_url_from(
    redis_url: str | None = None,
    *,
    redis_host: str | None = None,
    redis_port: int | str | None = None,
    redis_password: str | None = None,
    redis_db: int | None = None,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """The Redis URL these settings name, or ``None`` if they name none (limits stay in memory)."""
    if redis_url is None and redis_host is None:
        env = os.environ if env is None else env
        redis_url = env.get("REDIS_URL") or None
        redis_host = env.get("REDIS_HOST") or None
        redis_port = redis_port if redis_port is not None else env.get("REDIS_PORT") or None
        redis_password = redis_password if redis_password is not None else env.get("REDIS_PASSWORD") or None
    if redis_url:
        return redis_url
    if not redis_host:
        return None
    try:
        port = int(redis_port) if redis_port is not None else 6379
    except ValueError as exc:
        raise ConfigError(f"redis_port must be a port number, got {redis_port!r}") from exc
    auth = f":{quote(redis_password, safe='')}@" if redis_password else ""
    host = f"[{redis_host}]" if ":" in redis_host else redis_host  # a bare IPv6 address
    return f"redis://{auth}{host}:{port}/{redis_db or 0}"
