"""Model strings -> providers, preset rows (base URLs, key and base env vars), Azure URL building."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmswitch import ir
from llmswitch import providers as registry
from llmswitch.errors import AuthenticationError, ConfigError
from llmswitch.providers import get_provider, known_providers, resolve_model
from llmswitch.providers.azure import DEFAULT_API_VERSION, AzureProvider
from llmswitch.providers.base import Endpoint, Provider
from llmswitch.providers.openai import OpenAIProvider

RECORDED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "recorded"
ENV_VARS = sorted(
    {
        name
        for provider in (
            "openai",
            "azure",
            "groq",
            "together_ai",
            "mistral",
            "deepseek",
            "openrouter",
            "fireworks_ai",
            "xai",
            "ollama",
            "hosted_vllm",
        )
        for name in (*get_provider(provider).api_key_env, *get_provider(provider).api_base_env)
    }
    | {"AZURE_API_VERSION"}
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


class Stub(Provider):
    """Stands in for a provider whose module is not the subject here."""

    def __init__(self, name: str) -> None:
        self.name = name


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> None:
    # bare claude-*/gemini-* names must reach these providers whether or not their modules exist yet
    for name in ("anthropic", "gemini"):
        monkeypatch.setitem(registry._loaded, name, Stub(name))


# ---------------------------------------------------------------- resolve_model


@pytest.mark.usefixtures("stubs")
@pytest.mark.parametrize(
    ("model", "provider", "model_id"),
    [
        ("openai/gpt-4o", "openai", "gpt-4o"),
        ("azure/my-deployment", "azure", "my-deployment"),
        ("groq/llama-3.3-70b-versatile", "groq", "llama-3.3-70b-versatile"),
        (
            "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "together_ai",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        ),
        ("mistral/mistral-small-latest", "mistral", "mistral-small-latest"),
        ("deepseek/deepseek-chat", "deepseek", "deepseek-chat"),
        ("openrouter/anthropic/claude-haiku-4.5", "openrouter", "anthropic/claude-haiku-4.5"),
        ("fireworks_ai/accounts/fireworks/models/llama-v3", "fireworks_ai", "accounts/fireworks/models/llama-v3"),
        ("xai/grok-4", "xai", "grok-4"),
        ("ollama/qwen3:8b", "ollama", "qwen3:8b"),
        ("hosted_vllm/Qwen/Qwen3-8B", "hosted_vllm", "Qwen/Qwen3-8B"),
        ("anthropic/claude-sonnet-4-20250514", "anthropic", "claude-sonnet-4-20250514"),
        ("gemini/gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
        # aliases users write
        ("together/meta-llama/Llama-3-8b", "together_ai", "meta-llama/Llama-3-8b"),
        ("fireworks/llama", "fireworks_ai", "llama"),
        ("vllm/my-model", "hosted_vllm", "my-model"),
        ("grok/grok-4", "xai", "grok-4"),
        # bare well-known names
        ("gpt-4o", "openai", "gpt-4o"),
        ("gpt-5-nano", "openai", "gpt-5-nano"),
        ("o1", "openai", "o1"),
        ("o3", "openai", "o3"),
        ("o3-mini", "openai", "o3-mini"),
        ("o4-mini", "openai", "o4-mini"),
        ("chatgpt-4o-latest", "openai", "chatgpt-4o-latest"),
        ("text-embedding-3-small", "openai", "text-embedding-3-small"),
        ("claude-sonnet-4-20250514", "anthropic", "claude-sonnet-4-20250514"),
        ("claude-3-5-haiku-latest", "anthropic", "claude-3-5-haiku-latest"),
        ("gemini-2.5-pro", "gemini", "gemini-2.5-pro"),
        ("gemma-3-27b-it", "gemini", "gemma-3-27b-it"),
    ],
)
def test_resolve_model(model: str, provider: str, model_id: str) -> None:
    p, mid = resolve_model(model)
    assert (p.name, mid) == (provider, model_id)


@pytest.mark.usefixtures("stubs")
def test_bare_gemini_embedding_name() -> None:
    assert resolve_model("embedding-001")[0].name == "gemini"


@pytest.mark.usefixtures("stubs")
def test_bare_text_embedding_004_is_gemini() -> None:
    assert resolve_model("text-embedding-004")[0].name == "gemini"


@pytest.mark.parametrize(
    ("model", "custom", "provider", "model_id"),
    [
        ("meta-llama/Llama-3-8b", "together_ai", "together_ai", "meta-llama/Llama-3-8b"),
        ("together_ai/meta-llama/Llama-3-8b", "together_ai", "together_ai", "meta-llama/Llama-3-8b"),
        ("gpt-4o", "azure", "azure", "gpt-4o"),
        ("my-model", "openai", "openai", "my-model"),
    ],
)
def test_resolve_model_with_custom_llm_provider(model: str, custom: str, provider: str, model_id: str) -> None:
    p, mid = resolve_model(model, custom)
    assert (p.name, mid) == (provider, model_id)


@pytest.mark.parametrize("model", ["acme/some-model", "llama-3-8b", "openai/", "/gpt-4o"])
def test_unknown_model_error_lists_providers(model: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_model(model)
    msg = str(info.value)
    assert repr(model) in msg
    assert "'provider/model'" in msg
    for name in ("openai", "azure", "groq", "together_ai", "xai", "ollama"):
        assert name in msg


@pytest.mark.parametrize("model", [None, "", 42])
def test_model_must_be_a_non_empty_string(model: object) -> None:
    with pytest.raises(ConfigError, match="non-empty string"):
        resolve_model(model)  # type: ignore[arg-type]


def test_unknown_custom_provider_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_model("m", "acme")
    assert "unknown provider 'acme'" in str(info.value)
    assert all(name in str(info.value) for name in known_providers())


def test_register_provider_by_instance_and_import_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_IMPORTS", dict(registry._IMPORTS))
    monkeypatch.setattr(registry, "_loaded", dict(registry._loaded))
    mine = Stub("mine")
    registry.register_provider("mine", mine)
    assert resolve_model("mine/x") == (mine, "x")
    assert "mine" in known_providers()
    registry.register_provider("openai_like", "llmswitch.providers.openai:OpenAIProvider")
    p, mid = resolve_model("openai_like/m")
    assert (type(p), mid) == (OpenAIProvider, "m")
    assert get_provider("openai_like") is p  # built once, then reused


# ---------------------------------------------------------------- presets: where and as whom

PRESET_BASES = {
    # the base URL each vendor's docs give for its OpenAI-compatible API
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "together_ai": "https://api.together.xyz/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com",
    "openrouter": "https://openrouter.ai/api/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "xai": "https://api.x.ai/v1",
    # Ollama's default is its server root and its own API (tests/providers/test_ollama.py); its
    # OpenAI-compatible API is what an api_base ending in /v1 reaches
}
KEY_ENV = {
    "openai": ["OPENAI_API_KEY"],
    "groq": ["GROQ_API_KEY"],
    "together_ai": ["TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_API_KEY"],
    "mistral": ["MISTRAL_API_KEY"],
    "deepseek": ["DEEPSEEK_API_KEY"],
    "openrouter": ["OPENROUTER_API_KEY", "OR_API_KEY"],
    "fireworks_ai": ["FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY"],
    "xai": ["XAI_API_KEY"],
    "ollama": ["OLLAMA_API_KEY"],
    "hosted_vllm": ["HOSTED_VLLM_API_KEY"],
    "azure": ["AZURE_API_KEY", "AZURE_OPENAI_API_KEY"],
}
BASE_ENV = {
    "openai": ["OPENAI_API_BASE", "OPENAI_BASE_URL"],
    "groq": ["GROQ_API_BASE"],
    "together_ai": ["TOGETHER_API_BASE"],
    "mistral": ["MISTRAL_API_BASE"],
    "deepseek": ["DEEPSEEK_API_BASE"],
    "openrouter": ["OPENROUTER_API_BASE"],
    "fireworks_ai": ["FIREWORKS_API_BASE"],
    "xai": ["XAI_API_BASE"],
    "ollama": ["OLLAMA_API_BASE"],
    "hosted_vllm": ["HOSTED_VLLM_API_BASE"],
    "azure": ["AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT"],
}


@pytest.mark.parametrize(("name", "base"), PRESET_BASES.items())
def test_default_base_urls(name: str, base: str) -> None:
    p = get_provider(name)
    ep = p.endpoint(api_key="k")
    assert ep.api_base == base
    assert p.chat_url(ep, "m") == f"{base}/chat/completions"  # type: ignore[attr-defined]
    assert p.embeddings_url(ep, "m") == f"{base}/embeddings"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("openai", "openai"),
        ("groq", "groq"),
        ("together", "together_ai"),
        ("mistral", "mistral"),
        ("deepseek", "deepseek"),
        ("openrouter", "openrouter"),
        ("xai", "xai"),
    ],
)
def test_default_chat_url_is_where_the_recorded_traffic_went(folder: str, name: str) -> None:
    urls = {
        json.loads(f.read_text())["request"]["url"]
        for f in (RECORDED / folder).glob("*.json")
        if json.loads(f.read_text())["request"]["url"].endswith("/chat/completions")
    }
    p = get_provider(name)
    assert urls == {p.chat_url(p.endpoint(api_key="k"), "m")}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "env"), KEY_ENV.items())
def test_api_key_from_env_in_order(monkeypatch: pytest.MonkeyPatch, name: str, env: list[str]) -> None:
    p = get_provider(name)
    base = {"api_base": "http://127.0.0.1:1"}
    for i, var in reversed(list(enumerate(env))):  # set the least preferred first; each earlier one takes over
        monkeypatch.setenv(var, f"key-{i}")
        assert p.endpoint(**base).api_key == f"key-{i}"
    assert p.endpoint(api_key="explicit", **base).api_key == "explicit"


@pytest.mark.parametrize("name", [n for n in KEY_ENV if n not in ("ollama", "hosted_vllm")])
def test_missing_key_names_the_env_var(name: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        get_provider(name).endpoint(api_base="http://127.0.0.1:1")
    assert KEY_ENV[name][0] in str(info.value)
    assert info.value.status_code == 401


@pytest.mark.parametrize("name", ["ollama", "hosted_vllm"])
def test_local_servers_need_no_key(name: str) -> None:
    assert get_provider(name).endpoint(api_base="http://127.0.0.1:8000/v1").api_key is None
    call = get_provider(name).chat_call(_req(), model="m", endpoint=Endpoint("http://127.0.0.1:8000/v1", None))
    assert "authorization" not in call.headers


@pytest.mark.parametrize(("name", "env"), BASE_ENV.items())
def test_api_base_from_env_in_order(monkeypatch: pytest.MonkeyPatch, name: str, env: list[str]) -> None:
    p = get_provider(name)
    for i, var in reversed(list(enumerate(env))):
        monkeypatch.setenv(var, f"http://10.0.0.{i}:8000/v1/")
        assert p.endpoint(api_key="k").api_base == f"http://10.0.0.{i}:8000/v1"  # trailing slash dropped
    assert p.endpoint(api_key="k", api_base="http://explicit/v1").api_base == "http://explicit/v1"


@pytest.mark.parametrize(("name", "env"), [("hosted_vllm", "HOSTED_VLLM_API_BASE"), ("azure", "AZURE_API_BASE")])
def test_providers_without_a_default_base_say_how_to_set_one(name: str, env: str) -> None:
    with pytest.raises(ConfigError, match=env):
        get_provider(name).endpoint(api_key="k")


def _req(stream: bool = False) -> ir.Request:
    return ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart("hi")])], stream=stream)


def test_openai_family_auth_and_headers() -> None:
    p = get_provider("groq")
    call = p.chat_call(_req(), model="m", endpoint=p.endpoint(api_key="gk", extra_headers={"x-trace": "1"}))
    assert call.headers == {
        "content-type": "application/json",
        "accept": "application/json",
        "authorization": "Bearer gk",
        "x-trace": "1",
    }
    assert call.method == "POST"
    streamed = p.chat_call(_req(stream=True), model="m", endpoint=p.endpoint(api_key="gk"))
    assert streamed.headers["accept"] == "text/event-stream"


@pytest.mark.parametrize(
    ("name", "key"), [("openai", "max_completion_tokens"), ("groq", "max_tokens"), ("azure", "max_tokens")]
)
def test_max_tokens_key(name: str, key: str) -> None:
    p = get_provider(name)
    req = _req()
    req.max_tokens = 64
    body = json.loads(p.chat_call(req, model="m", endpoint=Endpoint("http://x", "k")).body)
    other = ({"max_tokens", "max_completion_tokens"} - {key}).pop()
    assert (body[key], other in body) == (64, False)


# ---------------------------------------------------------------- Azure


def _azure_url(api_base: str, deployment: str = "dep", **kw: str) -> str:
    p = AzureProvider()
    return p.chat_url(p.endpoint(api_base=api_base, api_key="k", **kw), deployment)


@pytest.mark.parametrize(
    ("base", "kw", "url"),
    [
        (
            "https://res.openai.azure.com",
            {},
            f"https://res.openai.azure.com/openai/deployments/dep/chat/completions?api-version={DEFAULT_API_VERSION}",
        ),
        (
            "https://res.openai.azure.com/",
            {"api_version": "2025-01-01-preview"},
            "https://res.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2025-01-01-preview",
        ),
        (
            "https://res.openai.azure.com/openai/deployments/other",
            {"api_version": "2024-06-01"},
            "https://res.openai.azure.com/openai/deployments/other/chat/completions?api-version=2024-06-01",
        ),
        (
            "https://rubyllm.services.ai.azure.com/models",
            {"api_version": "2024-05-01-preview"},
            "https://rubyllm.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview",
        ),
    ],
)
def test_azure_urls(base: str, kw: dict[str, str], url: str) -> None:
    assert _azure_url(base, **kw) == url


def test_azure_v1_base_is_used_as_an_openai_compatible_base() -> None:
    url = _azure_url("https://res.openai.azure.com/openai/v1", deployment="gpt-4o")
    assert url.split("?")[0] == "https://res.openai.azure.com/openai/v1/chat/completions"
    assert "/deployments/" not in url


def test_azure_api_version_from_env_and_kw_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_API_VERSION", "2024-12-01-preview")
    assert _azure_url("https://r.openai.azure.com").endswith("?api-version=2024-12-01-preview")
    assert _azure_url("https://r.openai.azure.com", api_version="2025-04-01-preview").endswith(
        "?api-version=2025-04-01-preview"
    )


def test_azure_embeddings_url() -> None:
    p = AzureProvider()
    ep = p.endpoint(api_base="https://r.openai.azure.com", api_key="k", api_version="2024-10-21")
    assert (
        p.embeddings_url(ep, "emb")
        == "https://r.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"
    )


def test_azure_recorded_url_and_api_key_header(monkeypatch: pytest.MonkeyPatch) -> None:
    fx = json.loads((RECORDED / "azure" / "chat_stream_tool_call_usage.json").read_text())
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://fake-azure-endpoint.openai.azure.com")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azk")
    p, deployment = resolve_model("azure/gpt-4o-mini")
    call = p.chat_call(_req(stream=True), model=deployment, endpoint=p.endpoint(api_version="2024-12-01-preview"))
    assert call.url == fx["request"]["url"]
    assert call.headers["api-key"] == "azk"
    assert "authorization" not in call.headers
