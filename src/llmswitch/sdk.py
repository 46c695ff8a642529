"""The Python SDK's chat calls: ``completion`` / ``acompletion`` (embeddings and token counting are in
``sdk_embeddings``, the Responses API in ``responses_api``).

Keyword names follow LiteLLM (and the openai SDK underneath it), so migrating is changing an import.
The caller's keywords are read as an OpenAI Chat Completions request (the same decoder the gateway
uses for OpenAI clients), resolved to a provider, sent with retries, and returned as OpenAI-shaped
objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from llmswitch import convert, engine, ir, results
from llmswitch._sync import SyncIterator, run
from llmswitch.cache import prompt as prompt_cache
from llmswitch.cache import sdk_hits as sdk_cache
from llmswitch.cost import cost_for_response, usage_from_wire
from llmswitch.dialects import openai_chat
from llmswitch.dialects.openai_chat_stream import StreamEncoder
from llmswitch.dialects.openai_tools import FunctionCallChunks
from llmswitch.errors import ConfigError
from llmswitch.network import network_from
from llmswitch.providers import params, resolve_model
from llmswitch.router.retry import RetryPolicy
from llmswitch.structured import PartialParser, normalize_response_format, parse_content
from llmswitch.telemetry import traces_sdk

# keywords that configure the call rather than being sent to the provider
_CALL_KEYS = (
    "extra_headers", "custom_llm_provider", "api_version", "base_url", "headers", "max_retries",
    "outbound_proxy", "ssl_verify", "ssl_certificate",
)  # fmt: skip
_PRICE_KEYS = frozenset(
    (
        "input_cost_per_token",
        "output_cost_per_token",
        "cache_read_input_token_cost",
        "cache_creation_input_token_cost",
        "cache_creation_input_token_cost_above_1hr",
        "output_cost_per_reasoning_token",
        "input_cost_per_token_batches",
        "output_cost_per_token_batches",
    )
)


class _Call:
    """A completion call, decoded once: provider, endpoint, IR request, retry policy."""

    def __init__(
        self,
        model: str,
        messages: list[Any],
        kwargs: dict[str, Any],
    ) -> None:
        call_opts = {k: kwargs.pop(k) for k in _CALL_KEYS if k in kwargs}
        # LiteLLM's per-call cache controls (``cache={...}``, ``caching=False``): the cache's, not the provider's
        self.cache_controls: Any = False if kwargs.pop("caching", None) is False else kwargs.pop("cache", None)
        kwargs.pop("cache", None)
        # LiteLLM's cache breakpoints (and our prompt_cache="auto"): placed here, never sent as parameters
        prompt_settings: dict[str, Any] = {
            k: kwargs.pop(k) for k in ("cache_control_injection_points", "prompt_cache") if k in kwargs
        }
        # LiteLLM's per-call price keywords price the answer; they are not for the provider
        self.price_overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in _PRICE_KEYS} or None
        api_base = kwargs.pop("api_base", None) or call_opts.get("base_url")
        api_key = kwargs.pop("api_key", None)
        timeout = kwargs.pop("timeout", 600)
        num_retries = kwargs.pop("num_retries", None)
        if num_retries is None:
            num_retries = call_opts.get("max_retries", 2)
        rf, self.parse_into = normalize_response_format(kwargs.pop("response_format", None))
        self.guardrails = _guardrails(kwargs.pop("guardrails", None))
        self.wants_json = rf is not None and rf.get("type") in ("json_schema", "json_object")
        self.provider, self.model_id = resolve_model(model, call_opts.get("custom_llm_provider"))
        settings = _settings_of(self.provider, kwargs)
        self.provider = self.provider.for_settings(settings)
        body: dict[str, Any] = {"model": model, "messages": messages}
        if rf is not None:
            body["response_format"] = rf
        for k, v in kwargs.items():
            if v is not None:
                body[k] = v
        # what the provider cannot take is mapped, dropped (drop_params=True, or llmswitch.drop_params) or refused
        self.request, self.dropped = params.apply(
            openai_chat.decode_request(body),
            self.provider.policy or self.provider.name,
            model=self.model_id,
            deployment=model,
            drop=_global_drop_params(),
            dialect=self.provider.dialect,
        )
        if prompt_settings:
            self.request = prompt_cache.apply_prompt_cache(
                self.request, prompt_settings, self.provider.dialect, self.model_id
            )
        self.user_wants_usage = self.request.include_usage
        self.endpoint = self.provider.endpoint(
            api_base=api_base,
            api_key=api_key,
            extra_headers=call_opts.get("extra_headers") or call_opts.get("headers"),
            api_version=call_opts.get("api_version"),
            network=network_from(call_opts, model),
            settings=settings,
        )
        self.timeout = float(timeout) if timeout is not None else None
        self.cache_group = f"{model}@{api_base or ''}"
        if not isinstance(num_retries, int) or num_retries < 0:
            raise ConfigError("num_retries must be a non-negative integer")
        self.policy = RetryPolicy(num_retries=num_retries)

    async def run(self) -> results.ModelResponse:
        guard = self.guardrails
        if guard is not None:
            await guard.pre_call(self.request)
        # a guarded call neither reads nor writes the cache (a cached answer would skip its guardrails)
        cached = sdk_cache.active_cache() if guard is None else None
        plan = cached.plan(self.request, self.cache_group, self.cache_controls) if cached is not None else None
        if plan is not None and cached is not None:
            hit = await sdk_cache.whole_hit(cached, plan, self.request, self.hidden_params())
            if hit is not None:
                return hit
        span = traces_sdk.begin("chat", self.model_id, self.provider.name)
        try:
            call = engine.chat(
                self.provider,
                self.request,
                model=self.model_id,
                endpoint=self.endpoint,
                timeout=self.timeout,
                policy=self.policy,
            )
            resp = await (guard.during_call(call) if guard is not None else call)
            if guard is not None:
                resp = await guard.post_call(resp)
        except BaseException as exc:
            if span is not None:
                span.failed(exc)
            raise
        out = convert.model_response(resp, legacy_functions=self.request.legacy_functions)
        _mark(out, self.hidden_params())
        out.cost = cost_for_response(resp.model or self.model_id, self.provider.name, resp.usage, self.price_overrides)
        if span is not None:
            span.done(usage=resp.usage, response_model=resp.model, cost=out.cost)
        if self.parse_into is not None:
            for c in out.choices:
                if c.finish_reason != "tool_calls" or c.message.content:
                    c.message.parsed = parse_content(c.message.content, self.parse_into)
        if plan is not None and cached is not None and plan.write:
            await sdk_cache.store(cached, plan, resp, self.request)
        return out

    def hidden_params(self) -> dict[str, Any]:
        """LiteLLM's ``_hidden_params``: which provider served, and the parameters dropped for it."""
        return {"custom_llm_provider": self.provider.name, "dropped_params": list(self.dropped)}

    async def stream(self) -> AsyncIterator[results.ModelResponseStream]:
        guard = None
        if self.guardrails is not None:
            await self.guardrails.pre_call(self.request)
            guard = self.guardrails.stream()
        # a guarded call neither reads nor writes the cache (a cached answer would skip its guardrails)
        cached = sdk_cache.active_cache() if self.guardrails is None else None
        plan = cached.plan(self.request, self.cache_group, self.cache_controls) if cached is not None else None
        if plan is not None and cached is not None:
            replay = await sdk_cache.stream_hit(cached, plan, self.request, self.hidden_params())
            if replay is not None:
                for replayed in replay:
                    yield replayed
                return
        span = traces_sdk.begin("chat", self.model_id, self.provider.name)
        try:
            opening = engine.chat_stream(
                self.provider,
                self.request,
                model=self.model_id,
                endpoint=self.endpoint,
                timeout=self.timeout,
                policy=self.policy,
            )
            s = await (self.guardrails.during_call(opening) if self.guardrails is not None else opening)
        except BaseException as exc:
            if span is not None:
                span.failed(exc)
            raise
        if span is not None:
            span.sent()
        encoder: StreamEncoder | FunctionCallChunks | None = None
        hidden = self.hidden_params()
        # a structured reply: each chunk's ``parsed`` is what the JSON so far says, the last the whole object
        structured = PartialParser(self.parse_into) if self.wants_json else None
        failure: BaseException | None = None
        tap: list[ir.StreamEvent] | None = [] if plan is not None and plan.write else None
        try:
            async for ev in s.events():
                if tap is not None:
                    tap.append(ev)
                if encoder is None:
                    encoder = StreamEncoder(s.meta, include_usage=self.user_wants_usage)
                    if self.request.legacy_functions:
                        encoder = FunctionCallChunks(encoder)
                if guard is not None:
                    checked = guard.feed(ev)
                    if checked is None:
                        continue
                    ev = checked
                chunk = encoder.chunk(ev)
                if chunk is not None:
                    out = convert.stream_chunk(chunk)
                    _mark(out, hidden)
                    if structured is not None and out.choices:
                        _parse_chunk(out, structured)
                    yield out
            if encoder is not None and guard is not None and (held := await guard.close()) is not None:
                chunk = encoder.chunk(held)
                if chunk is not None:
                    out = convert.stream_chunk(chunk)
                    _mark(out, hidden)
                    if structured is not None and out.choices:
                        _parse_chunk(out, structured)
                    yield out
            if encoder is not None:
                tail = encoder.usage_chunk()
                if tail is not None:
                    last = convert.stream_chunk(tail)
                    _mark(last, hidden)
                    usage = usage_from_wire(tail["usage"])
                    last.cost = cost_for_response(
                        last.model or self.model_id, self.provider.name, usage, self.price_overrides
                    )
                    yield last
            if tap is not None and plan is not None and cached is not None:
                await sdk_cache.store_stream(cached, plan, s.meta, tap, self.request)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            s.close()
            if span is not None:
                if failure is not None and not isinstance(failure, GeneratorExit):
                    span.failed(failure)
                else:
                    span.done(usage=s.usage, response_model=s.meta.model)


