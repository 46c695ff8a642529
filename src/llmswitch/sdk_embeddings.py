"""The SDK's embeddings and token counting: ``embedding`` / ``aembedding`` and ``token_counter`` /
``atoken_counter``, LiteLLM's names (``llmswitch.sdk`` has the chat calls).

    >>> r = llmswitch.embedding("openai/text-embedding-3-small", ["hello", "world"])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from llmswitch import convert, engine, ir, results
from llmswitch._sync import run
from llmswitch.cost import cost_for_response
from llmswitch.dialects import openai_chat
from llmswitch.errors import APIError, ConfigError
from llmswitch.network import network_from
from llmswitch.providers import resolve_model
from llmswitch.router.retry import RetryPolicy
from llmswitch.sdk import _CALL_KEYS, _settings_of


async def aembedding(
    model: str,
    input: str | list[str],
    *,
    dimensions: int | None = None,
    encoding_format: str | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    timeout: float | None = 600,
    num_retries: int = 2,
    **provider_extras: Any,
) -> results.EmbeddingResponse:
    """Embeddings from any provider: ``r.data[i].embedding`` is a list of floats.

    >>> r = await llmswitch.aembedding("openai/text-embedding-3-small", ["hello", "world"])
    """
    call_opts = {k: provider_extras.pop(k) for k in _CALL_KEYS if k in provider_extras}
    provider, model_id = resolve_model(model, call_opts.get("custom_llm_provider"))
    settings = _settings_of(provider, provider_extras)
    texts = [input] if isinstance(input, str) else list(input)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ConfigError("input must be a string or a non-empty list of strings")
    if encoding_format not in (None, "float", "base64"):
        raise ConfigError("encoding_format must be 'float' or 'base64'")
    req = ir.EmbeddingRequest(
        model=model_id,
        input=texts,
        dimensions=dimensions,
        encoding_format=encoding_format,  # type: ignore[arg-type]
        user=provider_extras.pop("user", None),
        extra=provider_extras or None,
    )
    endpoint = provider.endpoint(
        api_base=api_base or call_opts.get("base_url"),
        api_key=api_key,
        extra_headers=call_opts.get("extra_headers"),
        api_version=call_opts.get("api_version"),
        network=network_from(call_opts, model),
        settings=settings,
    )
    resp = await engine.embedding(
        provider,
        req,
        model=model_id,
        endpoint=endpoint,
        timeout=float(timeout) if timeout is not None else None,
        policy=RetryPolicy(num_retries=num_retries),
    )
    out = convert.embedding_response(resp)
    out.cost = cost_for_response(resp.model or model_id, provider.name, resp.usage)
    return out


def embedding(
    model: str,
    input: str | list[str],
    *,
    dimensions: int | None = None,
    encoding_format: str | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    timeout: float | None = 600,
    num_retries: int = 2,
    **provider_extras: Any,
) -> results.EmbeddingResponse:
    """Sync :func:`aembedding`."""
    return run(
        aembedding(
            model,
            input,
            dimensions=dimensions,
            encoding_format=encoding_format,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
            num_retries=num_retries,
            **provider_extras,
        )
    )


async def atoken_counter(
    model: str = "",
    messages: list[Any] | None = None,
    text: str | list[str] | None = None,
    tools: list[Any] | None = None,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    timeout: float | None = 60,
) -> int:
    """:func:`token_counter`, awaited."""
    from llmswitch import count_tokens

    texts = [text] if isinstance(text, str) else list(text or [])
    body: dict[str, Any] = {
        "model": model or "unknown",
        "messages": list(messages or []) + [{"role": "user", "content": t} for t in texts],
    }
    if tools:
        body["tools"] = tools
    req = openai_chat.decode_request(body)
    try:
        provider, model_id = resolve_model(model)
    except ConfigError:
        return count_tokens.estimate_tokens(req)  # a model no provider is known for: estimated, as LiteLLM does
    endpoint = None
    if count_tokens.api_of(provider) is not None:
        try:
            endpoint = provider.endpoint(api_base=api_base, api_key=api_key)
        except APIError:
            endpoint = None  # no key to call the provider's API with: estimate instead
    found = await count_tokens.count_tokens(provider, req, model=model_id, endpoint=endpoint, timeout=timeout)
    return found.total


def token_counter(
    model: str = "",
    custom_tokenizer: Any = None,
    text: str | list[str] | None = None,
    messages: list[Any] | None = None,
    count_response_tokens: bool = False,
    tools: list[Any] | None = None,
    tool_choice: Any = None,
    use_default_image_token_count: bool = False,
    default_token_count: int | None = None,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    timeout: float | None = 60,
) -> int:
    """The input tokens of ``messages`` (or ``text``) for ``model``: LiteLLM's name and signature.

    Anthropic and Gemini models are counted by the provider's own free API (``count_tokens``,
    ``countTokens``) when a key is at hand (``api_key=`` or the provider's environment variable);
    every other model, or one without a key, gets a local estimate (:func:`llmswitch.count_tokens.
    estimate_tokens`: about four characters a token plus OpenAI's per-message overhead).

        >>> llmswitch.token_counter(model="openai/gpt-4o", messages=[{"role": "user", "content": "Hello there!"}])
        9

    ``custom_tokenizer`` is not supported (ConfigError); ``count_response_tokens``, ``tool_choice``,
    ``use_default_image_token_count`` and ``default_token_count`` are accepted for compatibility.
    """
    if custom_tokenizer is not None:
        raise ConfigError("token_counter: custom_tokenizer is not supported by llmswitch")
    return run(atoken_counter(model, messages, text, tools, api_key=api_key, api_base=api_base, timeout=timeout))
