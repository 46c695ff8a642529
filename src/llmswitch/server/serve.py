"""Running the gateway: build it from a config, serve it with our HTTP/1.1 server, one or several workers.

``llmswitch serve`` calls :func:`run`, which first checks what the config needs (extras installed, the
store opened and migrated, Redis answering: see ``preflight.py``), binds the listening socket, and serves it with
:class:`llmswitch.server.h1serve.Server` (uvloop + httptools; see ``h1.py``): in this process for one
worker, or in N forked worker processes, each listening on its own SO_REUSEPORT socket of the same
address (the kernel spreads connections evenly; where SO_REUSEPORT is missing they share the parent's
socket), each building its gateway from the same
config file (named to them through the environment) while this process supervises them: it forwards
SIGTERM/SIGINT, restarts a worker that dies, and gives up when workers keep failing to start.
SIGTERM stops accepting, lets in-flight requests and streams finish for a grace period, then exits 0.

The gateway is an ordinary ASGI application, so any ASGI server can run it as well, e.g.
``uvicorn --factory llmswitch.server.serve:create_app``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

from llmswitch.errors import ConfigError
from llmswitch.server.preflight import EXIT_CONFIG, StartupError, backends_of, missing_extras, reach_backends
from llmswitch.server.workers import Edge, Supervisor, listen, reserve

if TYPE_CHECKING:
    from llmswitch.server.accounting import Accounting
    from llmswitch.server.app import Gateway
    from llmswitch.server.h1limits import ServerLimits
    from llmswitch.server.tls import TLSFiles

log = logging.getLogger("llmswitch.server")

ENV_CONFIG = "LLMSWITCH_CONFIG"
ENV_DEMO = "LLMSWITCH_DEMO_UPSTREAM"


def build_gateway(cfg: Any) -> Gateway:
    """A gateway for a loaded :class:`llmswitch.config.GatewayConfig`."""
    # imported here, not at the top: `serve --workers N` forks before any of this is imported, so each
    # worker imports (and starts) its own; ids stay per process even when not (see llmswitch.procid)
    from llmswitch.router.router import Router
    from llmswitch.server.app import DEFAULT_MAX_BODY, Gateway

    rs = cfg.router
    srv = cfg.server
    if rs.ssl_verify is not None or rs.ssl_certificate is not None:
        from llmswitch import transport

        transport.configure_tls(ssl_verify=rs.ssl_verify, ssl_certificate=rs.ssl_certificate)
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
    store_url = backends_of(cfg).store_url
    if store_url:
        from llmswitch.store import open_store

        store = open_store(store_url)
    accounting = _accounting(cfg, store)
    if store is not None and accounting.limiter is not None:
        from llmswitch.server.instances import InstanceWatch, require_shared_from

        # first: an instance refusing to start does so before anything else of it runs
        watch = InstanceWatch(
            store,
            limits=accounting.limiter.name,
            require_shared=require_shared_from(srv.require_shared_limits),
        )
        on_startup.insert(0, watch.start)
        on_shutdown.append(watch.stop)
    cache = None
    if getattr(cfg, "cache", None) is not None:
        from llmswitch.cache.gateway import gateway_cache

        cache = gateway_cache(cfg.cache, router)
    return Gateway(
        router=router,
        telemetry=_telemetry(cfg),
        master_key=srv.master_key,
        store=store,
        accounting=accounting,
        max_body_bytes=srv.max_request_body_size or DEFAULT_MAX_BODY,
        request_timeout=rs.request_timeout if rs.request_timeout is not None else 600.0,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        guardrails=_guardrails(cfg),
        metrics=_metrics_on(),
        require_auth_for_metrics=srv.require_auth_for_metrics_endpoint,
        cache=cache,
    )


def _guardrails(cfg: Any) -> Any:
    """The config's ``guardrails:`` (checked when it was loaded), or ``None`` when there are none."""
    specs = getattr(cfg, "guardrails", ())
    if not specs:
        return None
    from llmswitch.guardrails import from_config

    return from_config(specs)


def _metrics_on() -> bool:
    """``LLMSWITCH_METRICS``: ``off`` (or 0, false, no) turns the Prometheus metrics off; on by default."""
    return os.environ.get("LLMSWITCH_METRICS", "on").strip().lower() not in ("off", "0", "false", "no")


def _build_telemetry(cfg: Any) -> Any:
    settings = getattr(cfg.server, "telemetry", None)
    if settings is None or not settings.any:
        return None
    from llmswitch.telemetry.callbacks_build import build_telemetry

    # a custom callback's module is looked up beside the config file first, as LiteLLM does
    base_dir = os.path.dirname(os.path.abspath(cfg.source)) if cfg.source else None
    return build_telemetry(settings, base_dir=base_dir)


def _telemetry(cfg: Any) -> Any:
    """Traces, callbacks and alerting as the config asks (``None``: none); tracing is installed for the
    process, so in-process SDK calls are traced too."""
    from llmswitch.telemetry import traces

    telemetry = _build_telemetry(cfg)
    if telemetry is not None and telemetry.tracing is not None:
        traces.install(telemetry.tracing)
    return telemetry