def _settings_of(provider: Any, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The provider's own settings (a cloud's project, region, credentials), taken out of ``kwargs``."""
    keys = provider.settings_keys
    if not keys:
        return None
    return {k: kwargs.pop(k) for k in list(kwargs) if k in keys and kwargs[k] is not None} or None


def _parse_chunk(chunk: Any, parser: PartialParser) -> None:
    """``chunk.parsed``: the structured reply so far; on the chunk that finishes it, the validated whole."""
    choice = chunk.choices[0]
    delta = choice.delta.content
    parsed = parser.feed(delta) if delta else parser.partial() if parser.text else None
    if choice.finish_reason is not None and (choice.finish_reason != "tool_calls" or parser.text):
        parsed = parser.finish()
    chunk.parsed = parsed


def _guardrails(requested: Any) -> Any:
    """The call's guardrails run (``guardrails=[...]`` and the configured ``default_on`` ones), or ``None``;
    the guardrails package is imported only when some are configured or asked for."""
    import sys

    if requested is None and "llmswitch.guardrails.sdk" not in sys.modules:
        return None
    from llmswitch.guardrails.sdk import start_for_call

    return start_for_call(requested)


def _mark(result: Any, hidden: dict[str, Any]) -> None:
    # results are msgspec Structs with a __dict__: extra attributes are allowed and never serialized
    result._hidden_params = hidden


def _global_drop_params() -> bool:
    """LiteLLM's module-wide switch: ``llmswitch.drop_params = True``."""
    import llmswitch

    return getattr(llmswitch, "drop_params", False) is True


