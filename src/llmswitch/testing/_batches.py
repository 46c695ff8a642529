"""The providers' own batch APIs in the fake upstream: OpenAI's (and Azure's) Files and Batch APIs,
Anthropic's Message Batches and Gemini's batch mode, as each provider documents them.

A job runs on its own polls: each ``GET`` of a batch counts as one, and once more than
``up.batches.polls_to_finish`` polls have seen it running it ends, every line answered by the reply the
fake would give that request on its own (scripted replies, ``responder``, ``default``: so a test scripts
``Reply(status=400)`` for a line the provider rejects). ``up.batches.expire_after = n`` ends the next jobs
``expired`` after answering only their first ``n`` lines; a cancel ends a job at its next poll with the
lines not yet run cancelled. ``up.batches.faults`` holds replies answered, one per call, to the next
calls of these APIs (``Reply(status=429, retry_after=1)``); ``up.batches.api_key`` makes them refuse any
other key with a 401. Results come back in reverse order, as none of the APIs promises any order.
``up.batches`` exists once the fake is started; ``up.reset()`` leaves it as it is.

Routes: OpenAI ``POST /v1/files`` (multipart), ``GET /v1/files/{id}`` and ``/content``, ``POST
/v1/batches``, ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel`` (also without ``/v1``; Azure's
under ``/openai`` with ``api-version``, and ``/openai/v1``); Anthropic ``POST /v1/messages/batches``,
``GET …/{id}``, ``POST …/{id}/cancel``, ``GET …/{id}/results`` (JSONL); Gemini
``POST /v1beta/models/{model}:batchGenerateContent``, ``GET /v1beta/batches/{id}``,
``POST /v1beta/batches/{id}:cancel``.
"""

from __future__ import annotations

import email.parser
import email.policy
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from llmswitch.dialects._json import dumps, invalid, loads_lenient
from llmswitch.errors import APIStatusError, AuthenticationError, NotFoundError
from llmswitch.testing._answers import Host, answer, error_response, json_response
from llmswitch.testing._faces import ANTHROPIC, GEMINI, OPENAI, Face
from llmswitch.testing._recorded import RecordedRequest
from llmswitch.testing._reply import Reply, embedding_vector, estimate_tokens, to_error, to_response
from llmswitch.testing._routes import _record


@dataclass
class Line:
    custom_id: str
    face: Face
    body: dict[str, Any]  # the request in the face's own form
    url: str = "/v1/chat/completions"
    model: str | None = None  # where the body does not say it (Gemini: the batch's model)
    # once run: (status, body in the face's form); None: not run (cancelled or expired)
    answer: tuple[int, dict[str, Any]] | None = None


@dataclass
class Job:
    kind: str  # "openai" | "anthropic" | "gemini"
    id: str
    lines: list[Line]
    created: float
    resource: dict[str, Any] = field(default_factory=dict)
    polls: int = 0
    ended: str | None = None  # "completed" | "failed" | "cancelled" | "expired"
    cancel_asked: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    output: dict[str, str] = field(default_factory=dict)  # OpenAI: output / error file ids


class FakeBatches:
    """What the fake's batch APIs hold, and the knobs tests turn (see the module docstring)."""

    def __init__(self) -> None:
        self.polls_to_finish = 1
        self.expire_after: int | None = None
        self.api_key: str | None = None
        self.faults: deque[Reply] = deque()
        self.files: dict[str, tuple[str, str, bytes]] = {}  # id -> (purpose, filename, content)
        self.jobs: dict[str, Job] = {}
        self._n = 0

    def next_id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:06d}"


def batches_of(host: Host) -> FakeBatches:
    found = getattr(host, "batches", None)
    if not isinstance(found, FakeBatches):
        found = FakeBatches()
        setattr(host, "batches", found)  # noqa: B010
    return found


# ---------------------------------------------------------------- every call: key, faults, answer

Handler = Callable[[RecordedRequest], Awaitable[web.StreamResponse]]


def _key(request: web.Request, face: Face) -> str | None:
    h = request.headers
    auth = h.get("authorization", "")
    bearer = auth[7:] if auth.startswith("Bearer ") else None
    if face is ANTHROPIC:
        return h.get("x-api-key") or bearer  # newer anthropic SDKs send the key as a bearer token
    if face is GEMINI:
        return h.get("x-goog-api-key") or request.query.get("key")
    return h.get("api-key") or bearer