def _accounting(cfg: Any, store: Any) -> Accounting:
    """Limits (memory, or Redis when the config or REDIS_URL names one) and the spend journal."""
    from llmswitch.limits import open_limiter
    from llmswitch.server.accounting import Accounting, spend_loader_for

    rs = cfg.router
    limiter = None
    made: list[Accounting] = []

    async def ship_first() -> None:
        # a budget loaded from the store (Redis lost it, or is away) then counts this process's latest answers
        for accounting in made:
            await accounting.ship_pending()

    if store is not None:
        limiter = open_limiter(
            redis_url=rs.redis_url,
            redis_host=rs.redis_host,
            redis_port=rs.redis_port,
            redis_password=rs.redis_password,
            redis_db=rs.redis_db,
            spend_loader=spend_loader_for(store, before=ship_first),
        )
    accounting = Accounting(
        limiter=limiter,
        store=store,
        journal_dir=_journal_dir(cfg) if store is not None else None,
        fsync=os.environ.get("LLMSWITCH_JOURNAL_FSYNC", "os"),
        default_output_tokens=_default_output_tokens(),
    )
    made.append(accounting)
    return accounting


def _default_output_tokens() -> int:
    """``LLMSWITCH_DEFAULT_MAX_OUTPUT_TOKENS``: the output a budget reservation assumes when neither the
    request nor the model's price bounds it (see docs/spend.md)."""
    from llmswitch.errors import ConfigError
    from llmswitch.server.pricing import DEFAULT_MAX_OUTPUT_TOKENS

    raw = os.environ.get("LLMSWITCH_DEFAULT_MAX_OUTPUT_TOKENS")
    if not raw:
        return DEFAULT_MAX_OUTPUT_TOKENS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"LLMSWITCH_DEFAULT_MAX_OUTPUT_TOKENS must be a positive integer, got {raw!r}")
    return value


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
    """The gateway of this process (an ASGI app factory): the config path comes from ``LLMSWITCH_CONFIG``
    (or none: the environment)."""
    from llmswitch import config as cfgmod
    from llmswitch.server.accesslog import configure_logging

    configure_logging(os.environ.get("LLMSWITCH_LOG_LEVEL", "info"))
    capture_warnings()
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
    host: str | None = None,
    port: int = 4000,
    workers: int = 1,
    demo: bool = False,
    log_level: str = "info",
    graceful_seconds: float = 30.0,
    limits: ServerLimits | None = None,
    tls: TLSFiles | None = None,
) -> None:
    """Serve the gateway on ``host:port`` until SIGTERM/SIGINT; ``workers`` processes when more than one.

    ``host`` ``None`` is the config's ``server.host`` if it names one, else every interface when the config
    has a master key, and loopback only without one (a gateway without one serves anyone who can connect).
    What the config needs (extras, the store, Redis) is checked here first, before anything listens: a
    failure is one log line and ``SystemExit``. ``limits``: what a client may send and how long it may
    take; ``tls``: serve HTTPS (docs/edge.md).
    """
    if config_path:
        os.environ[ENV_CONFIG] = os.path.abspath(config_path)
    os.environ["LLMSWITCH_LOG_LEVEL"] = log_level
    log_to_stderr(log_level)
    if tls is not None:
        try:
            tls.context()  # a missing file or a wrong password stops here, before any worker starts
        except (OSError, ValueError) as exc:
            log.error("cannot use the TLS certificate %s: %s", tls.certfile, exc)
            raise SystemExit(2) from exc
    edge = Edge(limits, tls)
    fake = None
    if demo:
        from llmswitch.testing import FakeUpstream

        fake = FakeUpstream()  # a thread: so one worker, in this process (nothing forks after it)
        fake.__enter__()
        os.environ[ENV_DEMO] = fake.url
        workers = 1
    workers = max(1, workers)
    os.environ["LLMSWITCH_WORKER_COUNT"] = str(workers)
    metrics_dir = _metrics_dir(workers)
    try:
        cfg = _preflight(config_path, fake.url if fake is not None else None)
        host = _host(host or cfg.server.host, cfg.server.master_key)
        # several workers each listen on a socket of their own (SO_REUSEPORT), so the kernel spreads
        # connections across them evenly; on one shared socket the first worker awake takes a whole burst
        shared = workers > 1 and hasattr(socket, "SO_REUSEPORT")
        sock = reserve(host, port) if shared else listen(host, port)
        with sock:
            scheme = "https" if tls is not None else "http"
            log.info("llmswitch serving on %s://%s:%d (%d worker%s)", scheme, host, port, workers, "s" * (workers > 1))
            if workers == 1:
                # a SIGTERM before the server has its own handler (while the gateway starts) is a clean exit too
                signal.signal(signal.SIGTERM, _exit_cleanly)
                _serve(sock, graceful_seconds, edge)
            else:
                supervisor = Supervisor(
                    sock, workers, graceful_seconds, own_socket=(host, port) if shared else None, serve=_serve
                )
                supervisor.edge = edge
                supervisor.run()
    finally:
        if fake is not None:
            fake.__exit__(None, None, None)
        if metrics_dir is not None:
            from llmswitch.telemetry.metrics_store import remove_directory

            remove_directory(metrics_dir)
            if os.environ.get("LLMSWITCH_METRICS_DIR_MADE") == metrics_dir:
                os.environ.pop("LLMSWITCH_METRICS_DIR", None)


