"""Gemini's ``models/{model}:embedContent`` and ``:batchEmbedContents`` through the gateway.

Any embedding deployment serves them (an OpenAI embedding model behind a google-genai client, say).
The Gemini body is read and checked in Gemini's terms, then served by the gateway's one embeddings
entry point (:func:`llmswitch.server.embeddings.handle_embeddings`) exactly as an OpenAI client's
request is: authentication, the key's models, limits, routing, spend and its headers are that route's,
so every embeddings request is accounted for the same way whichever dialect asked. Its answer is
written back as Gemini's ``{"embedding": {"values"}}`` or ``{"embeddings": [...]}``.

Only text parts are embedded; ``taskType`` and ``title`` (Gemini's retrieval hints) have no meaning for
other providers' embedding models and are refused with a 400 naming them rather than ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.dialects import gemini
from llmswitch.dialects._json import dumps, invalid, loads
from llmswitch.errors import APIResponseValidationError
from llmswitch.server import http
from llmswitch.server.chat import parse_json
from llmswitch.server.embeddings import handle_embeddings

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway

# per-request fields Gemini takes beside content and outputDimensionality, which other APIs cannot honour
_HINTS = ("taskType", "task_type", "title")


async def handle(gw: Gateway, request: http.Request, send: http.Send) -> None:
    model = str(request.state["model"])
    batch = bool(request.state["batch"])
    # a client without a valid key hears that before anything about its body
    gw.keys.authenticate(gw.key_of(request))
    body = parse_json(request.body)
    req = gemini.decode_embedding_request(body, model=model)
    _refuse_hints(body)
    openai_body: dict[str, Any] = {"model": model, "input": req.input}
    if req.dimensions is not None:
        openai_body["dimensions"] = req.dimensions
    request.body = dumps(openai_body)
    sent: list[http.Message] = []

    async def keep(msg: http.Message) -> None:
        sent.append(msg)

    await handle_embeddings(gw, request, keep)
    start, rest = sent[0], sent[1:]
    answer = loads(b"".join(m.get("body", b"") for m in rest))
    try:
        data = [ir.Embedding(index=int(d["index"]), vector=d["embedding"]) for d in answer["data"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise APIResponseValidationError(f"unexpected embeddings answer: {exc}", provider="llmswitch") from exc
    out = gemini.encode_embedding_response(ir.EmbeddingResponse(model=model, data=data), batch=batch)
    skip = {b"content-type", b"content-length"}
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", ()) if k.lower() not in skip}
    await http.send_bytes(send, int(start["status"]), dumps(out), headers=headers)


def _refuse_hints(body: dict[str, Any]) -> None:
    items = body.get("requests") if "requests" in body else [body]
    for i, item in enumerate(items or ()):
        for key in _HINTS:
            if isinstance(item, dict) and item.get(key) is not None:
                where = f"requests[{i}].{key}" if "requests" in body else key
                raise invalid(where, "is not supported by llmswitch's embeddings (only the text is embedded)")