async def _serve(
    request: web.Request, host: Host, face: Face, handle: Handler, model: str | None = None
) -> web.StreamResponse:
    rec = await _record(request, host, face, model=model)
    store = batches_of(host)
    key = _key(request, face)
    if not key or (store.api_key is not None and key != store.api_key):
        error = AuthenticationError("invalid x-api-key" if face is ANTHROPIC else "Incorrect API key provided",
                                    status_code=401, error_type="authentication_error")  # fmt: skip
        if face is GEMINI:
            error = AuthenticationError("API key not valid. Please pass a valid API key.", status_code=400,
                                        error_type="INVALID_ARGUMENT", code="API_KEY_INVALID")  # fmt: skip
        return error_response(face, error, rec.number)
    azure = request.path.startswith("/openai/") and not request.path.startswith("/openai/v1/")
    if azure and "api-version" not in request.query:
        return error_response(face, invalid("api-version", "the api-version query parameter is required"), rec.number)
    reply = store.faults.popleft() if store.faults else Reply()

    async def success() -> web.StreamResponse:
        try:
            return await handle(rec)
        except APIStatusError as exc:
            return error_response(face, exc, rec.number)

    return await answer(request, host, face, reply, rec.number, success)


def _not_found(what: str) -> NotFoundError:
    return NotFoundError(f"No {what} found", status_code=404, error_type="not_found_error")


def _job(store: FakeBatches, kind: str, job_id: str) -> Job:
    job = store.jobs.get(job_id)
    if job is None or job.kind != kind:
        raise _not_found(f"batch with id {job_id!r}")
    return job


# ---------------------------------------------------------------- running a job


