"""A chat request answered from the cache: whole, or replayed as a stream in the caller's dialect.

A hit is admitted against the caller's limits as the config says (``hits_count_requests``: by default it
counts as a request, its tokens and money do not), costs nothing, and its spend record says
``cache_hit`` with the cost it saved (the price of the deployment that first made the answer).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from llmswitch.cache.controls import read_controls
from llmswitch.cache.gateway import Plan
from llmswitch.cache.replay import events_of, meta_of
from llmswitch.dialects._json import dumps
from llmswitch.errors import APIError
from llmswitch.server import fastpath, http
from llmswitch.server.accounting import cost_header

if TYPE_CHECKING:
    from llmswitch import ir
    from llmswitch.cache.replay import Answer
    from llmswitch.server.app import Gateway
    from llmswitch.server.faces import Face


# what answer_from_cache returns when it has answered the request itself
SERVED = Plan(key="", group="", read=False, write=False, ttl=0.0, max_age=None, partition="", namespace="")


async def answer_from_cache(
    gw: Gateway,
    request: http.Request,
    send: http.Send,
    face: Face,
    req: ir.Request,
    principal: Any,
    body_controls: Any,
    started: float,
) -> Plan | None:
    """Answer ``req`` from the cache if it can (then :data:`SERVED`); else the request's :class:`Plan` (its
    miss headers and, for a stream to store, its tap set in the request's state), or ``None``: not cached."""
    cache = gw.cache
    assert cache is not None
    key_controls = _key_controls(principal)
    if key_controls is not None:  # the key's own (LiteLLM's metadata.cache), under the request's
        body_controls = {**key_controls, **body_controls} if isinstance(body_controls, dict) else key_controls
    plan = cache.plan(req, principal, cache.controls(body_controls, request.headers.get("cache-control")))
    if plan is None:
        return None
    answer = await cache.lookup(plan, req, as_ir=req.stream or face.name != "openai") if plan.read else None
    if answer is not None:
        await serve_hit(gw, request, send, face, req, principal, plan, answer, started)
        return SERVED
    request.state["cache_headers"] = cache.headers(plan, hit=False)
    if req.stream and plan.write:
        request.state["cache_tap"] = []
    return plan


def _key_controls(principal: Any) -> dict[str, Any] | None:
    """A virtual key's cache controls (``metadata: {"cache": {...}}``, as LiteLLM's per-key cache settings);
    ``None`` when it has none, or ones that are not valid controls (the key's, not the caller's mistake)."""
    metadata = getattr(getattr(principal, "record", None), "metadata", None)
    found = metadata.get("cache") if isinstance(metadata, dict) else None
    if not isinstance(found, dict) or not found:
        return None
    try:
        read_controls(found, None)
    except APIError:
        return None
    return found


async def serve_hit(
    gw: Gateway,
    request: http.Request,
    send: http.Send,
    face: Face,
    req: ir.Request,
    principal: Any,
    plan: Plan,
    answer: Answer,
    started: float,
) -> None:
    cache = gw.cache
    assert cache is not None
    s = cache.settings
    acc = gw.accounting
    reservation = None
    if s.hits_count_requests:
        hint = acc.price_hint(gw.router, req.model) if s.hits_count_spend else None
        reservation = await acc.admit(principal, req, request, price_hint=hint)
    route = route_of(gw, answer)
    # an OpenAI client asking for a whole answer stored as the upstream's OpenAI body gets those bytes
    relayed = bytes(answer.openai) if answer.relayed and face.name == "openai" and not req.stream else None
    resp = answer.response
    usage = fastpath.usage_of_body(relayed) if relayed is not None else resp.usage if resp is not None else None
    state = request.state
    state["usage"] = usage
    state["deployment"] = answer.deployment
    state["cache_hit"] = True
    headers = cache.headers(plan, hit=True)
    headers["x-llmswitch-model-group"] = plan.group
    if answer.deployment:
        headers["x-llmswitch-deployment"] = answer.deployment
    headers["x-llmswitch-attempts"] = "0"
    finished = False

    async def finish(status: int, error: BaseException | None = None) -> float | None:
        nonlocal finished
        finished = True
        return await acc.finish(
            request,
            reservation,
            status=status,
            route=route,
            usage=usage if error is None else None,
            error=error,
            stream=req.stream,
            started=started,
            cache_hit=True,
            hit_counts=(s.hits_count_tokens, s.hits_count_spend),
        )

    try:
        if relayed is not None:
            cost = await finish(200)
            await http.send_bytes(send, 200, relayed, headers=headers | cost_header(cost))
            return
        assert resp is not None  # lookup(as_ir=True) resolved it
        if req.stream:
            json_array = face.name == "gemini" and request.query.get("alt") != "sse"
            encoder = face.stream_encoder(meta_of(resp), include_usage=req.include_usage, json_array=json_array)
            data = b"".join([encoder.encode(ev) for ev in events_of(resp)]) + encoder.close()
            await http.start_stream(send, headers=headers, content_type=b"application/json" if json_array else None)
            state["ttft_ms"] = (time.perf_counter() - started) * 1000
            await finish(200)
            await http.end_stream(send, data)
        else:
            body = dumps(face.encode_response(resp))
            cost = await finish(200)
            await http.send_bytes(send, 200, body, headers=headers | cost_header(cost))
    except BaseException as exc:
        if not finished:
            await finish(getattr(exc, "status_code", None) or (499 if request.disconnected else 500), exc)
        raise


def route_of(gw: Gateway, answer: Answer) -> Any:
    """The deployment that made the answer, as the router names it (for its price), if it is still configured."""
    if not answer.deployment:
        return None
    from llmswitch.router.outcomes import Route

    try:
        targets = gw.router.deployments(answer.group)
    except Exception:
        return None
    for t in targets:
        if t.id == answer.deployment:
            return Route(t, t.group, 0, answer.group)
    return None