def _metrics_dir(workers: int) -> str | None:
    """Several workers write their metrics to files in one directory, read by whichever answers a scrape
    (llmswitch.telemetry.metrics_store): ``LLMSWITCH_METRICS_DIR``, emptied of a previous run's files, or a
    temporary one; removed when the gateway stops. ``None`` for one worker (its metrics stay in memory)."""
    if workers == 1:
        return None
    import tempfile

    from llmswitch.telemetry.metrics_store import ENV_DIR, remove_directory

    given = os.environ.get(ENV_DIR)
    if given:
        remove_directory(given)
        os.makedirs(given, exist_ok=True)
        return given
    made = tempfile.mkdtemp(prefix="llmswitch-metrics-")
    os.environ[ENV_DIR] = os.environ["LLMSWITCH_METRICS_DIR_MADE"] = made
    return made


def _preflight(config_path: str | None, demo_upstream: str | None) -> Any:
    """The config, once its extras are installed and its store and Redis reached (in this process, before
    any worker exists, so a failure is said once); ``SystemExit`` with one error line otherwise."""
    import asyncio

    from llmswitch import config as cfgmod
    from llmswitch.store.urls import mask_url

    try:
        if demo_upstream is not None:
            from llmswitch.server.demo import demo_config

            cfg = demo_config(demo_upstream)
        else:
            cfg = cfgmod.load_config(config_path) if config_path else cfgmod.config_from_env()
        needs = backends_of(cfg)
        from llmswitch.cache.preflight import missing_for_cache

        missing = missing_extras(needs) + missing_for_cache(cfg)
        if missing:
            raise StartupError("; ".join(missing), EXIT_CONFIG)
        _build_telemetry(cfg)  # a callback that cannot load stops here, said once (nothing of it starts)
        threads = set(threading.enumerate())
        from llmswitch.server.instances import require_shared_from

        asyncio.run(reach_backends(needs, require_shared=require_shared_from(cfg.server.require_shared_limits)))
        # workers are forked from this process next: no thread of the pre-flight may still be running
        # (the SQLite store's executor ends after close returns)
        for thread in set(threading.enumerate()) - threads:
            thread.join(timeout=5)
        reached = [mask_url(url) if url else "none" for url in (needs.store_url, needs.redis_url)]
        log.debug("pre-flight: reached the store %s and Redis %s", *reached)
    except StartupError as exc:
        log.error("not starting: %s", exc)
        raise SystemExit(exc.exit_code) from None
    except ConfigError as exc:
        log.error("not starting: %s", exc)
        raise SystemExit(EXIT_CONFIG) from None
    return cfg


def _host(host: str | None, master_key: str | None) -> str:
    """Where to listen: the host given, else every interface with a master key and loopback without."""
    if master_key:
        return host or "0.0.0.0"
    if host is None:
        log.warning(
            "no master key: anyone who can connect may use this gateway, so it listens on 127.0.0.1 only; set "
            "general_settings.master_key (or LLMSWITCH_MASTER_KEY) to require keys, or give --host "
            "(LLMSWITCH_HOST) to serve other machines without authentication"
        )
        return "127.0.0.1"
    log.warning("no master key: requests to http://%s are not authenticated, anyone who can connect may use them", host)
    return host


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _serve(sock: socket.socket, graceful_seconds: float, edge: Edge | None = None) -> None:
    from llmswitch.server.h1serve import Server

    edge = edge or Edge()
    context = edge.tls.context() if edge.tls is not None else None
    try:
        Server(
            create_app(), sock=sock, graceful_timeout=graceful_seconds, limits=edge.limits, ssl=context, freeze_gc=True
        ).run()
    finally:
        _flush_logs()


def _flush_logs() -> None:
    """Write out what the logging thread still holds (a failed startup never reaches the gateway's
    shutdown, which does it otherwise): the process is about to exit and the thread is a daemon."""
    from llmswitch.server import accesslog

    listener = getattr(accesslog, "_listener", None)
    if listener is not None and getattr(listener, "_thread", None) is not None:
        listener.stop()


def log_to_stderr(level: str) -> None:
    """JSON lines on stderr, written at once (no thread: this process may fork); create_app() replaces it
    with the gateway's own logging in each process that serves."""
    from llmswitch.server.accesslog import _JSONLines

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JSONLines())
    root = logging.getLogger("llmswitch")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    capture_warnings()


def capture_warnings() -> None:
    """Python warnings (a library's deprecation, say) as JSON lines through llmswitch's log handlers, rather
    than the raw text ``warnings`` prints on stderr, so every line of the gateway's log parses."""
    logging.captureWarnings(True)
    target = logging.getLogger("py.warnings")
    target.handlers[:] = logging.getLogger("llmswitch").handlers
    target.setLevel(logging.WARNING)
    target.propagate = False
