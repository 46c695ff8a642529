"""OpenAI-compatible vendors as rows of data over :class:`OpenAIProvider`.

A row names the vendor, its default base URL (with the ``/v1``-style prefix its docs give), where its
key and base URL come from in the environment, and whether it needs a key at all.
"""

from __future__ import annotations

from typing import NamedTuple

from llmswitch.providers.openai import OpenAIProvider


class Preset(NamedTuple):
    name: str
    api_base: str
    api_key_env: tuple[str, ...]
    api_base_env: tuple[str, ...] = ()
    requires_api_key: bool = True
    max_tokens_key: str = "max_tokens"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # served by providers.ollama (native /api/chat at the root, the OpenAI-compatible API under /v1)
        Preset("ollama", "http://localhost:11434", ("OLLAMA_API_KEY",), ("OLLAMA_API_BASE",), requires_api_key=False),
        Preset("hosted_vllm", "", ("HOSTED_VLLM_API_KEY",), ("HOSTED_VLLM_API_BASE",), requires_api_key=False),
        Preset("groq", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",), ("GROQ_API_BASE",)),
        Preset(
            "together_ai",
            "https://api.together.xyz/v1",
            ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_API_KEY"),
            ("TOGETHER_API_BASE",),
        ),
        Preset("mistral", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",), ("MISTRAL_API_BASE",)),
        Preset("deepseek", "https://api.deepseek.com", ("DEEPSEEK_API_KEY",), ("DEEPSEEK_API_BASE",)),
        Preset(
            "openrouter", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY", "OR_API_KEY"), ("OPENROUTER_API_BASE",)
        ),
        Preset(
            "fireworks_ai",
            "https://api.fireworks.ai/inference/v1",
            ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY"),
            ("FIREWORKS_API_BASE",),
        ),
        Preset("xai", "https://api.x.ai/v1", ("XAI_API_KEY",), ("XAI_API_BASE",)),
    )
}

# names users write for the same vendor
ALIASES = {"together": "together_ai", "fireworks": "fireworks_ai", "vllm": "hosted_vllm", "grok": "xai"}


def preset_provider(name: str) -> OpenAIProvider:
    row = PRESETS[name]
    provider = OpenAIProvider()
    provider.name = row.name
    provider.default_api_base = row.api_base
    provider.api_key_env = row.api_key_env
    provider.api_base_env = row.api_base_env
    provider.requires_api_key = row.requires_api_key
    provider.max_tokens_key = row.max_tokens_key
    # vendors' answers carry quirks (usage elsewhere, other finish reasons) that the full path
    # normalizes; only a plain OpenAI-format server is relayed as is
    provider.passthrough = row.name == "hosted_vllm"
    return provider
