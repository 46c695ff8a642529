"""Gemini's batch mode in the fake upstream (see :mod:`llmswitch.testing._batches`)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from llmswitch.dialects._json import invalid
from llmswitch.errors import APIStatusError
from llmswitch.testing._answers import Host, json_response
from llmswitch.testing._batches import (
    Job,
    Line,
    Route,
    _advance,
    _job,
    _not_found,
    _now_iso,
    _serve,
    batches_of,
)
from llmswitch.testing._faces import GEMINI
from llmswitch.testing._recorded import RecordedRequest

# google.rpc.Code of the canonical names an error in a batch reports
_RPC_CODES = {"INVALID_ARGUMENT": 3, "NOT_FOUND": 5, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
              "INTERNAL": 13, "UNAVAILABLE": 14, "UNAUTHENTICATED": 16}  # fmt: skip


async def gemini_create(request: web.Request, host: Host, model: str) -> web.StreamResponse:
    """``models/{model}:batchGenerateContent`` (the Gemini model route hands it here)."""
    store = batches_of(host)

    async def create(rec: RecordedRequest) -> web.StreamResponse:
        body = rec.json if isinstance(rec.json, dict) else {}
        raw_batch = body.get("batch")
        batch: dict[str, Any] = raw_batch if isinstance(raw_batch, dict) else {}
        config = batch.get("inputConfig") or batch.get("input_config") or {}
        holder = config.get("requests") if isinstance(config, dict) else None
        items = holder.get("requests") if isinstance(holder, dict) else None
        if not isinstance(items, list) or not items:
            raise invalid("batch.inputConfig.requests.requests", "a non-empty list of inlined requests is required")
        job = Job("gemini", store.next_id("fakebatch"), [], time.time())
        job.resource = {"model": f"models/{model}", "displayName": str(batch.get("displayName") or "")}
        for i, item in enumerate(items):
            req = item.get("request") if isinstance(item, dict) else None
            if not isinstance(req, dict):
                raise invalid(
                    f"batch.inputConfig.requests.requests[{i}].request", "a GenerateContentRequest is required"
                )
            try:
                GEMINI.decode_request(req, model=model)
            except APIStatusError as exc:
                raise invalid(f"batch.inputConfig.requests.requests[{i}].request", exc.message) from exc
            meta = item.get("metadata")
            job.lines.append(Line(str(i), GEMINI, req, url=f"models/{model}:generateContent", model=model))
            job.resource.setdefault("metadata", []).append(meta)
        store.jobs[job.id] = job
        return json_response(200, _gemini_operation(job), GEMINI)

    return await _serve(request, host, GEMINI, create, model=model)


def gemini_routes(host: Host, app: web.Application) -> Route:
    store = batches_of(host)

    async def batch(rec: RecordedRequest) -> web.StreamResponse:
        target = rec.path.rsplit("/", 1)[1]
        batch_id, _, method = target.partition(":")
        job = _job(store, "gemini", batch_id)
        if rec.method == "GET" and not method:
            await _advance(host, store, job)
            return json_response(200, _gemini_operation(job), GEMINI)
        if rec.method == "POST" and method == "cancel":
            if job.ended is None:
                job.cancel_asked = True
            return json_response(200, {}, GEMINI)
        raise _not_found(f"method {method!r} of batches/{batch_id}")

    async def serve(request: web.Request) -> web.StreamResponse:
        return await _serve(request, host, GEMINI, batch)

    app.router.add_get("/v1beta/batches/{target}", serve)
    for version in ("/v1beta", "/v1"):
        app.router.add_post(f"{version}/batches/{{target}}", serve)
    return serve  # GET /v1/batches/{target} is shared with OpenAI's retrieve


_GEMINI_STATES = {None: "BATCH_STATE_PENDING", "completed": "BATCH_STATE_SUCCEEDED", "failed": "BATCH_STATE_FAILED",
                  "cancelled": "BATCH_STATE_CANCELLED", "expired": "BATCH_STATE_EXPIRED"}  # fmt: skip


def _gemini_operation(job: Job) -> dict[str, Any]:
    """The batch as ``GET batches/{id}`` answers it: an operation whose metadata is the batch."""
    name = f"batches/{job.id}"
    state = _GEMINI_STATES[job.ended] if job.ended or job.polls == 0 else "BATCH_STATE_RUNNING"
    items = []
    for line, meta in zip(job.lines, job.resource.get("metadata") or [], strict=True):
        if line.answer is None:
            continue
        status, body = line.answer
        item: dict[str, Any] = {"response": body} if status == 200 else {"error": _rpc_status(body)}
        if meta is not None:
            item["metadata"] = meta
        items.append(item)
    ok = sum(1 for it in items if "response" in it)
    stats = {"requestCount": str(len(job.lines)), "successfulRequestCount": str(ok),
             "failedRequestCount": str(len(items) - ok),
             "pendingRequestCount": str(0 if job.ended else len(job.lines))}  # fmt: skip
    t = _now_iso(job.created)
    meta_out: dict[str, Any] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                                "model": job.resource["model"], "displayName": job.resource["displayName"],
                                "createTime": t, "updateTime": t, "batchStats": stats, "state": state, "name": name}  # fmt: skip
    op: dict[str, Any] = {"name": name, "metadata": meta_out}
    if job.ended is not None:
        op["done"] = True
        if items:
            output = {"inlinedResponses": {"inlinedResponses": items}}
            meta_out["output"] = output
            op["response"] = {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
                **output,
            }
        meta_out["endTime"] = t
    return op


def _rpc_status(body: dict[str, Any]) -> dict[str, Any]:
    """A Google error envelope's error as the ``google.rpc.Status`` a batch reports (numeric code)."""
    raw = body.get("error")
    err: dict[str, Any] = raw if isinstance(raw, dict) else {}
    name = str(err.get("status") or "INTERNAL")
    return {"code": _RPC_CODES.get(name, 2), "message": str(err.get("message") or name), "status": name}
