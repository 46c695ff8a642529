"""What a provider is: a dialect, an endpoint, a way to authenticate, and what it can do.

A provider builds :class:`HTTPCall` values and reads bytes back; it never opens a socket itself
(``transport`` does), so every provider is tested by replaying recorded bytes over loopback.
Third-party providers subclass :class:`Provider` and are registered with
``llmswitch.providers.register_provider(name, "package.module:ClassName")``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

import msgspec

from llmswitch import ir
from llmswitch.errors import APIStatusError, AuthenticationError, ConfigError
from llmswitch.network import Network


class HTTPCall(NamedTuple):
    """One HTTP request to send: everything the transport needs, nothing more."""

    url: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    network: Network | None = None  # the deployment's proxy / TLS settings (None: the process's)
    auth: Authorizer | None = None  # credentials applied when the call is sent (a token, a signature)


class Authorizer(Protocol):
    """Credentials that must be applied as a call is sent, each attempt anew: an OAuth token fetched and
    refreshed before it expires (Vertex AI), a signature over the exact bytes and the time (Bedrock's
    Signature V4). The transport sends what :meth:`authorize` returns."""

    async def authorize(self, call: HTTPCall) -> HTTPCall: ...


class StreamDecoder(Protocol):
    """Turns a provider's streamed bytes into IR events; ``meta`` fills in as the stream says it."""

    meta: ir.StreamMeta

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]: ...

    def close(self) -> list[ir.StreamEvent]: ...


class Endpoint(NamedTuple):
    """Where and as whom to call a provider, after api_base / api_key / environment are resolved."""

    api_base: str
    api_key: str | None
    extra_headers: Mapping[str, str] | None = None
    api_version: str | None = None
    network: Network | None = None  # copied onto every HTTPCall made for this endpoint
    auth: Authorizer | None = None  # a cloud provider's credentials (see Provider.settings_keys)


class Provider:
    """Base of all providers. Subclasses set the class attributes and the dialect hooks."""

    name: str = ""
    default_api_base: str = ""
    api_key_env: tuple[str, ...] = ()
    api_base_env: tuple[str, ...] = ()
    requires_api_key: bool = True
    supports_embeddings: bool = True
    # True when a client speaking this provider's own dialect may get its answers relayed unchanged
    passthrough: bool = False
    # the wire format this provider speaks (a module name in llmswitch.dialects)
    dialect: str = "openai_chat"
    # keywords (LiteLLM's names) that say where and as whom to call, rather than what to send: taken out
    # of the call's keywords or the deployment's litellm_params and given to endpoint(settings=...)
    settings_keys: frozenset[str] = frozenset()
    # the row of the parameter policy (providers/params.py) this provider's API follows; None: its name
    policy: str | None = None

    def for_model(self, model: str) -> Provider:
        """The provider that serves ``model`` (a cloud that hosts several vendors' APIs picks one)."""
        return self

    def for_settings(self, settings: Mapping[str, Any] | None) -> Provider:
        """The provider a deployment's settings choose (``use_responses_api`` picks OpenAI's Responses API)."""
        return self

    def own_extras(self, req: ir.Request) -> ir.Request:
        """``req`` without extras written for another provider's format (they would be rejected)."""
        if not req.extra or req.extra_dialect in (None, self.dialect):
            return req
        return msgspec.structs.replace(req, extra=None, extra_dialect=None)

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
        if settings:
            raise ConfigError(f"provider {self.name!r} takes no settings {', '.join(sorted(settings))}")
        base = api_base or _first_env(self.api_base_env) or self.default_api_base
        if not base:
            raise ConfigError(
                f"provider {self.name!r} needs an api_base (pass api_base= or set {' or '.join(self.api_base_env)})"
            )
        key = api_key or _first_env(self.api_key_env)
        if key is None and self.requires_api_key:
            raise AuthenticationError(
                f"{self.name}: no API key (pass api_key= or set {' or '.join(self.api_key_env)})",
                status_code=401,
                provider=self.name,
            )
        return Endpoint(base.rstrip("/"), key, extra_headers, api_version, network)

    # -- chat
    def chat_call(self, req: ir.Request, *, model: str, endpoint: Endpoint) -> HTTPCall:
        raise NotImplementedError

    def decode_chat(self, body: bytes, *, model: str) -> ir.Response:
        raise NotImplementedError

    def stream_decoder(self, *, model: str) -> StreamDecoder:
        raise NotImplementedError

    def decode_error(self, status: int, headers: Mapping[str, str], body: bytes, *, model: str) -> APIStatusError:
        raise NotImplementedError

    def passthrough_call(self, body: dict[str, Any], *, model: str, endpoint: Endpoint) -> HTTPCall:
        raise NotImplementedError

    # -- embeddings
    def embedding_call(self, req: ir.EmbeddingRequest, *, model: str, endpoint: Endpoint) -> HTTPCall:
        raise ConfigError(f"provider {self.name!r} does not offer embeddings")

    def decode_embedding(self, body: bytes, *, model: str) -> ir.EmbeddingResponse:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _first_env(names: tuple[str, ...]) -> str | None:
    for n in names:
        v = os.environ.get(n)
        if v:
            return v
    return None


def merge_headers(base: dict[str, str], extra: Mapping[str, str] | None) -> dict[str, str]:
    if extra:
        base.update(extra)
    return base


def json_headers(extra: dict[str, Any] | None = None) -> dict[str, str]:
    h = {"content-type": "application/json", "accept": "application/json"}
    if extra:
        h.update(extra)
    return h
