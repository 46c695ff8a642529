"""The routes of the fake upstream, one set per face, and the chat route they share.

Every request is recorded first, then decoded with its face's own dialect (a malformed request gets
that dialect's 400, as from the real API) before the next :class:`Reply` is taken.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from llmswitch import ir
from llmswitch.dialects._json import invalid
from llmswitch.dialects.bedrock_server import ChunkFramer
from llmswitch.errors import APIStatusError
from llmswitch.testing import _counting, _embeddings
from llmswitch.testing._answers import (
    Host,
    answer,
    error_response,
    json_response,
    reply_headers,
    text_response,
    write_stream,
)
from llmswitch.testing._faces import (
    ANTHROPIC,
    BEDROCK,
    GEMINI,
    OLLAMA,
    OPENAI,
    RESPONSES,
    DialectUnavailable,
    Face,
    Framer,
    JSONArrayFramer,
    SSEFramer,
)
from llmswitch.testing._recorded import RecordedRequest
from llmswitch.testing._reply import finish_with_last_content, to_response, to_stream_events


def build_app(host: Host) -> web.Application:
    """The aiohttp application serving every face's routes for ``host``."""
    from llmswitch.testing import _batches, _batches_gemini  # they build on this module's routes

    app = web.Application(client_max_size=64 * 1024 * 1024)

    async def openai_chat(request: web.Request) -> web.StreamResponse:
        return await _chat(request, host, OPENAI)

    async def anthropic_messages(request: web.Request) -> web.StreamResponse:
        return await _chat(request, host, ANTHROPIC)

    async def anthropic_count_tokens(request: web.Request) -> web.StreamResponse:
        return await _counting.count(request, host, await _record(request, host, ANTHROPIC), ANTHROPIC)

    async def ollama_chat(request: web.Request) -> web.StreamResponse:
        return await _chat(request, host, OLLAMA)

    async def ollama_embed(request: web.Request) -> web.StreamResponse:
        return await _embeddings.ollama(request, host, await _record(request, host, OLLAMA))

    async def openai_responses(request: web.Request) -> web.StreamResponse:
        return await _chat(request, host, RESPONSES)

    async def openai_embeddings(request: web.Request) -> web.StreamResponse:
        return await _embeddings.openai(request, host, await _record(request, host, OPENAI))

    async def openai_models(request: web.Request) -> web.StreamResponse:
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in host.models]
        return json_response(200, {"object": "list", "data": data}, OPENAI)

    async def gemini_model_method(request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        if method in ("generateContent", "streamGenerateContent"):
            stream = method == "streamGenerateContent"
            return await _chat(request, host, GEMINI, model=model, stream=stream, sse=request.query.get("alt") == "sse")
        if method == "batchGenerateContent":
            return await _batches_gemini.gemini_create(request, host, model)
        rec = await _record(request, host, GEMINI, model=model)
        if method == "countTokens":
            return await _counting.count(request, host, rec, GEMINI, model)
        if method in ("batchEmbedContents", "embedContent"):
            return await _embeddings.gemini(request, host, rec, batch=method == "batchEmbedContents")
        message = f"Method {method!r} of models/{model} is not served by the fake upstream."
        return error_response(GEMINI, APIStatusError(message, status_code=404, error_type="NOT_FOUND"), rec.number)

    async def oauth_token(request: web.Request) -> web.StreamResponse:
        # Google's token endpoint for a service account's JWT-bearer grant (Vertex AI's credentials)
        form = await request.post()
        grant, assertion = form.get("grant_type"), form.get("assertion")
        issued: list[str] = getattr(host, "tokens", [])
        if (
            grant != "urn:ietf:params:oauth:grant-type:jwt-bearer"
            or not assertion
            or getattr(host, "refuse_tokens", False)
        ):
            body = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            return web.json_response(body, status=400)
        getattr(host, "grants", []).append(str(assertion))
        token = f"ya29.fake-{len(issued) + 1}"
        issued.append(token)
        ttl = getattr(host, "token_ttl", 3600)
        return web.json_response({"access_token": token, "expires_in": ttl, "token_type": "Bearer"})

    async def vertex_model_method(request: web.Request) -> web.StreamResponse:
        # Vertex AI: Gemini's methods under a project's publisher path, for a token the fake issued
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in getattr(host, "tokens", []):
            rec = await _record(request, host, GEMINI)
            message = "Request had invalid authentication credentials. Expected OAuth 2 access token."
            return error_response(
                GEMINI, APIStatusError(message, status_code=401, error_type="UNAUTHENTICATED"), rec.number
            )
        return await gemini_model_method(request)

    async def bedrock_operation(request: web.Request) -> web.StreamResponse:
        # Bedrock Runtime: Converse for every model, InvokeModel with Anthropic's own body
        model, operation = request.match_info["model"], request.match_info["operation"]
        stream = operation.endswith("stream")
        chunked = ChunkFramer if operation.startswith("invoke") else None
        face = ANTHROPIC if chunked is not None else BEDROCK
        if operation not in ("converse", "converse-stream", "invoke", "invoke-with-response-stream"):
            rec = await _record(request, host, BEDROCK, model=model)
            message = f"Operation {operation!r} is not served by the fake upstream."
            return error_response(BEDROCK, APIStatusError(message, status_code=404), rec.number)

        def as_messages_api(body: dict[str, Any]) -> dict[str, Any]:
            # InvokeModel's Anthropic body: the model is in the path, Bedrock's version string in the body
            if chunked is None:
                return body
            return {"model": model, **{k: v for k, v in body.items() if k != "anthropic_version"}}

        return await _chat(
            request, host, face, model=model, stream=stream, framer=chunked, stream_type=BEDROCK.sse_type,
            adapt=as_messages_api,
        )  # fmt: skip

    app.router.add_post("/model/{model}/{operation}", bedrock_operation)

    async def vertex_anthropic(request: web.Request) -> web.StreamResponse:
        # Claude on Vertex AI: Anthropic's body (the model in the path, Vertex's version string) at
        # :rawPredict and :streamRawPredict, for a token the fake issued
        model, _, method = request.match_info["target"].partition(":")
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in getattr(host, "tokens", []):
            rec = await _record(request, host, ANTHROPIC, model=model)
            error = APIStatusError(
                "invalid authentication credentials", status_code=401, error_type="authentication_error"
            )
            return error_response(ANTHROPIC, error, rec.number)
        if method not in ("rawPredict", "streamRawPredict"):
            rec = await _record(request, host, ANTHROPIC, model=model)
            return error_response(ANTHROPIC, APIStatusError(f"no method {method!r}", status_code=404), rec.number)

        def as_messages_api(body: dict[str, Any]) -> dict[str, Any]:
            return {"model": model, **{k: v for k, v in body.items() if k != "anthropic_version"}}

        return await _chat(
            request, host, ANTHROPIC, model=model, stream=method == "streamRawPredict", adapt=as_messages_api
        )

    app.router.add_post(
        "/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{target}", vertex_anthropic
    )
    app.router.add_post("/token", oauth_token)
    app.router.add_post(
        "/v1/projects/{project}/locations/{location}/publishers/google/models/{target}", vertex_model_method
    )
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", openai_chat)
        app.router.add_post(f"{prefix}/embeddings", openai_embeddings)
        app.router.add_post(f"{prefix}/responses", openai_responses)
        app.router.add_get(f"{prefix}/models", openai_models)
    app.router.add_post("/v1/messages", anthropic_messages)
    app.router.add_post("/v1/messages/count_tokens", anthropic_count_tokens)
    app.router.add_post("/api/chat", ollama_chat)
    app.router.add_post("/api/embed", ollama_embed)
    # google-genai calls /v1beta or /v1 (its api_version); Gemini serves both
    app.router.add_post("/v1beta/models/{target}", gemini_model_method)
    app.router.add_post("/v1/models/{target}", gemini_model_method)
    _batches.mount(app, host)  # the providers' own batch APIs
    return app


async def _record(request: web.Request, host: Host, face: Face, *, model: str | None = None) -> RecordedRequest:
    body = await request.read()
    try:
        parsed = msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        parsed = None
    rec = RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        json=parsed,
        face=face.name,
        number=host.next_number(),
        model=model if model is not None else _body_model(parsed),
        path_raw=request.raw_path.split("?", 1)[0],
    )
    host.record(rec)
    return rec


