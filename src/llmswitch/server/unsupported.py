"""The answer for a request no route takes, in the caller's own dialect.

Three cases, each naming what was asked for:

- a path the gateway serves, with another method: 405 with ``Allow``;
- an endpoint of the OpenAI, Anthropic or Gemini APIs that llmswitch does not implement yet
  (``/v1/images/generations``, ``/v1/uploads``, ``:predict`` …): 501;
- anything else: 404, with a did-you-mean among the served paths when one is close.

The dialect is the one the caller's SDK reads: Anthropic's for ``/v1/messages…`` or any request carrying
``anthropic-version``, Gemini's for ``/v1beta/…`` and ``models/{model}:verb`` paths, OpenAI's otherwise.
Only requests that missed every route come here, so none of this costs a served request anything.

    >>> scope = {"type": "http", "method": "POST", "path": "/v1/images/generations", "headers": []}
    >>> exc = refusal(http.Request(scope, None), {("POST", "/v1/chat/completions"): None})  # type: ignore[arg-type]
    >>> exc.status_code, exc.message
    (501, "POST /v1/images/generations (OpenAI's image generation) is not supported by llmswitch yet")
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from llmswitch.errors import APIStatusError
from llmswitch.server import faces, http
from llmswitch.server.faces import Face

# Gemini's model methods: `/v1beta/models/{model}:{verb}` (also under /v1 and tunedModels).
_GEMINI_METHOD = re.compile(r"/(?:v1beta|v1|v1alpha)/(models|tunedModels)/([^/:]+):([A-Za-z]+)\Z")
_GEMINI_SERVED = frozenset(
    {"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"}
)
_GEMINI_VERBS: dict[str, str] = {
    "batchGenerateContent": "Gemini's batch mode",
    "asyncBatchEmbedContent": "Gemini's batch embeddings",
    "predict": "Gemini's Imagen prediction",
    "predictLongRunning": "Gemini's Veo prediction",
    "generateAnswer": "Gemini's grounded answers",
    "countMessageTokens": "Gemini's token counting",
    "countTextTokens": "Gemini's token counting",
    "generateMessage": "Gemini's PaLM messages",
    "generateText": "Gemini's PaLM text",
    "embedText": "Gemini's PaLM embeddings",
    "batchEmbedText": "Gemini's PaLM embeddings",
}

_ID = r"/[^/]+"
# Endpoints of the three APIs that llmswitch does not serve yet: (path pattern, what it is, face).
# OpenAI's paths are matched with and without `/v1` (LiteLLM serves both), Gemini's under v1beta and v1.
_OPENAI = "openai"
_ANTHROPIC = "anthropic"
_GEMINI = "gemini"
_KNOWN: tuple[tuple[str, str, str], ...] = (
    # Anthropic (before OpenAI: /v1/messages/… is Anthropic's whatever the headers say)
    (r"/v1/complete", "Anthropic's legacy text completions", _ANTHROPIC),
    (rf"/v1/skills(?:{_ID}(?:/versions(?:{_ID})?)?)?", "Anthropic's skills", _ANTHROPIC),
    # OpenAI
    (r"(?:/v1)?/completions", "OpenAI's legacy completions", _OPENAI),
    (rf"(?:/v1)?/chat/completions{_ID}(?:/messages)?", "OpenAI's stored chat completions", _OPENAI),
    (
        rf"(?:/v1)?/responses(?:/input_tokens|/compact|{_ID}(?:/cancel|/input_items)?)?",
        "OpenAI's Responses API",
        _OPENAI,
    ),
    (rf"(?:/v1)?/conversations(?:{_ID}(?:/items(?:{_ID})?)?)?", "OpenAI's conversations", _OPENAI),
    (rf"(?:/v1)?/files(?:{_ID}(?:/content)?)?", "the Files API", _OPENAI),
    (rf"(?:/v1)?/uploads(?:{_ID}(?:/parts|/complete|/cancel)?)?", "OpenAI's uploads", _OPENAI),
    (r"(?:/v1)?/images/generations", "OpenAI's image generation", _OPENAI),
    (r"(?:/v1)?/images/edits", "OpenAI's image edits", _OPENAI),
    (r"(?:/v1)?/images/variations", "OpenAI's image variations", _OPENAI),
    (r"(?:/v1)?/audio/speech", "OpenAI's text to speech", _OPENAI),
    (r"(?:/v1)?/audio/transcriptions", "OpenAI's transcription", _OPENAI),
    (r"(?:/v1)?/audio/translations", "OpenAI's audio translation", _OPENAI),
    (rf"(?:/v1)?/audio/voices(?:{_ID})?", "OpenAI's custom voices", _OPENAI),
    (r"(?:/v1)?/moderations", "OpenAI's moderations", _OPENAI),
    (rf"(?:/v1)?/models{_ID}", "model retrieval", _OPENAI),
    (rf"(?:/v1)?/assistants(?:{_ID})?", "OpenAI's Assistants API", _OPENAI),
    (r"(?:/v1)?/threads(?:/.*)?", "OpenAI's Assistants threads", _OPENAI),
    (r"(?:/v1)?/vector_stores(?:/.*)?", "OpenAI's vector stores", _OPENAI),
    (r"(?:/v1)?/fine_tuning/.*", "OpenAI's fine-tuning", _OPENAI),
    (r"(?:/v1)?/fine-tunes(?:/.*)?", "OpenAI's legacy fine-tuning", _OPENAI),
    (r"(?:/v1)?/evals(?:/.*)?", "OpenAI's evals", _OPENAI),
    (r"(?:/v1)?/containers(?:/.*)?", "OpenAI's containers", _OPENAI),
    (r"(?:/v1)?/realtime(?:/.*)?", "OpenAI's Realtime API", _OPENAI),
    (r"(?:/v1)?/videos(?:/.*)?", "OpenAI's video generation", _OPENAI),
    (r"(?:/v1)?/organization/.*", "OpenAI's administration API", _OPENAI),
    (r"(?:/v1|/v2)?/rerank", "reranking", _OPENAI),
    # LiteLLM's proxy management API beyond the key, user, team and spend routes llmswitch serves
    (
        r"(?:/v1)?/model/(?:info|new|update|delete)|/v2/model/info",
        "LiteLLM's model management",
        _OPENAI,
    ),
    (r"/key/(?:block|unblock|health)|/key/[^/]+/regenerate", "LiteLLM's key management", _OPENAI),
    (
        r"/team/(?:member_add|member_delete|member_update|block|unblock|model/add|model/delete)",
        "LiteLLM's team management",
        _OPENAI,
    ),
    (
        r"/(?:customer|end_user|budget|organization)/[a-z_/]+",
        "LiteLLM's customer, budget and organization management",
        _OPENAI,
    ),
    (r"/spend/(?:tags|keys|users|calculate)|/global/spend(?:/.*)?", "LiteLLM's spend reports", _OPENAI),
    # Gemini (beside the model methods above)
    (r"/v1beta/models", "Gemini's model list", _GEMINI),
    (r"/v1beta/models/[^/:]+", "Gemini's model details", _GEMINI),
    (r"/(?:upload/)?v1beta/files(?:/.*)?", "Gemini's Files API", _GEMINI),
    (r"/v1beta/cachedContents(?:/.*)?", "Gemini's context caching", _GEMINI),
    (r"/v1beta/tunedModels(?:/.*)?", "Gemini's tuned models", _GEMINI),
    (r"/v1beta/batches(?:/.*)?", "Gemini's batch mode", _GEMINI),
    (r"/v1beta/operations(?:/.*)?", "Gemini's long-running operations", _GEMINI),
    (r"/v1beta/corpora(?:/.*)?", "Gemini's semantic retrieval", _GEMINI),
    (r"/(?:upload/)?v1beta/fileSearchStores(?:/.*)?", "Gemini's file search stores", _GEMINI),
)
_KNOWN_COMPILED = tuple((re.compile(pattern + r"\Z"), what, face) for pattern, what, face in _KNOWN)
_FACES: dict[str, Face] = {_OPENAI: faces.OPENAI, _ANTHROPIC: faces.ANTHROPIC, _GEMINI: faces.GEMINI}
# SDKs retry 5xx answers by default; an endpoint that is not there will not appear on a retry.
_NO_RETRY = {"x-should-retry": "false"}


def face_for(request: http.Request) -> Face:
    """The dialect to refuse ``request`` in: whose SDK sent it, judged by its path and headers."""
    path = request.path
    if path.startswith("/v1/messages") or "anthropic-version" in request.headers:
        return faces.ANTHROPIC
    if path.startswith(("/v1beta/", "/upload/")) or _GEMINI_METHOD.match(path):
        return faces.GEMINI
    for pattern, _, face in _KNOWN_COMPILED:
        if pattern.match(path):
            return _FACES[face]
    return faces.OPENAI


def refusal(request: http.Request, routes: Mapping[tuple[str, str], Any]) -> APIStatusError:
    """The 405, 501 or 404 for ``request``, which no entry of ``routes`` ((method, path) -> …) takes."""
    method, path = request.method, request.path
    allowed = _allowed_methods(routes, path)
    asked = f"{method} {path}"
    if allowed and method not in allowed:
        allow = ", ".join(sorted(allowed))
        return _error(
            f"{asked}: method not allowed; this endpoint takes {allow}",
            405,
            "method_not_allowed",
            {"allow": allow},
        )
    what = _unbuilt(path)
    if what is not None:
        return _error(f"{asked} ({what}) is not supported by llmswitch yet", 501, "unsupported_endpoint")
    close = difflib.get_close_matches(path, sorted({p for _, p in routes}), n=1, cutoff=0.8)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return _error(f"unknown endpoint {asked}{hint}", 404, "unknown_endpoint", error_type="not_found_error")


def _allowed_methods(routes: Mapping[tuple[str, str], Any], path: str) -> set[str]:
    allowed = {m for m, p in routes if p == path}
    found = _GEMINI_METHOD.match(path)
    if found and found.group(1) == "models" and found.group(3) in _GEMINI_SERVED:
        allowed.add("POST")
    return allowed


def _unbuilt(path: str) -> str | None:
    found = _GEMINI_METHOD.match(path)
    if found:
        if found.group(1) == "tunedModels":
            return "Gemini's tuned models"
        return _GEMINI_VERBS.get(found.group(3))
    for pattern, what, _ in _KNOWN_COMPILED:
        if pattern.match(path):
            return what
    return None


def _error(
    message: str,
    status: int,
    code: str,
    headers: dict[str, str] | None = None,
    *,
    error_type: str = "invalid_request_error",
) -> APIStatusError:
    return APIStatusError(
        message,
        status_code=status,
        provider="llmswitch",
        code=code,
        error_type=error_type,
        headers={**_NO_RETRY, **(headers or {})},
    )
