"""Providers by name, imported lazily, and model strings resolved to (provider, model id).

    >>> provider, model = resolve_model("groq/llama-3.3-70b-versatile")
    >>> provider.name, model
    ('groq', 'llama-3.3-70b-versatile')

Built-in providers use the same registry as third-party ones (:func:`register_provider`).
"""

from __future__ import annotations

import importlib

from llmswitch.errors import ConfigError
from llmswitch.providers.base import Provider

_IMPORTS: dict[str, str] = {
    "openai": "llmswitch.providers.openai:OpenAIProvider",
    "azure": "llmswitch.providers.azure:AzureProvider",
    "anthropic": "llmswitch.providers.anthropic:AnthropicProvider",
    "gemini": "llmswitch.providers.gemini:GeminiProvider",
    "vertex_ai": "llmswitch.providers.vertex:VertexProvider",
    "bedrock": "llmswitch.providers.bedrock:BedrockProvider",
    # Ollama's native API (its preset row still says where it runs for config_from_env)
    "ollama": "llmswitch.providers.ollama:OllamaProvider",
    "ollama_chat": "llmswitch.providers.ollama:OllamaChatProvider",
    # a GGUF model run in this process (llama-cpp-python, the llamacpp extra)
    "llamacpp": "llmswitch.providers.llamacpp:LlamaCppProvider",
}
_loaded: dict[str, Provider] = {}


def register_provider(name: str, provider: Provider | str) -> None:
    """Make ``name/<model>`` reach ``provider`` (an instance, or ``"module:Class"`` imported on first use)."""
    if isinstance(provider, str):
        _IMPORTS[name] = provider
        _loaded.pop(name, None)
    else:
        _loaded[name] = provider


def get_provider(name: str) -> Provider:
    p = _loaded.get(name)
    if p is not None:
        return p
    from llmswitch.providers import presets

    name = presets.ALIASES.get(name, name)
    if name in _loaded:
        return _loaded[name]
    if name in _IMPORTS:
        module, _, attr = _IMPORTS[name].partition(":")
        p = getattr(importlib.import_module(module), attr)()
    elif name in presets.PRESETS:
        p = presets.preset_provider(name)
    else:
        raise ConfigError(f"unknown provider {name!r}; known: {', '.join(known_providers())}")
    _loaded[name] = p
    return p


def known_providers() -> list[str]:
    from llmswitch.providers import presets

    return sorted({*_IMPORTS, *presets.PRESETS, *_loaded})


# checked in order: Gemini's "text-embedding-004" before OpenAI's "text-embedding-"
BARE_MODEL_PREFIXES = (
    (("gemini-", "gemma-", "text-embedding-004", "text-embedding-005", "embedding-"), "gemini"),
    (("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "davinci", "babbage", "omni-moderation"), "openai"),
    (("claude-",), "anthropic"),
)


def provider_name_for(model: str) -> str | None:
    """The provider a bare, well-known model name belongs to (``gpt-4o`` -> ``openai``), else None."""
    for starts, name in BARE_MODEL_PREFIXES:
        if model.startswith(starts):
            return name
    return None


def resolve_model(model: str, provider: str | None = None) -> tuple[Provider, str]:
    """``"provider/model"`` (or a bare well-known name) -> (provider, the provider's model id)."""
    if not isinstance(model, str) or not model:
        raise ConfigError("model must be a non-empty string such as 'openai/gpt-4o'")
    if provider is not None:
        prefix, _, rest = model.partition("/")
        if prefix == provider and rest:
            model = rest
        return get_provider(provider).for_model(model), model
    prefix, sep, rest = model.partition("/")
    if sep and rest:
        try:
            return get_provider(prefix).for_model(rest), rest
        except ConfigError:
            pass
    bare = provider_name_for(model)
    if bare is not None:
        return get_provider(bare), model
    raise ConfigError(
        f"cannot tell the provider of model {model!r}: write it as 'provider/model' "
        f"(providers: {', '.join(known_providers())})"
    )
