"""Running the gateway: build it from a config, serve it with uvicorn, one or several workers.

``llmswitch serve`` calls :func:`run`. Several workers are separate processes sharing the listening
socket (uvicorn's supervisor), each building its gateway from the same config file, named to them
through the environment. SIGTERM stops accepting, lets in-flight requests and streams finish for a
grace period, then exits.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from llmswitch.router.router import Router
from llmswitch.server.accounting import Accounting, spend_loader_for
from llmswitch.server.app import DEFAULT_MAX_BODY, Gateway

log = logging.getLogger("llmswitch.server")

ENV_CONFIG = "LLMSWITCH_CONFIG"
ENV_DEMO = "LLMSWITCH_DEMO_UPSTREAM"


def build_gateway(cfg: Any) -> Gateway:
    """A gateway for a loaded :class:`llmswitch.config.GatewayConfig`."""
    rs = cfg.router
    srv = cfg.server
    # every router setting of the config (strategy, retries, breaker, fallbacks, aliases...) goes in as is
    router = Router.from_config(cfg)
    on_startup: list[Any] = []
    on_shutdown: list[Any] = []
    # LiteLLM's general_settings.background_health_checks / health_check_interval
    if srv.background_health_checks:
        interval = srv.health_check_interval or 300.0
        on_startup.append(lambda: router.start_health_checks(float(interval)))
        on_shutdown.append(router.stop_health_checks)
    store = None
    if srv.master_key:
        from llmswitch.store import open_store

        store = open_store(srv.database_url or srv.store_path or "sqlite:///llmswitch.db")
    return Gateway(
        router=router,
        master_key=srv.master_key,
        store=store,
        accounting=_accounting(cfg, store),
        max_body_bytes=srv.max_request_body_size or DEFAULT_MAX_BODY,
        request_timeout=rs.request_timeout if rs.request_timeout is not None else 600.0,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


def _accounting(cfg: Any, store: Any) -> Accounting:
    """Limits (memory, or Redis when the config or REDIS_URL names one) and the spend journal."""
    from llmswitch.limits import open_limiter

    rs = cfg.router
    limiter = None
    if store is not None:
        limiter = open_limiter(
            redis_url=rs.redis_url,
            redis_host=rs.redis_host,
            redis_port=rs.redis_port,
            redis_password=rs.redis_password,
            redis_db=rs.redis_db,
            spend_loader=spend_loader_for(store),
        )
    return Accounting(
        limiter=limiter,
        store=store,
        journal_dir=_journal_dir(cfg) if store is not None else None,
        fsync=os.environ.get("LLMSWITCH_JOURNAL_FSYNC", "os"),
    )


def _journal_dir(cfg: Any) -> str:
    """Where spend records are journaled: ``LLMSWITCH_JOURNAL_DIR``, else beside the SQLite store, else
    ``./llmswitch-journal``. Each worker process writes its own subdirectory."""
    env = os.environ.get("LLMSWITCH_JOURNAL_DIR")
    if env:
        return env
    srv = cfg.server
    if not srv.database_url and srv.store_path:
        path = str(srv.store_path).removeprefix("sqlite:///").removeprefix("sqlite://")
        if path and path != ":memory:":
            return path + ".journal"
    return os.path.abspath("llmswitch-journal")


def create_app() -> Gateway:
    """The uvicorn factory: the config path comes from ``LLMSWITCH_CONFIG`` (or none: the environment)."""
    from llmswitch import config as cfgmod
    from llmswitch.server.accesslog import configure_logging

    configure_logging(os.environ.get("LLMSWITCH_LOG_LEVEL", "info"))
    demo = os.environ.get(ENV_DEMO)
    if demo:
        from llmswitch.server.demo import demo_config

        cfg = demo_config(demo)
    else:
        path = os.environ.get(ENV_CONFIG)
        cfg = cfgmod.load_config(path) if path else cfgmod.config_from_env()
    for w in cfg.warnings:
        log.warning("config: %s", w)
    gw = build_gateway(cfg)
    limiter = gw.accounting.limiter
    if int(os.environ.get("LLMSWITCH_WORKER_COUNT", "1")) > 1 and limiter is not None and limiter.name == "memory":
        log.warning(
            "several workers without Redis: each worker process counts rate limits and budgets on its own; "
            "set router_settings.redis_host (or REDIS_URL) to share them"
        )
    return gw


def run(
    *,
    config_path: str | None,
    host: str = "0.0.0.0",
    port: int = 4000,
    workers: int = 1,
    demo: bool = False,
    log_level: str = "info",
    graceful_seconds: float = 30.0,
) -> None:
    import uvicorn

    if config_path:
        os.environ[ENV_CONFIG] = os.path.abspath(config_path)
    os.environ["LLMSWITCH_LOG_LEVEL"] = log_level
    os.environ["LLMSWITCH_WORKER_COUNT"] = str(workers)
    fake = None
    if demo:
        from llmswitch.testing import FakeUpstream

        fake = FakeUpstream()
        fake.__enter__()
        os.environ[ENV_DEMO] = fake.url
        workers = 1
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal with the handler that
    # was in place before it started: make that one a clean exit, so a drained gateway exits 0
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(
            "llmswitch.server.serve:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers if workers > 1 else None,
            loop=_best_loop(),
            http=_best_http(),
            lifespan="on",
            access_log=False,
            log_level="warning",
            timeout_graceful_shutdown=int(graceful_seconds),
            proxy_headers=False,
            server_header=False,
            date_header=False,
        )
    finally:
        if fake is not None:
            fake.__exit__(None, None, None)


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _best_loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _best_http() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"
