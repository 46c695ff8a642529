"""The gateway's client dialects ("faces"): how each official SDK's requests are read and answered.

Each face wraps one dialect module's server side (see ``llmswitch.dialects``) and adds the two things
only a server needs: how an error looks in the middle of a stream, and the error for a route that
does not exist, each in that client's own format.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from llmswitch import ir
from llmswitch.dialects._json import dumps
from llmswitch.dialects.openai_tools import FunctionCallChunks, functions_response
from llmswitch.dialects.sse import encode_event

FaceName = Literal["openai", "anthropic", "gemini", "openai_responses"]

# where each dialect's StreamEncoder lives (a dialect may keep streams in a module of their own)
_STREAM_MODULES: dict[FaceName, str] = {
    "openai": "llmswitch.dialects.openai_chat_stream",
    "anthropic": "llmswitch.dialects.anthropic_stream",
    "gemini": "llmswitch.dialects.gemini",
}
_MODULES: dict[FaceName, str] = {
    "openai": "llmswitch.dialects.openai_chat",
    "anthropic": "llmswitch.dialects.anthropic_messages",
    "gemini": "llmswitch.dialects.gemini",
}


@dataclass
class Face:
    name: FaceName
    _module: ModuleType | None = None
    # work the answer must wait for before its last byte goes out (the Responses face's stored copy)
    pending: Awaitable[None] | None = None

    @property
    def module(self) -> ModuleType:
        if self._module is None:
            self._module = importlib.import_module(_MODULES[self.name])
        return self._module

    def decode_request(self, body: Any, *, model: str | None = None) -> ir.Request:
        req: ir.Request
        if self.name == "gemini":
            req = self.module.decode_request(body, model=model or "")
        else:
            req = self.module.decode_request(body)
        if self.name != "openai":
            # so that a parameter the deployment cannot take is named as this client wrote it
            req.client_dialect = _MODULES[self.name].rsplit(".", 1)[1]
            if req.extra:
                req.extra_dialect = req.client_dialect
        return req

    def encode_response(self, resp: ir.Response, *, legacy_functions: bool | None = None) -> dict[str, Any]:
        """The answer's body; an OpenAI caller of the legacy ``functions`` gets ``function_call`` in it."""
        out: dict[str, Any] = self.module.encode_response(resp)
        return functions_response(out) if legacy_functions and self.name == "openai" else out

    def stream_encoder(
        self,
        meta: ir.StreamMeta,
        *,
        include_usage: bool,
        json_array: bool = False,
        legacy_functions: bool | None = None,
    ) -> Any:
        encoder = importlib.import_module(_STREAM_MODULES[self.name]).StreamEncoder(meta, include_usage=include_usage)
        if legacy_functions and self.name == "openai":
            encoder = FunctionCallChunks(encoder)
        return JSONArrayStream(encoder) if json_array else encoder

    def encode_error(self, exc: BaseException) -> tuple[int, dict[str, Any]]:
        status, body = self.module.encode_error(exc)
        return int(status), body

    def stream_error(self, exc: BaseException) -> bytes:
        """An error event ending a stream that already started, as this client's SDK reads it."""
        _, body = self.encode_error(exc)
        if self.name == "anthropic":
            return encode_event(dumps(body), "error")
        if self.name == "gemini":
            return b"data: " + dumps(body) + b"\r\n\r\n"
        return encode_event(dumps(body))


class JSONArrayStream:
    """Gemini's stream without ``alt=sse``: the same chunks as one JSON array arriving piece by piece."""

    def __init__(self, sse_encoder: Any) -> None:
        self._inner = sse_encoder
        self._first = True

    def _convert(self, sse: bytes) -> bytes:
        out = []
        for block in sse.replace(b"\r\n", b"\n").split(b"\n\n"):
            data = b"\n".join(line[5:].lstrip() for line in block.split(b"\n") if line.startswith(b"data:"))
            if data:
                out.append((b"[" if self._first else b",\r\n") + data)
                self._first = False
        return b"".join(out)

    def encode(self, ev: ir.StreamEvent) -> bytes:
        return self._convert(self._inner.encode(ev))

    def close(self) -> bytes:
        tail = self._convert(self._inner.close())
        return tail + (b"[]" if self._first else b"]")


OPENAI = Face("openai")
ANTHROPIC = Face("anthropic")
GEMINI = Face("gemini")
