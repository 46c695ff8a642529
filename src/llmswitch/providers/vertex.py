"""Google Vertex AI: ``vertex_ai/<model>`` for Gemini models, on a Google Cloud project.

The wire format is Gemini's (:mod:`llmswitch.providers.gemini`), under the project's publisher path:

    {root}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent
    {root}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:streamGenerateContent?alt=sse

with an OAuth access token (``Authorization: Bearer``) from :mod:`llmswitch.providers.google_credentials`.
LiteLLM's settings: ``vertex_project`` (else ``VERTEXAI_PROJECT``, ``GOOGLE_CLOUD_PROJECT``, the
credentials' project), ``vertex_location`` (else ``VERTEXAI_LOCATION``, ``GOOGLE_CLOUD_LOCATION``,
``us-central1``), ``vertex_credentials``; the ``vertex_ai_*`` spellings too. The root is
``https://{location}-aiplatform.googleapis.com`` (``https://aiplatform.googleapis.com`` for ``global``)
unless ``api_base`` names another.

    >>> r = llmswitch.completion("vertex_ai/gemini-2.5-flash", msgs, vertex_project="my-project",
    ...                          vertex_location="europe-west4", vertex_credentials="sa.json")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from llmswitch import ir
from llmswitch.dialects import anthropic_messages
from llmswitch.dialects._json import dumps
from llmswitch.errors import ConfigError
from llmswitch.network import Network
from llmswitch.providers import get_provider
from llmswitch.providers.anthropic import AnthropicProvider
from llmswitch.providers.base import Endpoint, HTTPCall, Provider, merge_headers
from llmswitch.providers.gemini import GeminiProvider
from llmswitch.providers.google_credentials import GoogleToken, load_credentials
from llmswitch.providers.paths import path_segment

_VERSIONED = re.compile(r"/v\d+(?:beta\d*)?$")
_ALIASES = {"vertex_ai_project": "vertex_project", "vertex_ai_location": "vertex_location",
            "vertex_ai_credentials": "vertex_credentials"}  # fmt: skip


class VertexProvider(GeminiProvider):
    """``vertex_ai/<model>``: Gemini on Vertex AI, authorized with Google Cloud credentials."""

    name = "vertex_ai"
    default_api_base = ""
    api_key_env: tuple[str, ...] = ()
    api_base_env = ("VERTEXAI_API_BASE",)
    requires_api_key = False
    supports_embeddings = False
    api_version = "v1"
    settings_keys = frozenset(("vertex_project", "vertex_location", "vertex_credentials", *_ALIASES))

    publisher = "google"

    def __init__(self) -> None:
        self._tokens: dict[str | None, GoogleToken] = {}

    def for_model(self, model: str) -> Provider:
        """Claude models on Vertex AI speak Anthropic's API (:class:`VertexAnthropicProvider`)."""
        if model.startswith("claude"):
            return vertex_anthropic()
        return self

    def endpoint(
        self,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        api_version: str | None = None,
        network: Network | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Endpoint:
        given = {_ALIASES.get(k, k): v for k, v in (settings or {}).items() if v is not None}
        source = given.get("vertex_credentials")
        project = (
            given.get("vertex_project") or os.environ.get("VERTEXAI_PROJECT") or os.environ.get("GOOGLE_CLOUD_PROJECT")
        )
        token = self._token_for(source, project)
        if not project:
            project = token.project
        if not project:
            raise ConfigError(f"{self.name}: no project (pass vertex_project= or set VERTEXAI_PROJECT)")
        location = (
            given.get("vertex_location")
            or os.environ.get("VERTEXAI_LOCATION")
            or os.environ.get("GOOGLE_CLOUD_LOCATION")
            or "us-central1"
        )
        root = api_base or os.environ.get("VERTEXAI_API_BASE")
        if not root:
            host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
            root = f"https://{host}"
        root = root.rstrip("/")
        if not _VERSIONED.search(root):
            root = f"{root}/{api_version or self.api_version}"
        p = path_segment(str(project), provider=self.name, what="project", whole=str(project))
        loc = path_segment(str(location), provider=self.name, what="location", whole=str(location))
        base = f"{root}/projects/{p}/locations/{loc}/publishers/{self.publisher}"
        return Endpoint(base, api_key, extra_headers, api_version, network, token)

    def _token_for(self, source: Any, project: str | None) -> GoogleToken:
        """One token per set of credentials, shared by every call that uses them (the SDK builds an
        endpoint per call): a token is fetched once an hour, not once a call."""
        key = source if isinstance(source, str) or source is None else json.dumps(source, sort_keys=True)
        tokens = self._tokens
        token = tokens.get(key)
        if token is None:
            if source or not project:
                credentials, named = load_credentials(source, self.name)
                token = GoogleToken(credentials, self.name, named)
            else:
                # Application Default Credentials, looked up at the first call (in a thread: finding them
                # may ask the metadata server), since the project is known without them
                token = GoogleToken(None, self.name)
            if len(tokens) >= 64:
                tokens.pop(next(iter(tokens)))
            tokens[key] = token
        return token

    def headers(self, endpoint: Endpoint, *, stream: bool = False) -> dict[str, str]:
        h = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
        return merge_headers(h, endpoint.extra_headers)

    def url(self, endpoint: Endpoint, model: str, method: str) -> str:
        """``{base}/models/{model}:{method}`` under the project's publisher path."""
        name = path_segment(model, provider=self.name, what="model", whole=model)
        return f"{endpoint.api_base}/models/{name}:{method}"

    def embedding_call(self, req: ir.EmbeddingRequest, *, model: str, endpoint: Endpoint) -> HTTPCall:
        raise ConfigError(f"provider {self.name!r} does not offer embeddings through llmswitch yet")


class VertexAnthropicProvider(AnthropicProvider):
    """``vertex_ai/claude-…``: Anthropic's Messages API on Vertex AI, at the model's ``:rawPredict`` and
    ``:streamRawPredict`` under the project's ``publishers/anthropic`` path. The body is Anthropic's with
    ``anthropic_version: vertex-2023-10-16`` and no ``model`` (it is in the URL); a stream says
    ``stream: true`` in the body as well. Credentials, project and location as for Gemini models, with
    the same tokens."""

    name = "vertex_ai"
    policy = "anthropic"
    default_api_base = ""
    api_key_env: tuple[str, ...] = ()
    api_base_env = ("VERTEXAI_API_BASE",)
    requires_api_key = False
    settings_keys = VertexProvider.settings_keys

    def endpoint(self, **kwargs: Any) -> Endpoint:
        return _CLAUDE_ENDPOINTS.endpoint(**kwargs)

    def chat_call(self, req: ir.Request, *, model: str, endpoint: Endpoint) -> HTTPCall:
        body = self.chat_body(self.own_extras(req), model)
        betas = anthropic_messages.required_betas(body)
        body.pop("model", None)
        body["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
        if betas:
            body["anthropic_beta"] = betas
        if req.stream:
            body["stream"] = True
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if req.stream else "application/json",
        }
        name = path_segment(model, provider=self.name, what="model", whole=model)
        method = "streamRawPredict" if req.stream else "rawPredict"
        return HTTPCall(
            f"{endpoint.api_base}/models/{name}:{method}", merge_headers(headers, endpoint.extra_headers), dumps(body)
        )


VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


class _ClaudeEndpoints(VertexProvider):
    publisher = "anthropic"

    def _token_for(self, source: Any, project: str | None) -> GoogleToken:
        # the same credentials share one token whichever publisher's models they call
        vertex = get_provider("vertex_ai")
        assert isinstance(vertex, VertexProvider)
        return vertex._token_for(source, project)


_CLAUDE_ENDPOINTS = _ClaudeEndpoints()
_claude: VertexAnthropicProvider | None = None


def vertex_anthropic() -> VertexAnthropicProvider:
    global _claude
    if _claude is None:
        _claude = VertexAnthropicProvider()
    return _claude
