"""Amazon Bedrock: ``bedrock/<modelId>`` through the Converse API, ``bedrock/invoke/<modelId>`` through
InvokeModel with the model's own body (Anthropic's Messages format for Claude).

    {root}/model/{modelId}/converse             {root}/model/{modelId}/converse-stream
    {root}/model/{modelId}/invoke               {root}/model/{modelId}/invoke-with-response-stream

The root is ``https://bedrock-runtime.{region}.amazonaws.com`` unless ``aws_bedrock_runtime_endpoint``
or ``api_base`` names another; the model id (an inference profile like ``us.anthropic.claude-…``, or an
ARN) is one path segment, percent-encoded. Calls are signed with Signature V4
(:mod:`llmswitch.providers.aws_credentials`); LiteLLM's ``aws_*`` settings say with which credentials.
A ``bedrock/converse/<modelId>`` is the Converse route written out.

    >>> r = llmswitch.completion("bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0", msgs,
    ...                          aws_region_name="us-west-2")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import msgspec

from llmswitch import ir
from llmswitch.dialects import anthropic_messages, bedrock_converse
from llmswitch.dialects._json import dumps, loads
from llmswitch.dialects.bedrock_stream import ConverseStreamDecoder, InvokeStreamDecoder
from llmswitch.errors import APIResponseValidationError, APIStatusError, BadRequestError, ConfigError
from llmswitch.network import Network
from llmswitch.providers.aws_credentials import BearerKey, SigV4, region_of
from llmswitch.providers.base import Endpoint, HTTPCall, Provider, merge_headers
from llmswitch.providers.paths import path_segment

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
_SETTINGS = (
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region_name", "region_name",
    "aws_session_name", "aws_profile_name", "aws_role_name", "aws_web_identity_token", "aws_sts_endpoint",
    "aws_external_id", "aws_bedrock_runtime_endpoint",
)  # fmt: skip


class BedrockProvider(Provider):
    """``bedrock/…``: Amazon Bedrock Runtime, Converse or InvokeModel by the model string."""

    name = "bedrock"
    dialect = "bedrock_converse"
    default_api_base = ""
    api_key_env = ("AWS_BEARER_TOKEN_BEDROCK",)
    api_base_env = ("AWS_BEDROCK_RUNTIME_ENDPOINT",)
    requires_api_key = False
    supports_embeddings = False
    settings_keys = frozenset(_SETTINGS)

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
        given = {k: v for k, v in (settings or {}).items() if v is not None}
        region = region_of(given)
        root = (
            api_base
            or given.get("aws_bedrock_runtime_endpoint")
            or os.environ.get("AWS_BEDROCK_RUNTIME_ENDPOINT")
            or f"https://bedrock-runtime.{region}.amazonaws.com"
        )
        key = api_key or os.environ.get("AWS_BEARER_TOKEN_BEDROCK")
        auth = BearerKey(key) if key else SigV4(given, region, self.name)
        return Endpoint(str(root).rstrip("/"), None, extra_headers, api_version, network, auth)

    @staticmethod
    def route(model: str) -> tuple[bool, str]:
        """(InvokeModel?, the model id) of ``invoke/<id>``, ``converse/<id>`` or ``<id>``."""
        if model.startswith("invoke/"):
            return True, model.removeprefix("invoke/")
        return False, model.removeprefix("converse/")

    def url(self, endpoint: Endpoint, model_id: str, operation: str) -> str:
        segment = path_segment(model_id, provider=self.name, what="model", whole=model_id)
        return f"{endpoint.api_base}/model/{segment}/{operation}"

    def chat_call(self, req: ir.Request, *, model: str, endpoint: Endpoint) -> HTTPCall:
        invoke, model_id = self.route(model)
        req = self.own_extras(req)
        if invoke:
            body = self.invoke_body(req, model_id)
            operation = "invoke-with-response-stream" if req.stream else "invoke"
        else:
            body = bedrock_converse.encode_request(req)
            operation = "converse-stream" if req.stream else "converse"
        headers = {
            "content-type": "application/json",
            "accept": "application/vnd.amazon.eventstream" if req.stream else "application/json",
        }
        return HTTPCall(
            self.url(endpoint, model_id, operation), merge_headers(headers, endpoint.extra_headers), dumps(body)
        )

    def invoke_body(self, req: ir.Request, model_id: str) -> dict[str, Any]:
        """Anthropic's Messages body as Bedrock's InvokeModel takes it: the model in the URL, not the body,
        ``anthropic_version`` in it, and the stream chosen by the operation."""
        if "anthropic" not in model_id:
            raise ConfigError(
                f"{self.name}: bedrock/invoke/ speaks Anthropic's format; use bedrock/{model_id} (Converse) for this model"
            )
        anthropic_req = (
            req
            if req.extra_dialect in (None, "anthropic_messages")
            else msgspec.structs.replace(req, extra=None, extra_dialect=None)
        )
        body = anthropic_messages.encode_request(anthropic_req, model=model_id.split(".", 1)[-1])
        body.pop("model", None)
        body.pop("stream", None)
        body["anthropic_version"] = BEDROCK_ANTHROPIC_VERSION
        betas = anthropic_messages.required_betas(body)
        if betas:
            body["anthropic_beta"] = betas
        return body

    def decode_chat(self, body: bytes, *, model: str) -> ir.Response:
        try:
            data = loads(body.strip())
        except Exception as exc:
            raise APIResponseValidationError(
                f"{self.name}: response is not JSON: {body[:200]!r}", provider=self.name, model=model
            ) from exc
        if not isinstance(data, dict):
            raise APIResponseValidationError(f"{self.name}: unexpected response {body[:200]!r}", provider=self.name)
        invoke, model_id = self.route(model)
        if not invoke:
            return bedrock_converse.decode_response(data, model=model_id)
        try:
            resp = anthropic_messages.decode_response(data)
        except BadRequestError as exc:
            raise APIResponseValidationError(
                f"{self.name}: unreadable response: {exc}", provider=self.name, model=model, body=data
            ) from exc
        return resp

    def stream_decoder(self, *, model: str) -> ConverseStreamDecoder | InvokeStreamDecoder:
        invoke, model_id = self.route(model)
        if invoke:
            return InvokeStreamDecoder(provider=self.name, model=model_id)
        return ConverseStreamDecoder(provider=self.name, model=model_id)

    def decode_error(self, status: int, headers: Mapping[str, str], body: bytes, *, model: str) -> APIStatusError:
        return bedrock_converse.decode_error(status, body, headers, provider=self.name, model=self.route(model)[1])
