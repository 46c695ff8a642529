"""OpenAI's ``/v1/embeddings`` and ``/v1/models`` through the gateway."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.dialects._json import dumps, invalid
from llmswitch.server import http
from llmswitch.server.accounting import cost_header
from llmswitch.server.chat import parse_json
from llmswitch.server.spend_records import failure_status

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway


def decode_embedding_request(body: Any) -> ir.EmbeddingRequest:
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", "a model name (string) is required")
    raw = body.get("input")
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
        texts = raw
    else:
        raise invalid("input", "must be a string or a non-empty list of strings")
    fmt = body.get("encoding_format")
    if fmt not in (None, "float", "base64"):
        raise invalid("encoding_format", "must be 'float' or 'base64'")
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool) or dims < 1):
        raise invalid("dimensions", "must be a positive integer")
    extra = {k: v for k, v in body.items() if k not in ("model", "input", "encoding_format", "dimensions", "user")}
    return ir.EmbeddingRequest(model=model, input=texts, dimensions=dims, user=body.get("user"), extra=extra or None)


def _float32_base64(vec: list[float]) -> str:
    import base64
    import struct

    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()


async def handle_embeddings(gw: Gateway, request: http.Request, send: http.Send) -> None:
    principal = gw.keys.authenticate(gw.key_of(request))
    request.state["principal"] = principal
    body = parse_json(request.body)
    req = decode_embedding_request(body)
    request.state["model"] = req.model
    req.model = request.state["model"] = gw.authorize_model(principal, req.model)
    want_base64 = body.get("encoding_format") == "base64"
    # admitted, reserved, settled and journaled as a chat request is (see handle_chat)
    acc = gw.accounting
    started = time.perf_counter()
    reservation = await acc.admit(principal, req, request, price_hint=acc.price_hint(gw.router, req.model))
    try:
        resp, target = await gw.router.embedding(req, timeout=gw.request_timeout)
    except BaseException as exc:
        status = failure_status(exc, request.disconnected)
        await asyncio.shield(
            acc.finish(request, reservation, status=status, error=exc, started=started, call_type="embeddings")
        )
        raise
    request.state["deployment"] = target.id
    request.state["usage"] = resp.usage
    tokens = resp.usage.input_tokens if resp.usage else 0
    out = {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": e.index,
                "embedding": _float32_base64(e.vector) if want_base64 else e.vector,
            }
            for e in resp.data
        ],
        "model": resp.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    body_out = dumps(out)
    cost = await acc.finish(
        request,
        reservation,
        status=200,
        route=target,
        usage=resp.usage or ir.Usage(),
        started=started,
        call_type="embeddings",
    )
    await http.send_bytes(send, 200, body_out, headers={"x-llmswitch-deployment": str(target.id)} | cost_header(cost))


async def handle_models(gw: Gateway, request: http.Request, send: http.Send) -> None:
    principal = gw.keys.authenticate(gw.key_of(request))
    request.state["principal"] = principal
    now = int(time.time())
    data = [
        {"id": name, "object": "model", "created": now, "owned_by": "llmswitch"}
        for name in gw.router.model_names()
        if principal.allows_model(name)
    ]
    await http.send_bytes(send, 200, dumps({"object": "list", "data": data}))
