"""Before the gateway serves: what its config needs is installed and reachable.

``llmswitch serve`` runs this once, in the parent process, before it forks a worker or says "serving on":
a missing optional dependency, an unreachable or missing database is one clear line and a non-zero exit,
not a traceback in every worker restarted in a loop. ``llmswitch config check`` reports the same missing
extras as errors.

    >>> needs = backends_of(cfg)                     # doctest: +SKIP
    >>> missing_extras(needs)                        # doctest: +SKIP
    ["database_url names PostgreSQL, which needs asyncpg: pip install 'llmswitch[postgres]'"]
    >>> asyncio.run(reach_backends(needs))          # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmswitch.errors import ConfigError
from llmswitch.limits.urls import redis_url_from
from llmswitch.store.urls import mask_url, url_scheme

log = logging.getLogger("llmswitch.server")

DEFAULT_STORE_URL = "sqlite:///llmswitch.db"
REDIS_TIMEOUT_S = 5.0
# exit codes: the caller's configuration or install (as for an invalid config), or the start-up failed
# (the same code a failed application start-up exits with)
EXIT_CONFIG = 2
EXIT_STARTUP = 3


class StartupError(Exception):
    """The gateway cannot start; ``str()`` is the one line to show, ``exit_code`` the process's code."""

    def __init__(self, message: str, exit_code: int = EXIT_STARTUP) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Backends:
    """What a gateway built from a config opens: its store and its Redis (``None``: none)."""

    store_url: str | None
    redis_url: str | None


def backends_of(cfg: Any, env: Mapping[str, str] | None = None) -> Backends:
    """The store and Redis the gateway of ``cfg`` uses: both only with a master key (without one there are
    no virtual keys to store nor limits to share); Redis from the config or ``REDIS_URL``/``REDIS_HOST``."""
    srv = cfg.server
    if not srv.master_key:
        return Backends(None, None)
    rs = cfg.router
    redis_url = redis_url_from(
        rs.redis_url,
        redis_host=rs.redis_host,
        redis_port=rs.redis_port,
        redis_password=rs.redis_password,
        redis_db=rs.redis_db,
        env=env,
    )
    return Backends(srv.database_url or srv.store_path or DEFAULT_STORE_URL, redis_url)


def missing_extras(needs: Backends) -> list[str]:
    """One line per optional dependency ``needs`` requires and this install lacks, naming the extra."""
    out = []
    if needs.store_url and url_scheme(needs.store_url) in ("postgresql", "postgres") and not _importable("asyncpg"):
        out.append("database_url names PostgreSQL, which needs asyncpg: pip install 'llmswitch[postgres]'")
    if needs.redis_url and not _importable("redis"):
        out.append(
            "Redis is configured (router_settings.redis_* or REDIS_URL/REDIS_HOST), which needs redis-py: "
            "pip install 'llmswitch[redis]'"
        )
    return out


def _importable(module: str) -> bool:
    # imported, not looked up: a module that is there but fails to import is as missing
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


async def reach_backends(needs: Backends, *, require_shared: bool = False) -> None:
    """Open the store (creating a missing PostgreSQL database when the role may) and migrate it, then ping
    Redis. A store that cannot be opened is a :class:`StartupError`; Redis that does not answer is only a
    warning, since the limits degrade to per-process ones until it does. With ``require_shared`` and no
    Redis, other live instances on the store are a :class:`StartupError` too (see ``instances.py``)."""
    if needs.store_url:
        await _reach_store(needs.store_url)
        if require_shared and not needs.redis_url:
            await _refuse_beside_others(needs.store_url)
    if needs.redis_url:
        await _reach_redis(needs.redis_url)


async def _reach_store(url: str) -> None:
    await migrate_store(url)


async def migrate_store(url: str) -> list[int]:
    """Open the store at ``url`` (creating a missing PostgreSQL database when the role may), apply its pending
    migrations and close it: the versions applied. A failure is a :class:`StartupError`. What
    ``llmswitch migrate`` runs, and each start-up too."""
    from llmswitch.store import DatabaseMissingError, StoreError, open_store

    try:
        store = open_store(url)
    except ConfigError as exc:
        raise StartupError(str(exc), EXIT_CONFIG) from exc
    try:
        try:
            await store.open()
        except DatabaseMissingError:
            create = getattr(store, "create_database", None)
            if create is None:
                raise
            name = await create()
            log.info("created PostgreSQL database %r at %s", name, store.url)
            await store.open()
        return await store.migrate()
    except ConfigError as exc:
        raise StartupError(str(exc), EXIT_CONFIG) from exc
    except StoreError as exc:
        raise StartupError(str(exc)) from exc
    finally:
        await store.close()


async def _refuse_beside_others(url: str) -> None:
    # said here, once, before anything listens; each serving process checks again as it starts (an
    # ASGI server running create_app() has no pre-flight)
    from llmswitch.server.instances import InstanceWatch, SharedLimitsRequired
    from llmswitch.store import open_store

    store = open_store(url)
    try:
        await store.open()
        watch = InstanceWatch(store, limits="memory", require_shared=True)
        try:
            await watch.start()
        except SharedLimitsRequired as exc:
            raise StartupError(str(exc).removeprefix("refusing to start: ")) from exc
        await watch.stop()
    finally:
        await store.close()


def migrate_command(config_path: str | None, database_url: str | None) -> int:
    """``llmswitch migrate``: the store of ``database_url``, else of the config (its ``database_url`` or
    ``store_path``), else of the environment (``DATABASE_URL``), migrated; the process's exit code."""
    import asyncio

    from llmswitch import config as cfgmod

    try:
        if database_url is None:
            cfg = cfgmod.load_config(config_path) if config_path else cfgmod.config_from_env()
            database_url = cfg.server.database_url or cfg.server.store_path or DEFAULT_STORE_URL
        missing = missing_extras(Backends(database_url, None))
        if missing:
            raise StartupError("; ".join(missing), EXIT_CONFIG)
        applied = asyncio.run(migrate_store(database_url))
    except StartupError as exc:
        log.error("migrate: %s", exc)
        return exc.exit_code
    except ConfigError as exc:
        log.error("migrate: %s", exc)
        return EXIT_CONFIG
    if applied:
        log.info("migrate: applied version%s %s to %s", "s" * (len(applied) > 1), applied, mask_url(database_url))
    else:
        log.info("migrate: %s is up to date", mask_url(database_url))
    return 0


async def _reach_redis(url: str) -> None:
    from redis.asyncio import Redis
    from redis.exceptions import AuthenticationError, RedisError, ResponseError

    masked = mask_url(url)
    try:
        client = Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S, retry_on_timeout=False
        )
    except ValueError as exc:
        raise StartupError(f"invalid Redis URL {masked!r}: {exc}", EXIT_CONFIG) from exc
    try:
        await client.ping()
    except (AuthenticationError, ResponseError) as exc:
        # it answered, and said no: a wrong password or database is not an outage to ride out
        raise StartupError(f"Redis at {masked} refused the connection: {exc}") from exc
    except (RedisError, OSError) as exc:
        log.warning(
            "Redis at %s does not answer (%s): starting with limits counted in each process until it does", masked, exc
        )
    finally:
        await client.aclose()
