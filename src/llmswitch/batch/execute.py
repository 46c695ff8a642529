"""One batch line through the gateway: admitted against the key's limits, routed (retries, fallbacks,
breakers), priced at batch rates and journaled as a spend record, answered in the batch's dialect.

A line's spend record has the id ``<batch id>-<line number>``, so a line answered again after an
instance was killed is recorded once.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.dialects._json import dumps, loads
from llmswitch.errors import APIError, LLMSwitchError, RateLimitError
from llmswitch.server import faces, http
from llmswitch.server.spend_records import failure_status
from llmswitch.store.batch_records import BatchRecord, ClaimedLine, LineOutcome
from llmswitch.store.records import CallType

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway
    from llmswitch.server.auth import Principal


class RetryLater(Exception):
    """The line could not be tried now (a rate limit of the key or every deployment): give it back."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"retry in {wait_s:.2f} s")
        self.wait_s = wait_s


async def _no_body() -> http.Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def line_request(batch: BatchRecord, line: ClaimedLine, principal: Principal | None) -> http.Request:
    """The request value accounting reads (its state: ids, principal, model group)."""
    request = http.Request({"method": "POST", "path": batch.endpoint, "headers": []}, _no_body)
    spend_id = f"{batch.id}-{line.line_no}"
    request.state.update(spend_id=spend_id, request_id=spend_id, principal=principal, batch_id=batch.id)
    return request


def outcome(line: ClaimedLine, status: int, body: Any, request_id: str) -> LineOutcome:
    response = {"status_code": status, "request_id": request_id, "body": body}
    return LineOutcome(line.line_no, status, dumps(response).decode(), status >= 300)


def error_outcome(line: ClaimedLine, face: faces.Face, exc: BaseException, request_id: str) -> LineOutcome:
    status, body = face.encode_error(exc if isinstance(exc, APIError | LLMSwitchError) else _as_api_error(exc))
    return outcome(line, status, body, request_id)


def _as_api_error(exc: BaseException) -> APIError:
    from llmswitch.errors import APIStatusError

    return APIStatusError(str(exc) or type(exc).__name__, status_code=500, provider="llmswitch", error_type="api_error")


async def answer_line(
    gw: Gateway, batch: BatchRecord, line: ClaimedLine, principal: Principal | None, *, batch_rates: bool = True
) -> LineOutcome:
    """The line's answer (a failure is an answer too); :class:`RetryLater` when it must wait. Its spend is
    priced at the provider's batch rates unless ``batch_rates`` is false."""
    face = faces.ANTHROPIC if batch.api == "anthropic" else faces.OPENAI
    request = line_request(batch, line, principal)
    spend_id = request.state["spend_id"]
    if principal is None:
        return error_outcome(line, face, _auth_gone(), spend_id)
    body = loads(line.body)
    try:
        model = gw.authorize_model(principal, str(body.get("model")))
    except (APIError, LLMSwitchError) as exc:
        return error_outcome(line, face, exc, spend_id)
    request.state["model"] = model
    acc = gw.accounting
    started = time.perf_counter()
    embedding = batch.endpoint == "/v1/embeddings"
    req: ir.Request | ir.EmbeddingRequest
    try:
        if embedding:
            from llmswitch.server.embeddings import decode_embedding_request

            req = decode_embedding_request(body)
        else:
            req = face.decode_request(body)
            req.stream = False
        req.model = model
        reservation = await acc.admit(principal, req, request, price_hint=acc.price_hint(gw.router, model))
    except RateLimitError as exc:
        raise RetryLater(exc.retry_after or 1.0) from exc
    except (APIError, LLMSwitchError) as exc:
        return error_outcome(line, face, exc, spend_id)
    call_type: CallType = "embeddings" if embedding else "chat"
    try:
        if embedding:
            assert isinstance(req, ir.EmbeddingRequest)
            resp, route = await gw.router.embedding(req, timeout=gw.request_timeout)
            usage = resp.usage or ir.Usage()
            tokens = usage.input_tokens
            out: Any = {
                "object": "list",
                "data": [{"object": "embedding", "index": e.index, "embedding": e.vector} for e in resp.data],
                "model": resp.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        else:
            assert isinstance(req, ir.Request)
            chat, route = await gw.router.chat(req, timeout=gw.request_timeout)
            assert isinstance(chat, ir.Response)  # no raw body given: never the fast path's bytes
            usage = chat.usage or ir.Usage()
            out = face.encode_response(chat)
    except BaseException as exc:
        status = failure_status(exc, False)
        await asyncio.shield(
            acc.finish(
                request, reservation, status=status, error=exc, started=started, call_type=call_type, batch=batch_rates
            )
        )
        if isinstance(exc, RateLimitError) and exc.provider == "llmswitch":
            # every deployment is at its rpm/tpm caps or resting: not the line's fault, try it again later
            raise RetryLater(exc.retry_after or 1.0) from exc
        if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
            raise
        return error_outcome(line, face, exc, spend_id)
    await acc.finish(
        request,
        reservation,
        status=200,
        route=route,
        usage=usage,
        started=started,
        call_type=call_type,
        batch=batch_rates,
    )
    return outcome(line, 200, out, spend_id)


def _auth_gone() -> APIError:
    from llmswitch.errors import AuthenticationError

    return AuthenticationError(
        "the API key that created this batch is no longer valid (deleted, blocked or expired)",
        status_code=401,
        provider="llmswitch",
        error_type="authentication_error",
    )
