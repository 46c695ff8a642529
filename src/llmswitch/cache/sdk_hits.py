"""The SDK's side of a cache hit and a store: OpenAI-shaped results from a stored answer.

Kept apart from :mod:`llmswitch.cache.sdk` so that ``llmswitch.sdk`` imports only this small module; a hit's
``_hidden_params["cache_hit"]`` is True (LiteLLM's flag) and its ``cost`` 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmswitch import ir

if TYPE_CHECKING:
    from llmswitch import results
    from llmswitch.cache.gateway import Plan
    from llmswitch.cache.sdk import Cache


def active_cache() -> Cache | None:
    import llmswitch

    found = getattr(llmswitch, "cache", None)
    if found is None or type(found).__name__ != "Cache":
        return None
    from llmswitch.cache.sdk import Cache

    return found if isinstance(found, Cache) else None


async def whole_hit(cache: Cache, plan: Plan, req: ir.Request, hidden: dict[str, Any]) -> results.ModelResponse | None:
    from llmswitch import convert

    answer = await cache.response_cache.lookup(plan, req) if plan.read else None
    if answer is None or answer.response is None:
        return None
    out = convert.model_response(answer.response)
    out._hidden_params = {**hidden, "cache_hit": True, "cache_key": plan.key}  # type: ignore[attr-defined]
    out.cost = 0.0
    return out


async def stream_hit(
    cache: Cache, plan: Plan, req: ir.Request, hidden: dict[str, Any]
) -> list[results.ModelResponseStream] | None:
    from llmswitch import convert
    from llmswitch.cache.replay import events_of, meta_of
    from llmswitch.dialects.openai_chat_stream import StreamEncoder

    answer = await cache.response_cache.lookup(plan, req) if plan.read else None
    if answer is None or answer.response is None:
        return None
    encoder = StreamEncoder(meta_of(answer.response), include_usage=req.include_usage)
    marks = {**hidden, "cache_hit": True, "cache_key": plan.key}
    out = []
    for ev in events_of(answer.response):
        chunk = encoder.chunk(ev)
        if chunk is not None:
            out.append(convert.stream_chunk(chunk))
    tail = encoder.usage_chunk()
    if tail is not None:
        out.append(convert.stream_chunk(tail))
    for c in out:
        c._hidden_params = marks  # type: ignore[attr-defined]
    return out


async def store(cache: Cache, plan: Plan, resp: ir.Response, req: ir.Request) -> None:
    from llmswitch.cache.gateway import cacheable
    from llmswitch.cache.replay import new_answer

    if cacheable(resp):
        await cache.response_cache.put(plan, new_answer(resp, plan.group, None), req)


async def store_stream(
    cache: Cache, plan: Plan, meta: ir.StreamMeta, events: list[ir.StreamEvent], req: ir.Request
) -> None:
    from llmswitch.cache.gateway import cacheable
    from llmswitch.cache.replay import gather, new_answer

    resp = gather(meta, events)
    if resp is not None and cacheable(resp):
        await cache.response_cache.put(plan, new_answer(resp, plan.group, None), req)