def _prepare(model: str, messages: list[Any], stream: bool, kwargs: dict[str, Any]) -> _Call:
    kwargs["stream"] = stream or None
    return _Call(model, messages, kwargs)


async def acompletion(
    model: str,
    messages: list[Any],
    *,
    stream: bool = False,
    tools: list[Any] | None = None,
    tool_choice: Any = None,
    response_format: Any = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    stop: str | list[str] | None = None,
    stream_options: Mapping[str, Any] | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    timeout: float | None = 600,
    num_retries: int = 2,
    **provider_extras: Any,
) -> Any:
    """Chat completion from any provider, as an OpenAI-shaped result (an async iterator of chunks when
    ``stream=True``).

        >>> r = await llmswitch.acompletion("anthropic/claude-sonnet-4-20250514",
        ...                                 [{"role": "user", "content": "Hi"}])
        >>> r.choices[0].message.content
    """
    call = _prepare(
        model,
        messages,
        stream,
        dict(
            provider_extras,
            tools=tools,
            tool_choice=tool_choice,
            response_format=response_format,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            stream_options=dict(stream_options) if stream_options else None,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
            num_retries=num_retries,
        ),
    )
    if stream:
        return call.stream()
    return await call.run()


def completion(
    model: str,
    messages: list[Any],
    *,
    stream: bool = False,
    tools: list[Any] | None = None,
    tool_choice: Any = None,
    response_format: Any = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    stop: str | list[str] | None = None,
    stream_options: Mapping[str, Any] | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    timeout: float | None = 600,
    num_retries: int = 2,
    **provider_extras: Any,
) -> Any:
    """Chat completion from any provider, as an OpenAI-shaped result (an iterator of chunks when
    ``stream=True``; leaving the loop early, ``close()`` or ``with`` closes the upstream connection).

        >>> r = llmswitch.completion("openai/gpt-4o", [{"role": "user", "content": "Hi"}])
        >>> r.choices[0].message.content, r.usage.total_tokens
    """
    call = _prepare(
        model,
        messages,
        stream,
        dict(
            provider_extras,
            tools=tools,
            tool_choice=tool_choice,
            response_format=response_format,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            stream_options=dict(stream_options) if stream_options else None,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
            num_retries=num_retries,
        ),
    )
    if stream:
        return SyncIterator(call.stream())
    return run(call.run())
