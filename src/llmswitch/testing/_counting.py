"""Token-counting routes of the fake upstream: Anthropic ``/v1/messages/count_tokens``, Gemini ``:countTokens``.

The request is decoded with the project's own server-side dialect (a malformed one gets that API's
400). The count is the fake's own tokenizer: one token per word or punctuation mark of every text,
tool schema and tool call, plus 4 per message. It is deliberately not llmswitch's local estimate,
so a test can tell a provider's count from an estimate.
"""

from __future__ import annotations

import re

from aiohttp import web

from llmswitch import ir
from llmswitch.dialects import anthropic_count_tokens, gemini_count_tokens
from llmswitch.dialects._json import dumps
from llmswitch.errors import APIStatusError
from llmswitch.testing._answers import Host, answer, error_response, json_response, reply_headers
from llmswitch.testing._faces import GEMINI, Face
from llmswitch.testing._recorded import RecordedRequest

_TOKEN = re.compile(r"\w+|[^\w\s]")


def fake_token_count(req: ir.Request) -> int:
    """The fake provider's count for ``req`` (see the module docstring)."""
    texts: list[str] = []
    for m in req.messages:
        for p in m.content:
            if isinstance(p, ir.TextPart | ir.ReasoningPart | ir.ToolResultPart):
                texts.append(p.text)
            elif isinstance(p, ir.ToolCallPart):
                texts += [p.name, p.arguments]
    for t in req.tools or ():
        texts += [t.name, t.description or "", dumps(t.parameters or {}).decode()]
    return sum(len(_TOKEN.findall(t)) for t in texts) + 4 * len(req.messages)


async def count(
    request: web.Request, host: Host, rec: RecordedRequest, face: Face, model: str | None = None
) -> web.StreamResponse:
    try:
        if face is GEMINI:
            req = gemini_count_tokens.decode_request(rec.json, model=model or "")
        else:
            req = anthropic_count_tokens.decode_request(rec.json)
    except APIStatusError as exc:
        return error_response(face, exc, rec.number)
    rec.chat = req
    reply = await host.choose(rec)
    n = fake_token_count(req)
    body = gemini_count_tokens.encode_response(n) if face is GEMINI else anthropic_count_tokens.encode_response(n)

    async def success() -> web.StreamResponse:
        return json_response(200, body, face, reply_headers(reply, face, rec.number))

    return await answer(request, host, face, reply, rec.number, success, streaming=False)