async def _run_line(host: Host, line: Line) -> tuple[int, dict[str, Any]]:
    """The answer the fake gives this line's request, in its face's form."""
    face = line.face
    number = host.next_number()
    embeddings = line.url.endswith("/embeddings")
    model = line.model or line.body.get("model")
    req = None if embeddings else face.decode_request(line.body, model=model)
    rec = RecordedRequest(method="POST", path=line.url, query={}, headers={}, body=dumps(line.body), json=line.body,
                          face=face.name, number=number, model=model, chat=req)  # fmt: skip
    reply = await host.choose(rec)
    if reply.is_error:
        return face.encode_error(to_error(reply))
    if embeddings:
        raw = line.body.get("input")
        texts = [raw] if isinstance(raw, str) else [str(t) for t in raw or ()]
        tokens = sum(max(1, estimate_tokens(t)) for t in texts)
        data = [
            {"object": "embedding", "index": i, "embedding": embedding_vector(t, reply.dims)}
            for i, t in enumerate(texts)
        ]
        return 200, {"object": "list", "data": data, "model": reply.model or line.body.get("model"),
                     "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip
    resp = to_response(reply, req, response_id=face.response_id(number), model=str(rec.model or ""),
                       call_ids=face.call_ids(number), created=int(time.time()))  # fmt: skip
    return 200, face.encode_response(resp)


async def _advance(host: Host, store: FakeBatches, job: Job) -> None:
    """One poll of a job: it ends (cancelled, or all its lines run) once enough polls have seen it."""
    if job.ended is not None:
        return
    job.polls += 1
    if job.cancel_asked:
        job.ended = "cancelled"
        return
    if job.errors:
        job.ended = "failed"
        return
    if job.polls <= store.polls_to_finish:
        return
    limit = store.expire_after
    for i, line in enumerate(job.lines):
        if limit is not None and i >= limit:
            break
        line.answer = await _run_line(host, line)
    job.ended = "expired" if limit is not None and limit < len(job.lines) else "completed"


def _now_iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


# ---------------------------------------------------------------- OpenAI and Azure


def _multipart(rec: RecordedRequest) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a multipart/form-data body by name: (filename, content)."""
    head = f"Content-Type: {rec.headers.get('content-type', '')}\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + rec.body)
    if not msg.is_multipart():
        raise invalid("file", "the upload must be multipart/form-data")
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str):
            out[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return out


Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _openai_routes(host: Host, app: web.Application, gemini: Route) -> None:
    store = batches_of(host)

    async def upload(rec: RecordedRequest) -> web.StreamResponse:
        parts = _multipart(rec)
        purpose = parts.get("purpose", (None, b""))[1].decode()
        if purpose not in ("batch", "fine-tune", "assistants", "user_data", "vision", "evals"):
            raise invalid("purpose", f"{purpose!r} is not a valid purpose")
        if "file" not in parts:
            raise invalid("file", "a file is required")
        filename, content = parts["file"]
        file_id = store.next_id("file-fake")
        store.files[file_id] = (purpose, filename or "upload", content)
        return json_response(200, _file_object(file_id, store.files[file_id]), OPENAI)

    async def create(rec: RecordedRequest) -> web.StreamResponse:
        body = rec.json if isinstance(rec.json, dict) else {}
        file_id, endpoint = body.get("input_file_id"), body.get("endpoint")
        if body.get("completion_window") != "24h":
            raise invalid("completion_window", "must be '24h'")
        if endpoint not in ("/v1/chat/completions", "/v1/embeddings", "/chat/completions", "/embeddings"):
            raise invalid("endpoint", f"{endpoint!r} is not a batch endpoint")
        if file_id not in store.files:
            raise _not_found(f"file with id {file_id!r}")
        job = Job("openai", store.next_id("batch_fake"), [], time.time())
        job.resource = {"endpoint": endpoint, "input_file_id": file_id, "metadata": body.get("metadata")}
        seen: set[str] = set()
        for n, raw in enumerate(store.files[file_id][2].splitlines(), 1):
            _openai_line(job, n, raw, str(endpoint), seen)
        store.jobs[job.id] = job
        return json_response(200, _openai_batch(store, job), OPENAI)

    async def retrieve(rec: RecordedRequest) -> web.StreamResponse:
        job = _job(store, "openai", rec.path.rstrip("/").rsplit("/", 1)[1])
        await _advance(host, store, job)
        return json_response(200, _openai_batch(store, job), OPENAI)

    async def cancel(rec: RecordedRequest) -> web.StreamResponse:
        job = _job(store, "openai", rec.path.rsplit("/", 2)[1])
        if job.ended is None:
            job.cancel_asked = True
        return json_response(200, _openai_batch(store, job), OPENAI)

    async def file_get(rec: RecordedRequest) -> web.StreamResponse:
        path = rec.path.rstrip("/")
        content = path.endswith("/content")
        file_id = path.rsplit("/", 2)[1] if content else path.rsplit("/", 1)[1]
        if file_id not in store.files:
            raise _not_found(f"file with id {file_id!r}")
        if not content:
            return json_response(200, _file_object(file_id, store.files[file_id]), OPENAI)
        return web.Response(body=store.files[file_id][2], headers={"content-type": "application/octet-stream"})

    def route(handle: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return await _serve(request, host, OPENAI, handle)

        return serve

    openai_retrieve = route(retrieve)

    async def shared(request: web.Request) -> web.StreamResponse:
        # GET /v1/batches/{id} is OpenAI's retrieve and Gemini's (api_version v1): told apart by the key header
        if "x-goog-api-key" in request.headers or "key" in request.query:
            return await gemini(request)
        return await openai_retrieve(request)

    for prefix in ("/v1", "", "/openai", "/openai/v1"):
        app.router.add_post(f"{prefix}/files", route(upload))
        app.router.add_get(f"{prefix}/files/{{file_id}}", route(file_get))
        app.router.add_get(f"{prefix}/files/{{file_id}}/content", route(file_get))
        app.router.add_post(f"{prefix}/batches", route(create))
        app.router.add_get(f"{prefix}/batches/{{batch_id}}", route(retrieve) if prefix != "/v1" else shared)
        app.router.add_post(f"{prefix}/batches/{{batch_id}}/cancel", route(cancel))


def _file_object(file_id: str, f: tuple[str, str, bytes]) -> dict[str, Any]:
    return {"object": "file", "id": file_id, "purpose": f[0], "filename": f[1], "bytes": len(f[2]),
            "created_at": int(time.time()), "expires_at": None, "status": "processed", "status_details": None}  # fmt: skip


def _openai_line(job: Job, n: int, raw: bytes, endpoint: str, seen: set[str]) -> None:
    """Validate line ``n`` of an input file as OpenAI does before a batch runs; a bad line fails the batch."""
    if not raw.strip():
        return
    obj = loads_lenient(raw)
    problem = None
    if not isinstance(obj, dict) or not isinstance(obj.get("body"), dict):
        problem = ("invalid_json", "the line is not a JSON object with a body")
    elif not isinstance(obj.get("custom_id"), str) or obj["custom_id"] in seen:
        problem = ("duplicate_custom_id", "custom_id must be a string unique in the file")
    elif obj.get("method") != "POST" or obj.get("url") != endpoint:
        problem = ("invalid_url", f"the line's url must be the batch's endpoint {endpoint}")
    else:
        try:
            if not endpoint.endswith("/embeddings"):
                OPENAI.decode_request(obj["body"], model=None)
            elif not isinstance(obj["body"].get("input"), str | list):
                raise invalid("input", "input is required")
        except APIStatusError as exc:
            problem = ("invalid_request", exc.message)
    if problem is not None:
        job.errors.append({"code": problem[0], "message": problem[1], "param": None, "line": n})
        return
    seen.add(obj["custom_id"])
    job.lines.append(Line(obj["custom_id"], OPENAI, obj["body"], url=endpoint))


def _openai_batch(store: FakeBatches, job: Job) -> dict[str, Any]:
    ended = job.ended
    if ended is not None and ended != "failed" and not job.output:
        _write_openai_files(store, job)
    status = ended or ("cancelling" if job.cancel_asked else "validating" if job.polls == 0 else "in_progress")
    answered = [line.answer for line in job.lines if line.answer is not None]
    ok = sum(1 for a in answered if a[0] == 200)
    t = int(job.created)
    return {"id": job.id, "object": "batch", "endpoint": job.resource["endpoint"],
            "errors": {"object": "list", "data": job.errors} if job.errors else None,
            "input_file_id": job.resource["input_file_id"], "completion_window": "24h", "status": status,
            "output_file_id": job.output.get("output"), "error_file_id": job.output.get("error"),
            "created_at": t, "in_progress_at": t if job.polls else None, "expires_at": t + 86400,
            "completed_at": t if ended == "completed" else None, "failed_at": t if ended == "failed" else None,
            "expired_at": t if ended == "expired" else None, "cancelled_at": t if ended == "cancelled" else None,
            "finalizing_at": t if ended == "completed" else None, "cancelling_at": t if job.cancel_asked else None,
            "request_counts": {"total": len(job.lines), "completed": ok, "failed": len(answered) - ok},
            "metadata": job.resource.get("metadata")}  # fmt: skip


def _write_openai_files(store: FakeBatches, job: Job) -> None:
    out: list[bytes] = []
    err: list[bytes] = []
    for i, line in reversed(list(enumerate(job.lines))):
        rid = f"batch_req_{job.id}_{i}"
        if line.answer is None:
            if job.ended == "expired":
                message = "This request could not be executed before the completion window expired."
                err.append(dumps({"id": rid, "custom_id": line.custom_id, "response": None,
                                  "error": {"code": "batch_expired", "message": message}}))  # fmt: skip
            continue  # a cancelled batch leaves the lines it never ran out
        status, body = line.answer
        record = {"id": rid, "custom_id": line.custom_id, "error": None,
                  "response": {"status_code": status, "request_id": f"req_{i}", "body": body}}  # fmt: skip
        (out if status == 200 else err).append(dumps(record))
    for key, lines in (("output", out), ("error", err)):
        if lines:
            file_id = store.next_id("file-fake")
            store.files[file_id] = ("batch_output", f"{job.id}_{key}.jsonl", b"\n".join(lines) + b"\n")
            job.output[key] = file_id


# ---------------------------------------------------------------- Anthropic


def mount(app: web.Application, host: Host) -> None:
    """Add the native batch routes of every face to the fake's application."""
    # each provider's routes build on this module's jobs (imported here, as they import this module)
    from llmswitch.testing._batches_anthropic import anthropic_routes
    from llmswitch.testing._batches_gemini import gemini_routes

    gemini = gemini_routes(host, app)
    _openai_routes(host, app, gemini)
    anthropic_routes(host, app)
