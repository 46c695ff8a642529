"""The gateway as an ASGI application: routes, errors in the caller's dialect, one log line each.

    >>> gw = Gateway(router=Router(model_list), master_key="sk-master")
    >>> # uvicorn.run(gw)  — or `llmswitch serve --config config.yaml`

Every response to a client's mistake is a 4xx in the client's own error format, naming what was
wrong; nothing the client sends can produce a traceback or a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from llmswitch import procid
from llmswitch.errors import APIError, APIStatusError, LLMSwitchError, PermissionDeniedError, ServiceUnavailableError
from llmswitch.guardrails.run import Guardrails
from llmswitch.router.router import Router
from llmswitch.server import (
    admin,
    admin_teams,
    batch_routes,
    cache_routes,
    count_tokens,
    faces,
    gemini_embed,
    health,
    http,
    key_regenerate,
    metrics_route,
    model_groups,
    responses,
    spend_budgets,
    spend_routes,
    ui_routes,
    unsupported,
)
from llmswitch.server.accesslog import AccessLog
from llmswitch.server.accounting import Accounting
from llmswitch.server.auth import KeyCache, Principal, extract_key, model_not_allowed
from llmswitch.server.budget_resets import BudgetResets
from llmswitch.server.chat import handle_chat
from llmswitch.server.disconnects import DisconnectWatch
from llmswitch.server.embeddings import handle_embeddings, handle_models
from llmswitch.server.faces import Face
from llmswitch.server.lost_attempts import note_timeout
from llmswitch.server.spend_day_cache import SpendDayCache
from llmswitch.server.subjects import SubjectCache
from llmswitch.server.ui_sessions import UISessions
from llmswitch.store.errors import StoreConnectionError, StoreMigrationError
from llmswitch.telemetry.callbacks import Telemetry
from llmswitch.telemetry.metrics import Metrics
from llmswitch.telemetry.metrics_collect import attach_metrics

if TYPE_CHECKING:
    from llmswitch.cache.gateway import ResponseCache

log = logging.getLogger("llmswitch.server")

DEFAULT_MAX_BODY = 32 * 1024 * 1024

Handler = http.Handler


# request ids: the process's random prefix (renewed in forked children, see procid) and a counter;
# unique across processes without a uuid4 (and its urandom call) per request
_ids = itertools.count(1)


def _next_request_id() -> str:
    return f"{procid.PREFIX}{next(_ids):08x}"


def _model_in(model: str, allowed: list[str]) -> bool:
    return any(
        m in ("*", "all-proxy-models") or m == model or (m.endswith("*") and model.startswith(m[:-1])) for m in allowed
    )


class Gateway:
    """The gateway's state and its ASGI entry point."""

    def __init__(
        self,
        *,
        router: Router,
        master_key: str | None = None,
        store: Any = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        request_timeout: float | None = 600.0,
        accounting: Accounting | None = None,
        on_startup: list[Callable[[], Awaitable[None]]] | None = None,
        on_shutdown: list[Callable[[], Awaitable[None]]] | None = None,
        guardrails: Guardrails | None = None,
        metrics: bool | Metrics = True,
        require_auth_for_metrics: bool = False,
        cache: ResponseCache | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.router = router
        self.guardrails = guardrails  # None: no guardrail configured, nothing to check per request
        if getattr(router, "on_timeout", False) is None:
            # a timed-out attempt the provider may bill is recorded (llmswitch.server.lost_attempts)
            router.on_timeout = note_timeout(router)
        # the response cache (docs/caching.md); None: off, and a request pays one attribute read for it
        self.cache = cache
        # traces, callbacks, alerts (llmswitch.telemetry); without any, attempts still make the log's trail
        self.telemetry = telemetry or Telemetry()
        self.telemetry.attach(router)
        self.master_key = master_key
        self.store = store
        self.keys = KeyCache(store, master_key)
        self.subjects = SubjectCache(store)
        self.budget_resets = BudgetResets(store)
        self.accounting = accounting or Accounting(limiter=None, store=None, journal_dir=None)
        if self.accounting.subjects is None:  # user and team budgets and limits, read from memory
            self.accounting.subjects = self.subjects
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.access = AccessLog()
        self._store_outage_logged = 0.0
        self.started_at = time.time()
        self.ready = False
        self._on_startup = on_startup or []
        self._on_shutdown = on_shutdown or []
        self._routes: dict[tuple[str, str], tuple[Handler, Face]] = {
            ("POST", "/v1/chat/completions"): (_openai_chat, faces.OPENAI),
            ("POST", "/chat/completions"): (_openai_chat, faces.OPENAI),
            ("POST", "/openai/v1/chat/completions"): (_openai_chat, faces.OPENAI),
            ("POST", "/v1/embeddings"): (handle_embeddings, faces.OPENAI),
            ("POST", "/embeddings"): (handle_embeddings, faces.OPENAI),
            ("GET", "/v1/models"): (handle_models, faces.OPENAI),
            ("GET", "/models"): (handle_models, faces.OPENAI),
            ("POST", "/v1/messages"): (_anthropic_messages, faces.ANTHROPIC),
            ("POST", "/v1/messages/count_tokens"): (count_tokens.handle_anthropic, faces.ANTHROPIC),
            ("POST", "/utils/token_counter"): (count_tokens.handle_litellm, faces.OPENAI),
            ("GET", "/health/liveliness"): (health.liveliness, faces.OPENAI),
            ("GET", "/health/liveness"): (health.liveliness, faces.OPENAI),
            ("GET", "/health/readiness"): (health.readiness, faces.OPENAI),
            ("GET", "/health"): (health.health, faces.OPENAI),
            ("GET", "/metrics"): (metrics_route.handle, faces.OPENAI),
            **{route: (handler, faces.OPENAI) for route, handler in admin.ROUTES.items()},
            **{route: (handler, faces.OPENAI) for route, handler in spend_routes.ROUTES.items()},
            **{route: (handler, faces.OPENAI) for route, handler in admin_teams.ROUTES.items()},
            **{route: (handler, faces.OPENAI) for route, handler in cache_routes.ROUTES.items()},
            **{route: (handler, faces.OPENAI) for route, handler in ui_routes.ROUTES.items()},
            **{route: (handler, faces.OPENAI) for route, handler in key_regenerate.ROUTES.items()},
            **{route: (handler, faces.OPENAI) for route, handler in spend_budgets.ROUTES.items()},
            **{route: (handler, faces.OPENAI) for route, handler in model_groups.ROUTES.items()},
        }
        self.ui_sessions = UISessions()  # the dashboard's sign-ins (/ui, see ui_sessions.py)
        self.spend_days = SpendDayCache()  # past days' totals for /spend/daily?max_age= (the dashboard's charts)
        # Prometheus metrics (on unless turned off): see llmswitch.telemetry.metrics
        self.require_auth_for_metrics = require_auth_for_metrics
        self.metrics: Metrics | None = (Metrics() if metrics is True else metrics) or None
        self.metrics_collector = attach_metrics(self, self.metrics) if self.metrics is not None else None
        # files and batches (llmswitch.batch), when there is a store to keep them
        self.batches: Any = None
        if store is not None:
            from llmswitch.batch.service import BatchService
            from llmswitch.batch.settings import BatchSettings

            self.batches = BatchService(self, BatchSettings.from_env())

    # ---------------------------------------------------------------- helpers for handlers

    def key_of(self, request: http.Request) -> str | None:
        state = request.state
        if "api_key" in state:  # read once per request, before the handler (see _http)
            key: str | None = state["api_key"]
            return key
        return extract_key(request)

    def authorize_model(self, principal: Principal, model: str) -> str:
        """The model group to serve ``model`` with (the key's ``aliases`` applied), if the key, its user
        and its team may use it; a 401/403 otherwise. The key's ``models`` bind the group an alias leads
        to, as in LiteLLM, so an alias never reaches a model the key may not use."""
        rec = principal.record
        aliases = getattr(rec, "aliases", None)
        if aliases:
            model = aliases.get(model, model)
        if not principal.allows_model(model):
            raise model_not_allowed(model)
        if rec is None:
            return model
        # the key's user and team: blocked, or limited to some models, they bind the key too
        subjects: tuple[tuple[Literal["user", "team"], str | None], ...] = (
            ("user", rec.user_id),
            ("team", rec.team_id),
        )
        for kind, ident in subjects:
            sub = self.subjects.get(kind, ident) if ident else None
            if sub is None:
                continue
            if sub.blocked:
                raise PermissionDeniedError(
                    f"{kind} {ident!r} is blocked", status_code=403, provider="llmswitch", error_type="permission_error"
                )
            if sub.models and not _model_in(model, sub.models):
                raise PermissionDeniedError(
                    f"{kind} {ident!r} is not allowed to use model {model!r}",
                    status_code=403,
                    provider="llmswitch",
                    error_type="permission_error",
                    param="model",
                )
        return model

    # ---------------------------------------------------------------- lifecycle

    async def startup(self) -> None:
        if self.store is not None:
            await self.store.open()
            await self.store.migrate()
        await self.keys.start()
        await self.subjects.start()
        await self.budget_resets.start()
        await self.accounting.start()
        if self.metrics_collector is not None:
            await self.metrics_collector.start()
        if self.cache is not None:
            await self.cache.start()
        for fn in self._on_startup:
            await fn()
        if self.batches is not None:
            await self.batches.start()
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        if self.batches is not None:
            with contextlib.suppress(Exception):
                await self.batches.stop()
        for fn in self._on_shutdown:
            with contextlib.suppress(Exception):
                await fn()
        if self.metrics_collector is not None:
            await self.metrics_collector.stop()
        await self.spend_days.close()
        await self.keys.stop()
        await self.subjects.stop()
        await self.budget_resets.stop()
        if self.cache is not None:
            with contextlib.suppress(Exception):
                await self.cache.stop()
        with contextlib.suppress(Exception):
            await self.accounting.stop()
        with contextlib.suppress(Exception):
            await self.telemetry.close()
        if self.store is not None:
            await self.store.close()
        from llmswitch import transport

        with contextlib.suppress(Exception):
            await transport.close_session()
        self.access.close()

    # ---------------------------------------------------------------- ASGI

    async def __call__(self, scope: http.Scope, receive: http.Receive, send: http.Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: http.Receive, send: http.Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _route(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[Handler, Face, dict[str, Any]] | None:
        found = self._routes.get((method, path))
        if found is not None:
            return found[0], found[1], {}
        if "batches" in path or "files" in path:
            batch = batch_routes.route(method, path)
            # /v1/files with an anthropic-version header is Anthropic's Files API, which is not served
            if batch is not None and not (batch[1] == "openai" and headers and "anthropic-version" in headers):
                return batch[0], faces.ANTHROPIC if batch[1] == "anthropic" else faces.OPENAI, batch[2]
        if path.startswith("/ui/assets/"):
            asset = ui_routes.route(method, path)
            return None if asset is None else (asset, faces.OPENAI, {})
        if path.startswith(("/v1/responses", "/responses")):
            served = responses.route(method, path)
            if served is not None:
                return served[0], faces.OPENAI, served[1]
        if method == "POST" and path.startswith(("/v1beta/models/", "/v1/models/")) and ":" in path:
            model, _, verb = path.split("/models/", 1)[1].rpartition(":")
            if verb in ("generateContent", "streamGenerateContent") and model:
                return _gemini_generate, faces.GEMINI, {"model": model, "stream": verb == "streamGenerateContent"}
            if verb == "countTokens" and model:
                return count_tokens.handle_gemini, faces.GEMINI, {"model": model}
            if verb in ("embedContent", "batchEmbedContents") and model:
                return gemini_embed.handle, faces.GEMINI, {"model": model, "batch": verb == "batchEmbedContents"}
        return None

    async def _http(self, scope: http.Scope, receive: http.Receive, send: http.Send) -> None:
        request = http.Request(scope, receive)
        started = time.perf_counter()
        # the spend record's identity is always our own id (a client choosing it could repeat one and
        # leave a request unbilled); a client's x-request-id is echoed and logged, for tracing
        spend_id = _next_request_id()
        request_id = request.headers.get("x-request-id") or spend_id
        request.state["request_id"] = request_id
        request.state["spend_id"] = spend_id
        id_headers = [(b"x-request-id", request_id.encode("latin-1")), (b"x-llmswitch-request-id", spend_id.encode())]
        status_box = [0]

        async def send_tracked(msg: http.Message) -> None:
            if msg["type"] == "http.response.start":
                status_box[0] = msg["status"]
                msg["headers"] = [*msg.get("headers", ()), *id_headers]
            elif not msg.get("more_body"):
                request.state["responded"] = True
            await send(msg)

        route = self._route(request.method, request.path, request.headers)
        face = route[1] if route is not None else unsupported.face_for(request)
        task = asyncio.current_task()
        watch = DisconnectWatch(request, task)
        traced = self.telemetry.begin(request)
        acc = self.accounting
        acc.in_flight += 1
        try:
            if route is None:
                raise unsupported.refusal(request, self._routes)
            handler, _, params = route
            key = extract_key(request)
            if "cookie" in request.headers or request.path.startswith("/ui/"):
                # the dashboard's session stands for a key (admin routes only; see ui_sessions.py)
                request.state["tls"] = scope.get("scheme") == "https"
                key = self.ui_sessions.key_for(request, key)
            request.state["api_key"] = key
            if key is not None and self.keys.lookup_needed(key):
                # a key made on another instance since the last refresh: ask the store before refusing
                await self.keys.lookup(key)
            if request.method == "POST":
                # the key is checked on the head: a refused caller's body is never read, nor invited (our
                # server and uvicorn send "100 Continue" on the first receive() only)
                principal = self.keys.authenticate(key)
                if "model" in params:
                    self.authorize_model(principal, params["model"])
                limit = self.max_body_bytes
                if params.get("body_limit") == "files" and self.batches is not None:
                    limit = self.batches.settings.max_file_bytes + 64 * 1024  # the form around the file
                await request.read_body(limit)
            watch.arm()
            if params:
                request.state.update(params)
            await handler(self, request, send_tracked)
        except http.BodyTooLarge as exc:
            await self._send_error(send_tracked, face, _too_large(exc.limit), request)
        except (APIError, LLMSwitchError) as exc:
            if status_box[0]:
                request.state["error"] = exc
                if not request.state.get("responded"):
                    with contextlib.suppress(Exception):
                        await http.end_stream(send_tracked, face.stream_error(exc))
            else:
                await self._send_error(send_tracked, face, exc, request)
        except asyncio.CancelledError:
            if not request.disconnected:
                raise
            status_box[0] = status_box[0] or 499
        except Exception as exc:
            log.exception("unhandled error on %s %s", request.method, request.path)
            if status_box[0]:
                # the answer already started: end it with an error the client's SDK will raise on
                request.state["error"] = exc
                if not request.state.get("responded"):
                    with contextlib.suppress(Exception):
                        await http.end_stream(send_tracked, face.stream_error(exc))
            else:
                await self._send_error(send_tracked, face, exc, request)
        finally:
            acc.in_flight -= 1
            watch.disarm()
            if traced is not None:
                self.telemetry.end(request, status_box[0], traced)
            if self.metrics is not None:
                self.metrics.note_end(request.state)
            self.access.record(request, status_box[0], time.perf_counter() - started)

    async def _send_error(self, send: http.Send, face: Face, exc: BaseException, request: http.Request) -> None:
        request.state["error"] = exc
        if isinstance(exc, StoreConnectionError | StoreMigrationError):
            exc = self._store_unavailable(exc)
        elif isinstance(exc, LLMSwitchError) and not isinstance(exc, APIError):
            # a configuration-level mistake in the request (bad model string, bad value)
            exc = APIStatusError(str(exc), status_code=400, provider="llmswitch", error_type="invalid_request_error")
        exc = _upstream_credentials_to_502(exc)
        status, body = face.encode_error(exc)
        headers: dict[str, str] = {}
        if getattr(exc, "provider", None) == "llmswitch":
            # our own refusals (rate limits, budgets) carry the x-ratelimit-* headers of the limit hit
            headers.update(getattr(exc, "headers", None) or {})
        retry_after = getattr(exc, "retry_after", None)
        if status == 429 and retry_after:
            headers["retry-after"] = str(max(1, math.ceil(retry_after)))
        from llmswitch.dialects._json import dumps

        await http.send_bytes(send, status, dumps(body), headers=headers)

    def _store_unavailable(self, exc: BaseException) -> ServiceUnavailableError:
        """A store that cannot answer (an admin route, a key lookup) is the gateway's problem: a 503 that
        names nothing of its insides; the database's host and the error go to the log, once a minute."""
        now = time.monotonic()
        if not self._store_outage_logged or now - self._store_outage_logged >= 60.0:
            self._store_outage_logged = now
            log.error("the store cannot serve requests: %s", exc)
        return ServiceUnavailableError(
            "the gateway cannot reach its store right now; retry shortly",
            status_code=503,
            provider="llmswitch",
            error_type="service_unavailable",
            retry_after=1.0,
        )


def _upstream_credentials_to_502(exc: BaseException) -> BaseException:
    """A provider refusing the deployment's own key is the gateway's problem, not the caller's:
    answering 401 would tell the caller its (valid) key is wrong."""
    if isinstance(exc, APIStatusError) and exc.provider != "llmswitch" and exc.status_code in (401, 403):
        return APIStatusError(
            f"the upstream provider rejected this deployment's credentials: {exc.message}",
            status_code=502,
            provider=exc.provider,
            error_type="api_error",
        )
    return exc


def _too_large(limit: int) -> APIStatusError:
    return APIStatusError(
        f"request body is larger than the {limit} byte limit",
        status_code=413,
        provider="llmswitch",
        error_type="request_too_large",
    )


async def _openai_chat(gw: Gateway, request: http.Request, send: http.Send) -> None:
    await handle_chat(gw, request, send, faces.OPENAI)


async def _anthropic_messages(gw: Gateway, request: http.Request, send: http.Send) -> None:
    await handle_chat(gw, request, send, faces.ANTHROPIC)


async def _gemini_generate(gw: Gateway, request: http.Request, send: http.Send) -> None:
    await handle_chat(
        gw, request, send, faces.GEMINI, model=request.state["model"], stream=bool(request.state["stream"])
    )
