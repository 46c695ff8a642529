"""The faces of the fake upstream: how OpenAI, Anthropic, Gemini and Ollama look on the wire.

A face does no translation of its own: it finds the project's server-side dialect module (imported
on first use, so one face works while another dialect's module is still missing) and adds what the
HTTP layer needs: content types, id prefixes, the request-id header, and stream framing.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from llmswitch import ir
from llmswitch.dialects.sse import SSEEvent, SSEParser
from llmswitch.testing._recorded import FaceName


class StreamEncoder(Protocol):
    """The server-side stream contract of every dialect module (see ``llmswitch.dialects``)."""

    def encode(self, ev: ir.StreamEvent) -> bytes: ...

    def close(self) -> bytes: ...


class Framer(Protocol):
    """Turns a dialect's stream bytes into what goes on the wire."""

    def feed(self, data: bytes) -> bytes: ...

    def close(self) -> bytes: ...


class DialectUnavailable(Exception):
    """A face's dialect module (or one of its functions) is not there yet."""


@dataclass(frozen=True)
class Face:
    name: FaceName
    # where the dialect's server-side functions live: the main module first, then its siblings
    # (a dialect may keep its stream or error half apart, as openai_chat does)
    modules: tuple[str, ...]
    json_type: str
    sse_type: str
    request_id_header: str
    response_id_prefix: str
    call_id_prefix: str
    # Gemini sends no tool-call ids: its dialect leaves out ids of the form call_<24 hex>
    hashed_call_ids: bool = False
    # Gemini's finish reason rides on the chunk with the last content, not on a chunk of its own
    finish_with_last_content: bool = False

    def _attr(self, name: str) -> Any:
        for mod in self.modules:
            try:
                m: ModuleType = importlib.import_module(mod)
            except ModuleNotFoundError as exc:
                if exc.name != mod:
                    raise
                continue
            if hasattr(m, name):
                return getattr(m, name)
        raise DialectUnavailable(f"{self.modules[0]}.{name} is not available: the {self.name} face cannot answer yet")

    def decode_request(self, body: dict[str, Any], *, model: str | None) -> ir.Request:
        decode = self._attr("decode_request")
        req: ir.Request = decode(body, model=model) if self.name == "gemini" else decode(body)
        return req

    def encode_response(self, resp: ir.Response) -> dict[str, Any]:
        out: dict[str, Any] = self._attr("encode_response")(resp)
        return out

    def stream_encoder(self, meta: ir.StreamMeta, *, include_usage: bool) -> StreamEncoder:
        # Anthropic and Gemini always report usage in a stream; only OpenAI makes it optional
        enc: StreamEncoder = self._attr("StreamEncoder")(meta, include_usage=include_usage or self.name != "openai")
        return enc

    def encode_error(self, exc: BaseException) -> tuple[int, dict[str, Any]]:
        status, body = self._attr("encode_error")(exc)
        return int(status), body

    def error_headers(self, exc: BaseException) -> dict[str, str]:
        """Headers an error answer carries beside its body (Bedrock: ``X-Amzn-Errortype``)."""
        try:
            headers: dict[str, str] = self._attr("error_headers")(exc)
        except DialectUnavailable:
            return {}
        return headers

    def decode_embedding_request(self, body: Any, *, model: str) -> ir.EmbeddingRequest:
        req: ir.EmbeddingRequest = self._attr("decode_embedding_request")(body, model=model)
        return req

    def encode_embedding_response(self, resp: ir.EmbeddingResponse, *, batch: bool) -> dict[str, Any]:
        out: dict[str, Any] = self._attr("encode_embedding_response")(resp, batch=batch)
        return out

    def response_id(self, number: int) -> str:
        return f"{self.response_id_prefix}fake{number:06d}"

    def call_ids(self, number: int) -> Callable[[int], str]:
        """Ids for the tool calls of answer ``number``: unique across answers, as a provider's are."""
        if self.hashed_call_ids:
            return lambda i: "call_" + hashlib.sha256(f"fake:{number}:{i}".encode()).hexdigest()[:24]
        return lambda i: f"{self.call_id_prefix}{number}_{i}"


def _modules(*names: str) -> tuple[str, ...]:
    return tuple(f"llmswitch.dialects.{n}" for n in names)


OPENAI = Face(
    name="openai",
    modules=_modules("openai_chat", "openai_chat_stream", "openai_errors"),
    json_type="application/json",
    sse_type="text/event-stream; charset=utf-8",
    request_id_header="x-request-id",
    response_id_prefix="chatcmpl-",
    call_id_prefix="call_",
)
ANTHROPIC = Face(
    name="anthropic",
    modules=_modules("anthropic_messages", "anthropic_stream", "anthropic_errors"),
    json_type="application/json",
    sse_type="text/event-stream; charset=utf-8",
    request_id_header="request-id",
    response_id_prefix="msg_",
    call_id_prefix="toolu_",
)
GEMINI = Face(
    name="gemini",
    modules=_modules("gemini", "gemini_stream", "gemini_errors"),
    json_type="application/json; charset=UTF-8",
    sse_type="text/event-stream",
    request_id_header="x-request-id",
    response_id_prefix="",
    call_id_prefix="call_",
    hashed_call_ids=True,
    finish_with_last_content=True,
)
# Ollama's own /api/chat: NDJSON streams (the encoder writes whole lines, relayed as they are)
OLLAMA = Face(
    name="ollama",
    modules=_modules("ollama_chat_server"),
    json_type="application/json; charset=utf-8",
    sse_type="application/x-ndjson",
    request_id_header="x-request-id",
    response_id_prefix="",
    call_id_prefix="call_",
)


# OpenAI's Responses API: Response objects, typed stream events
RESPONSES = Face(
    name="openai_responses",
    modules=_modules("openai_responses"),
    json_type="application/json",
    sse_type="text/event-stream; charset=utf-8",
    request_id_header="x-request-id",
    response_id_prefix="resp_",
    call_id_prefix="call_",
)
# Amazon Bedrock Runtime's Converse API: JSON answers, AWS event-stream frames for streams
BEDROCK = Face(
    name="bedrock",
    modules=_modules("bedrock_server"),
    json_type="application/json",
    sse_type="application/vnd.amazon.eventstream",
    request_id_header="x-amzn-requestid",
    response_id_prefix="",
    call_id_prefix="tooluse_",
)


class SSEFramer:
    """Server-sent events go out as the dialect encoded them."""

    def feed(self, data: bytes) -> bytes:
        return data

    def close(self) -> bytes:
        return b""


class JSONArrayFramer:
    """Gemini's ``streamGenerateContent`` without ``alt=sse``: one JSON array, an element per event.

    The dialect encodes SSE; this reads the events back and writes ``[{...}\\r\\n,{...}]``, as
    the API does, element by element as they come.
    """

    def __init__(self) -> None:
        self._sse = SSEParser()
        self._count = 0

    def _elements(self, events: list[SSEEvent]) -> bytes:
        out = b""
        for ev in events:
            out += (b"[" if self._count == 0 else b"\r\n,") + ev.data.encode()
            self._count += 1
        return out

    def feed(self, data: bytes) -> bytes:
        return self._elements(self._sse.feed(data))

    def close(self) -> bytes:
        return self._elements(self._sse.close()) + (b"]" if self._count else b"[]")
