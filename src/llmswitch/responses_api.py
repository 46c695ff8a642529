"""The SDK's Responses API: ``llmswitch.responses(...)`` / ``aresponses(...)``, LiteLLM's names.

OpenAI's own models are called at its ``/responses`` endpoint with the caller's body as written (the
model id rewritten), so every Responses feature OpenAI has works and the answer is OpenAI's, byte for
byte. Any other provider answers through the IR: the request is read as
:mod:`llmswitch.dialects.openai_responses` reads it, sent as the provider's chat call, and the answer
written back as a Response object (a stream as the Responses API's typed events).

Results are read like the openai SDK's: ``r.output[0].content[0].text``, ``r.output_text``,
``r.usage.input_tokens``; ``r.model_dump()`` gives the JSON. A stream yields events with ``.type``
(``response.output_text.delta`` …, ``response.completed``).

    >>> r = llmswitch.responses(model="openai/gpt-4.1-mini", input="Hi")  # doctest: +SKIP
    >>> r.output_text  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from llmswitch import engine
from llmswitch._sync import SyncIterator, run
from llmswitch.dialects import openai_responses
from llmswitch.dialects._json import dumps, loads
from llmswitch.dialects.sse import SSEParser
from llmswitch.errors import APIResponseValidationError, ConfigError
from llmswitch.network import network_from
from llmswitch.providers import params, resolve_model
from llmswitch.providers.base import HTTPCall, merge_headers
from llmswitch.router.retry import RetryPolicy

_NATIVE = frozenset(("openai", "azure"))
_CALL_KEYS = (
    "extra_headers",
    "custom_llm_provider",
    "api_version",
    "headers",
    "outbound_proxy",
    "ssl_verify",
    "ssl_certificate",
)


class ResponseObject:
    """A Response (or a stream event, or any part of one) read by attribute, as the openai SDK's are."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        try:
            return _wrap(self._data[name])
        except KeyError:
            return None

    def __getitem__(self, name: str) -> Any:
        return _wrap(self._data[name])

    def get(self, name: str, default: Any = None) -> Any:
        return _wrap(self._data.get(name, default))

    @property
    def output_text(self) -> str:
        """The text of every ``output_text`` part, joined (the openai SDK's convenience)."""
        return "".join(
            c.get("text", "")
            for item in self._data.get("output") or []
            if item.get("type") == "message"
            for c in item.get("content") or []
            if c.get("type") == "output_text"
        )

    def model_dump(self) -> dict[str, Any]:
        return self._data

    def __repr__(self) -> str:
        return f"ResponseObject({self._data!r})"


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return ResponseObject(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


async def aresponses(
    *,
    model: str,
    input: Any,
    stream: bool = False,
    api_base: str | None = None,
    api_key: str | None = None,
    timeout: float | None = 600,
    num_retries: int = 2,
    **kwargs: Any,
) -> Any:
    """A Responses API call to any provider: a :class:`ResponseObject`, or with ``stream=True`` an async
    iterator of its typed events."""
    call_opts = {k: kwargs.pop(k) for k in _CALL_KEYS if k in kwargs}
    provider, model_id = resolve_model(model, call_opts.get("custom_llm_provider"))
    settings = {k: kwargs.pop(k) for k in list(kwargs) if k in provider.settings_keys} or None
    endpoint = provider.endpoint(
        api_base=api_base or kwargs.pop("base_url", None),
        api_key=api_key,
        extra_headers=call_opts.get("extra_headers") or call_opts.get("headers"),
        api_version=call_opts.get("api_version"),
        network=network_from(call_opts, model),
        settings=settings,
    )
    body: dict[str, Any] = {k: v for k, v in kwargs.items() if v is not None}
    body["model"] = model_id
    body["input"] = input
    if stream:
        body["stream"] = True
    t = float(timeout) if timeout is not None else None
    if not isinstance(num_retries, int) or num_retries < 0:
        raise ConfigError("num_retries must be a non-negative integer")
    policy = RetryPolicy(num_retries=num_retries)
    if provider.name in _NATIVE:
        headers = merge_headers(provider.auth_headers(endpoint), endpoint.extra_headers)  # type: ignore[attr-defined]
        if stream:
            headers["accept"] = "text/event-stream"
        call = engine.with_network(HTTPCall(f"{endpoint.api_base}/responses", headers, dumps(body)), endpoint)
        if stream:
            return _native_stream(provider, call, model_id, t, policy)
        raw = await engine.chat_raw(provider, call, model=model_id, timeout=t, policy=policy)
        data = loads(raw)
        if not isinstance(data, dict):
            raise APIResponseValidationError(
                f"{provider.name}: unexpected response {raw[:200]!r}", provider=provider.name
            )
        return ResponseObject(data)
    # any other provider: the request as the IR reads it, answered through its chat API
    req = openai_responses.decode_request(body)
    req, _dropped = params.apply(
        req, provider.policy or provider.name, model=model_id, deployment=model, dialect=provider.dialect
    )
    if stream:
        return _translated_stream(provider, req, model_id, endpoint, t, policy, body)
    resp = await engine.chat(provider, req, model=model_id, endpoint=endpoint, timeout=t, policy=policy)
    return ResponseObject(openai_responses.encode_response(resp, body))


async def _native_stream(
    provider: Any, call: HTTPCall, model: str, timeout: float | None, policy: RetryPolicy
) -> AsyncIterator[ResponseObject]:
    resp = await engine.open_raw_stream(provider, call, model=model, timeout=timeout, policy=policy)
    parser = SSEParser()
    try:
        async for chunk in resp.iter_chunks():
            for ev in parser.feed(chunk):
                data = loads(ev.data) if ev.data and ev.data != "[DONE]" else None
                if isinstance(data, dict):
                    yield ResponseObject(data)
        for ev in parser.close():
            data = loads(ev.data) if ev.data and ev.data != "[DONE]" else None
            if isinstance(data, dict):
                yield ResponseObject(data)
    finally:
        resp.close()


async def _translated_stream(
    provider: Any, req: Any, model: str, endpoint: Any, timeout: float | None, policy: RetryPolicy, body: dict[str, Any]
) -> AsyncIterator[ResponseObject]:
    s = await engine.chat_stream(provider, req, model=model, endpoint=endpoint, timeout=timeout, policy=policy)
    encoder: openai_responses.StreamEncoder | None = None
    parser = SSEParser()
    try:
        async for ev in s.events():
            if encoder is None:
                encoder = openai_responses.StreamEncoder(s.meta, request=body)
            for out in parser.feed(encoder.encode(ev)):
                yield ResponseObject(loads(out.data))
        if encoder is None:
            encoder = openai_responses.StreamEncoder(s.meta, request=body)
        for out in parser.feed(encoder.close()):
            yield ResponseObject(loads(out.data))
    finally:
        s.close()


def responses(**kwargs: Any) -> Any:
    """:func:`aresponses`, blocking; a stream is a plain iterator."""
    if kwargs.get("stream"):

        async def opened() -> AsyncIterator[ResponseObject]:
            events = await aresponses(**kwargs)
            async for ev in events:
                yield ev

        it: Iterator[ResponseObject] = SyncIterator(opened())
        return it
    return run(aresponses(**kwargs))