def _body_model(body: Any) -> str | None:
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


async def _chat(
    request: web.Request,
    host: Host,
    face: Face,
    *,
    model: str | None = None,
    stream: bool | None = None,
    sse: bool = True,
    framer: Callable[[], Framer] | None = None,
    stream_type: str | None = None,
    adapt: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> web.StreamResponse:
    rec = await _record(request, host, face, model=model)
    if not isinstance(rec.json, dict):
        return error_response(face, invalid("body", "the request body must be a JSON object"), rec.number)
    body = rec.json if adapt is None else adapt(rec.json)
    try:
        req = face.decode_request(body, model=model)
    except APIStatusError as exc:
        return error_response(face, exc, rec.number)
    except DialectUnavailable as exc:
        return text_response(501, str(exc))
    rec.chat = req
    rec.model = model or req.model
    reply = await host.choose(rec)
    streaming = req.stream if stream is None else stream
    model_name = reply.model or rec.model or ""
    response_id = face.response_id(rec.number)
    call_ids = face.call_ids(rec.number)

    async def success() -> web.StreamResponse:
        headers = reply_headers(reply, face, rec.number)
        if not streaming:
            resp = to_response(
                reply,
                req,
                response_id=response_id,
                model=model_name,
                call_ids=call_ids,
                created=int(time.time()),
            )
            return json_response(200, face.encode_response(resp), face, headers)
        meta = ir.StreamMeta(id=response_id, model=model_name, created=int(time.time()), system_fingerprint="fp_fake")
        encoder = face.stream_encoder(meta, include_usage=req.include_usage)
        events = to_stream_events(reply, req, call_ids=call_ids)
        if face.finish_with_last_content:
            events = finish_with_last_content(events)
        chunks = [encoder.encode(ev) for ev in events]
        tail = encoder.close()
        out: Framer = framer() if framer is not None else SSEFramer() if sse else JSONArrayFramer()
        headers["content-type"] = stream_type or (face.sse_type if sse else face.json_type)
        return await write_stream(request, reply, chunks, tail, out, headers)

    return await answer(request, host, face, reply, rec.number, success, streaming=streaming)
