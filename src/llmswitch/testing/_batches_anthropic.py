"""Anthropic's Message Batches in the fake upstream (see :mod:`llmswitch.testing._batches`)."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from llmswitch.dialects._json import dumps, invalid
from llmswitch.errors import APIStatusError
from llmswitch.testing._answers import Host, json_response
from llmswitch.testing._batches import (
    Handler,
    Job,
    Line,
    _advance,
    _job,
    _now_iso,
    _serve,
    batches_of,
)
from llmswitch.testing._faces import ANTHROPIC
from llmswitch.testing._recorded import RecordedRequest

_ANTHROPIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")


def anthropic_routes(host: Host, app: web.Application) -> None:
    store = batches_of(host)

    async def create(rec: RecordedRequest) -> web.StreamResponse:
        body = rec.json if isinstance(rec.json, dict) else {}
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise invalid("requests", "a non-empty list of requests is required")
        job = Job("anthropic", store.next_id("msgbatch_fake"), [], time.time())
        seen: set[str] = set()
        for i, r in enumerate(requests):
            cid = r.get("custom_id") if isinstance(r, dict) else None
            if not isinstance(cid, str) or not _ANTHROPIC_ID.match(cid) or cid in seen:
                raise invalid(f"requests.{i}.custom_id", "must be 1-64 letters, digits, - or _, unique in the batch")
            params = r.get("params")
            if not isinstance(params, dict) or params.get("stream"):
                raise invalid(f"requests.{i}.params", "must be a Messages request, not streamed")
            try:
                ANTHROPIC.decode_request(params, model=None)
            except APIStatusError as exc:
                raise invalid(f"requests.{i}.params", exc.message) from exc
            seen.add(cid)
            job.lines.append(Line(cid, ANTHROPIC, params))
        store.jobs[job.id] = job
        return json_response(200, _anthropic_batch(job, _origin(rec)), ANTHROPIC)

    async def retrieve(rec: RecordedRequest) -> web.StreamResponse:
        job = _job(store, "anthropic", rec.path.rstrip("/").rsplit("/", 1)[1])
        await _advance(host, store, job)
        return json_response(200, _anthropic_batch(job, _origin(rec)), ANTHROPIC)

    async def cancel(rec: RecordedRequest) -> web.StreamResponse:
        job = _job(store, "anthropic", rec.path.rsplit("/", 2)[1])
        if job.ended is None:
            job.cancel_asked = True
        return json_response(200, _anthropic_batch(job, _origin(rec)), ANTHROPIC)

    async def results(rec: RecordedRequest) -> web.StreamResponse:
        job = _job(store, "anthropic", rec.path.rsplit("/", 2)[1])
        if job.ended is None:
            raise invalid("message_batch_id", f"Batch {job.id} has not ended: its results are not ready")
        out = []
        for line in reversed(job.lines):
            if line.answer is None:
                result: dict[str, Any] = {"type": "canceled" if job.ended == "cancelled" else "expired"}
            elif line.answer[0] == 200:
                result = {"type": "succeeded", "message": line.answer[1]}
            else:
                result = {"type": "errored", "error": line.answer[1]}
            out.append(dumps({"custom_id": line.custom_id, "result": result}))
        return web.Response(body=b"\n".join(out) + b"\n", headers={"content-type": "application/x-jsonl"})

    def route(handle: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return await _serve(request, host, ANTHROPIC, handle)

        return serve

    app.router.add_post("/v1/messages/batches", route(create))
    app.router.add_get("/v1/messages/batches/{batch_id}", route(retrieve))
    app.router.add_post("/v1/messages/batches/{batch_id}/cancel", route(cancel))
    app.router.add_get("/v1/messages/batches/{batch_id}/results", route(results))


def _origin(rec: RecordedRequest) -> str:
    return f"http://{rec.headers.get('host', '127.0.0.1')}"


def _anthropic_batch(job: Job, origin: str) -> dict[str, Any]:
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    for line in job.lines:
        if job.ended is None:
            counts["processing"] += 1
        elif line.answer is None:
            counts["canceled" if job.ended == "cancelled" else "expired"] += 1
        else:
            counts["succeeded" if line.answer[0] == 200 else "errored"] += 1
    t = _now_iso(job.created)
    status = "ended" if job.ended is not None else "canceling" if job.cancel_asked else "in_progress"
    return {"id": job.id, "type": "message_batch", "processing_status": status, "request_counts": counts,
            "ended_at": t if job.ended else None, "created_at": t, "expires_at": _now_iso(job.created + 86400),
            "archived_at": None, "cancel_initiated_at": t if job.cancel_asked else None,
            "results_url": f"{origin}/v1/messages/batches/{job.id}/results" if job.ended else None}  # fmt: skip


# ---------------------------------------------------------------- Gemini
