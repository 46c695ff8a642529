"""Azure OpenAI: deployment URLs, an ``api-version`` query parameter and the ``api-key`` header.

``azure/<deployment>`` with ``api_base`` the resource (``https://NAME.openai.azure.com``). An
``api_base`` that already points at an ``/openai/v1`` or a ``/models`` (AI Foundry) endpoint is used as
an OpenAI-compatible base instead.
"""

from __future__ import annotations

from llmswitch.providers.base import Endpoint
from llmswitch.providers.openai import OpenAIProvider
from llmswitch.providers.paths import path_segment

DEFAULT_API_VERSION = "2024-10-21"


class AzureProvider(OpenAIProvider):
    name = "azure"
    default_api_base = ""
    api_key_env = ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY")
    api_base_env = ("AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT")
    max_tokens_key = "max_tokens"
    # Azure adds content-filter results and a first chunk without choices: normalized by the full path
    passthrough = False

    def auth_headers(self, endpoint: Endpoint) -> dict[str, str]:
        h = {"content-type": "application/json", "accept": "application/json"}
        if endpoint.api_key:
            h["api-key"] = endpoint.api_key
        return h

    def _url(self, endpoint: Endpoint, deployment: str, op: str) -> str:
        import os

        version = endpoint.api_version or os.environ.get("AZURE_API_VERSION") or DEFAULT_API_VERSION
        base = endpoint.api_base
        if base.endswith(("/openai/v1", "/models")):
            return f"{base}/{op}?api-version={version}"
        if "/openai/deployments/" in base:
            return f"{base}/{op}?api-version={version}"
        deployment = path_segment(deployment, provider=self.name, what="deployment")
        return f"{base}/openai/deployments/{deployment}/{op}?api-version={version}"

    def chat_url(self, endpoint: Endpoint, model: str) -> str:
        return self._url(endpoint, model, "chat/completions")

    def embeddings_url(self, endpoint: Endpoint, model: str) -> str:
        return self._url(endpoint, model, "embeddings")
