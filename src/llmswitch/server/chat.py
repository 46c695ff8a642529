"""One chat request through the gateway, for any client dialect: decode, authorize, route, answer.

The stream path relays IR events through the client's encoder as they arrive; an upstream failure
after the first byte ends the stream with an error event in the client's dialect (never a silent
truncation), and a client that goes away cancels the upstream call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.dialects._json import dumps, invalid, loads
from llmswitch.errors import APIError
from llmswitch.guardrails.gateway import start_for_request
from llmswitch.router.auto import context as auto_context
from llmswitch.server import cache_hits, fastpath, http
from llmswitch.server.accounting import usage_so_far
from llmswitch.server.amounts import cost_text
from llmswitch.server.spend_records import failure_status

if TYPE_CHECKING:
    from llmswitch.guardrails.run import Run
    from llmswitch.server.app import Gateway
    from llmswitch.server.faces import Face
    from llmswitch.server.http import Request, Send


def parse_json(body: bytes) -> Any:
    if not body:
        raise invalid("body", "the request body is empty; expected a JSON object")
    try:
        return loads(body)
    except Exception as exc:
        raise invalid("body", f"not valid JSON ({exc})") from exc


async def handle_chat(
    gw: Gateway,
    request: Request,
    send: Send,
    face: Face,
    *,
    model: str | None = None,
    stream: bool | None = None,
) -> None:
    principal = gw.keys.authenticate(gw.key_of(request))
    request.state["principal"] = principal
    body = parse_json(request.body)
    if gw.telemetry.pre_call_hooks:  # a custom callback's async_pre_call_hook may change or refuse it
        body = await gw.telemetry.pre_call(principal, body)
    # LiteLLM's per-request guardrails: the gateway's to read, never forwarded
    requested = body.pop("guardrails", None) if type(body) is dict and "guardrails" in body else None
    # LiteLLM's per-request cache controls are the gateway's, never the provider's
    cache_controls = body.pop("cache", None) if type(body) is dict and "cache" in body else None
    req = face.decode_request(body, model=model)
    if stream is not None:
        req.stream = stream
        if stream:
            req.include_usage = True
    request.state["model"] = req.model
    req.model = request.state["model"] = gw.authorize_model(principal, req.model)
    if getattr(gw.router, "is_auto", _never)(
        req.model
    ):  # tell the auto router the caller's override and what it may use
        auto_context.enter(
            override=request.headers.get(auto_context.OVERRIDE_HEADER), permits=_auto_permits(gw, principal, req)
        )
    timeout = _request_timeout(body, gw.request_timeout)
    if req.extra and not _GATEWAY_ONLY.isdisjoint(req.extra):
        # where and as whom to call is the deployment's business: a client cannot send the gateway
        # elsewhere, and these settings are not for the provider either
        req.extra = {k: v for k, v in req.extra.items() if k not in _GATEWAY_ONLY} or None
        body = {k: v for k, v in body.items() if k not in _GATEWAY_ONLY}
    # the fast path: an OpenAI client reaching a plain OpenAI upstream is relayed, not re-encoded
    raw = body if face.name == "openai" else None
    run = start_for_request(gw, request, principal, requested) if gw.guardrails is not None or requested else None
    acc = gw.accounting
    started = request.state["admitted_at"] = time.perf_counter()  # time to first token counts from here
    cache = gw.cache
    plan = None
    # a guarded request neither reads nor writes the cache: a cached answer would skip its guardrails
    if cache is not None and run is None:  # answered from the cache, or told how to store the answer (docs/caching.md)
        plan = await cache_hits.answer_from_cache(gw, request, send, face, req, principal, cache_controls, started)
        if plan is cache_hits.SERVED:
            return
    reservation = await acc.admit(principal, req, request, price_hint=acc.price_hint(gw.router, req.model))
    finished = False
    route: Any = None

    async def before_last_byte(served: Any) -> float | None:
        # the spend record is durable before the client has the whole answer: nothing answered is lost
        nonlocal finished
        finished = True
        return await acc.finish(
            request,
            reservation,
            status=200,
            route=served,
            usage=request.state.get("usage"),
            stream=req.stream,
            started=started,
        )

    async def ended_early(status: int, error: BaseException | None) -> None:
        # no last byte: an error, an upstream cut, the client gone, a shutdown. A stream is charged for
        # what it used (its usage so far, else estimated: the prompt and the text relayed); shielded,
        # so that the cancellation that may have brought us here cannot lose the record
        nonlocal finished
        finished = True
        served = route
        usage = request.state.get("usage")
        estimated = False
        if req.stream:
            served = request.state.get("route")
            if served is not None:
                usage, estimated = usage_so_far(req, usage, _delivered_chars(request))
        elif served is None and request.disconnected and isinstance(error, asyncio.CancelledError):
            # the client hung up during the upstream call, which was cancelled: the provider read the
            # prompt and never said its usage, so the prompt is charged as the stream path counts it
            served = _called(gw, req.model)
            if served is not None:
                usage, estimated = usage_so_far(req, None, 0)
        await asyncio.shield(
            acc.finish(
                request,
                reservation,
                status=status,
                route=served,
                usage=usage,
                error=error,
                stream=req.stream,
                started=started,
                estimated=estimated,
            )
        )

    try:
        if run is not None and (await run.pre_call(req) or run.reads_answer):
            raw = None  # a masked prompt is re-encoded, and an answer to check is decoded
        if req.stream:
            await _stream(gw, request, send, face, req, timeout, raw, before_last_byte, run)
            if plan is not None and cache is not None and finished:
                cache.stream_finished(plan, req, request.state, request.disconnected)
            if not finished:
                error = request.state.get("error")
                await ended_early(499 if request.disconnected else getattr(error, "status_code", None) or 502, error)
            return
        call = gw.router.chat(req, timeout=timeout, raw=raw)
        resp, route = await (run.during_call(call) if run is not None else call)
        state = request.state
        state["deployment"] = route.id
        if isinstance(resp, bytes):
            usage = state["usage"] = fastpath.usage_of_body(resp)
            body_out = resp
        else:
            usage = state["usage"] = resp.usage
            if run is not None:
                resp = await run.post_call(resp)
            body_out = dumps(face.encode_response(resp, legacy_functions=req.legacy_functions))
            if face.pending is not None:
                await face.pending
        # before_last_byte's work, without its coroutine (it runs once per answer)
        finished = True
        cost = await acc.finish(
            request, reservation, status=200, route=route, usage=usage, stream=False, started=started
        )
        await http.send_bytes(send, 200, body_out, raw_headers=_with_cost(_route_headers(route, request), cost))
        if plan is not None and cache is not None and plan.write:
            cache.store(plan, resp, route, req)
    except BaseException as exc:
        if not finished:
            await ended_early(failure_status(exc, request.disconnected), exc)
        raise


def _never(group: str) -> bool:
    return False


def _auto_permits(gw: Gateway, principal: Any, req: ir.Request) -> Callable[[str, Any], str | None]:
    """Whether the caller may be served by an auto group's tier: its key's (user's, team's) models, and,
    for a call after an earlier one (a cascade's escalation; ``before`` is its route and usage), the key's
    budget left after both."""

    def permits(group: str, before: Any = None) -> str | None:
        try:
            gw.authorize_model(principal, group)
        except APIError:
            return f"the key may not use {group!r}"
        rec = principal.record
        budget = getattr(rec, "max_budget", None)
        if before is None or budget is None:
            return None
        from llmswitch.server.estimates import estimate_prompt_tokens
        from llmswitch.server.pricing import cost_of_usage, deployment_of, reserve_estimate

        route, usage = before
        price = deployment_of(route).price
        spent = (cost_of_usage(price, usage) or 0.0) if price is not None and usage is not None else 0.0
        acc = gw.accounting
        tokens = estimate_prompt_tokens(req)
        hint = acc.price_hint(gw.router, group) or ()
        need = max((reserve_estimate(p, tokens, req.max_tokens, acc.default_output_tokens) for p in hint), default=0.0)
        if rec.spend + spent + need > budget:
            return f"the key's budget cannot take {group!r} too"
        return None

    return permits


def _called(gw: Gateway, group: str) -> Any:
    """The deployment a call cut by a hang-up was in: the router does not say which one it was calling, so
    the group's only deployment, or the cheapest of its (a guess is never charged above what was used)."""
    from llmswitch.router.outcomes import Route
    from llmswitch.server.pricing import cost_of_usage, deployment_of

    try:
        targets = gw.router.deployments(group)
    except Exception:
        return None
    if not targets:
        return None
    # as the router names what served (a Route), so the record reads the same as an answered one's
    routes = [Route(t, t.group, 1, group) for t in targets]
    if len(routes) == 1:
        return routes[0]
    probe = ir.Usage(input_tokens=1_000_000)
    priced = [(cost_of_usage(p, probe), r) for r in routes if (p := deployment_of(r).price) is not None]
    known = [(c, r) for c, r in priced if c is not None]
    return min(known, key=lambda cr: cr[0])[1] if known else routes[0]


def _delivered_chars(request: Request) -> int:
    """Characters of answer text relayed to the client so far (content, reasoning, tool arguments)."""
    relayed = request.state.get("relayed")
    if relayed is not None:  # the fast path's bytes, read only now
        return fastpath.relayed_chars(*relayed)
    chars: int = request.state.get("delivered_chars", 0)
    return chars


# request-body settings LiteLLM's proxy reads for itself (or an SDK user might send): never forwarded
_GATEWAY_ONLY = frozenset(
    (
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "custom_llm_provider",
        "timeout",
        "num_retries",
        "max_retries",
        "fallbacks",
        "mock_response",
        "extra_headers",
        "user_config",
    )
)


def _request_timeout(body: Any, default: float | None) -> float | None:
    t = body.get("timeout") if isinstance(body, dict) else None
    if isinstance(t, int | float) and not isinstance(t, bool) and t > 0:
        return float(t)
    return default


def _route_headers(route: Any, request: Request | None = None) -> list[tuple[bytes, bytes]]:
    """What the router did (``route`` is a ``llmswitch.router.Route``): deployment, group, attempts, and
    the parameters dropped because the deployment cannot take them (``drop_params``), encoded once per set
    of values (one per deployment, mostly), not per answer; and what the cache did, when it was asked."""
    values = (route.id, route.model, route.group, route.attempts, route.dropped_params)
    try:
        encoded = _ROUTE_HEADERS[values]
    except KeyError:
        encoded = _ROUTE_HEADERS[values] = _encode_route_headers(route)
        if len(_ROUTE_HEADERS) > _ROUTE_HEADERS_MAX:
            _ROUTE_HEADERS.clear()
    except TypeError:  # a value that cannot be a key
        encoded = _encode_route_headers(route)
    auto = getattr(route, "auto", None)
    if auto is not None:  # an auto group's decision (llmswitch.router.auto): per request, never cached
        encoded = [*encoded, *http.header_list(auto.headers())]
    if request is not None:
        cached = request.state.get("cache_headers")
        if cached:
            return [*encoded, *http.header_list(cached)]
    return encoded  # shared: never changed


def _encode_route_headers(route: Any) -> list[tuple[bytes, bytes]]:
    headers = {
        "x-llmswitch-deployment": str(route.id),
        "x-llmswitch-model": str(route.model),
        "x-llmswitch-model-group": str(route.group),
        "x-llmswitch-attempts": str(route.attempts),
    }
    if route.dropped_params:
        headers["x-llmswitch-dropped-params"] = ", ".join(route.dropped_params)
    return http.header_list(headers)


# (deployment id, model, group, attempts, dropped params) -> their headers, encoded
_ROUTE_HEADERS: dict[tuple[Any, ...], list[tuple[bytes, bytes]]] = {}
_ROUTE_HEADERS_MAX = 4096


def _with_cost(headers: list[tuple[bytes, bytes]], cost: float | None) -> list[tuple[bytes, bytes]]:
    if cost is None:
        return headers
    return [*headers, (b"x-llmswitch-cost", cost_text(cost).encode())]


async def _stream(
    gw: Gateway,
    request: Request,
    send: Send,
    face: Face,
    req: ir.Request,
    timeout: float | None,
    raw: dict[str, Any] | None,
    before_last_byte: Callable[[Any], Awaitable[Any]],
    run: Run | None = None,
) -> None:
    opening = gw.router.chat_stream(req, timeout=timeout, raw=raw)
    s, target = await (run.during_call(opening) if run is not None else opening)
    guard = run.stream() if run is not None else None
    request.state["deployment"] = target.id
    request.state["route"] = target
    if s.passthrough:
        await fastpath.relay_stream(
            s,
            request,
            send,
            face,
            include_usage=req.include_usage,
            headers=_route_headers(target, request),
            provider=str(getattr(target, "provider", "provider")),
            before_last_byte=lambda: before_last_byte(target),
            keep=request.state.get("cache_tap"),
        )
        return
    started = False
    encoder: Any = None
    chars = 0
    tap: list[Any] | None = request.state.get("cache_tap")
    if tap is not None:
        request.state["cache_meta"] = s.meta
    try:
        json_array = face.name == "gemini" and request.query.get("alt") != "sse"
        await http.start_stream(
            send,
            raw_headers=_route_headers(target, request),
            content_type=b"application/json" if json_array else None,
        )
        started = True
        t0 = request.state.get("admitted_at") or time.perf_counter()
        async for ev in s.events():
            if request.disconnected:
                break
            if encoder is None:
                encoder = face.stream_encoder(
                    s.meta,
                    include_usage=req.include_usage,
                    json_array=json_array,
                    legacy_functions=req.legacy_functions,
                )
                request.state["ttft_ms"] = (time.perf_counter() - t0) * 1000
            if guard is not None:
                checked = guard.feed(ev)
                if checked is None:
                    continue
                ev = checked
            if ev.usage is not None:
                request.state["usage"] = ev.usage
            # counted for a stream that ends before its usage: what it used is charged
            if ev.text:
                chars += len(ev.text)
            if ev.reasoning:
                chars += len(ev.reasoning)
            if ev.refusal:
                chars += len(ev.refusal)
            if ev.tool_calls:
                for call in ev.tool_calls:
                    chars += len(call.arguments) + len(call.name or "")
            if tap is not None:
                tap.append(ev)
            data = encoder.encode(ev)
            if data:
                await http.stream_chunk(send, data)
        if request.disconnected:
            request.state["status_note"] = "client disconnected"
            return
        if encoder is None:
            encoder = face.stream_encoder(
                s.meta, include_usage=req.include_usage, json_array=json_array, legacy_functions=req.legacy_functions
            )
        if guard is not None and (held := await guard.close()) is not None:
            await http.stream_chunk(send, encoder.encode(held))
        tail = encoder.close()
        if face.pending is not None:
            await face.pending
        await before_last_byte(target)
        await http.end_stream(send, tail)
    except APIError as exc:
        request.state["error"] = exc
        if not started:
            raise
        await http.end_stream(send, face.stream_error(exc))
    finally:
        request.state["delivered_chars"] = chars
        s.close()
