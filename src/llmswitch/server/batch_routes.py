"""OpenAI's Files and Batch APIs and Anthropic's Message Batches, as routes of the gateway.

    POST   /v1/files                    upload (multipart: ``file``, ``purpose=batch``)
    GET    /v1/files                    list (``purpose``, ``limit``, ``after``)
    GET    /v1/files/{id}               retrieve
    GET    /v1/files/{id}/content       the bytes
    DELETE /v1/files/{id}               delete
    POST   /v1/batches                  create (``input_file_id``, ``endpoint``, ``completion_window``, ``metadata``)
    GET    /v1/batches[/{id}]           list, retrieve
    POST   /v1/batches/{id}/cancel      cancel
    POST   /v1/messages/batches         Anthropic: create from ``requests``
    GET    /v1/messages/batches[/{id}]  list, retrieve;  ``/{id}/results``: JSONL;  ``/{id}/cancel`` (POST)

The OpenAI routes are also served without ``/v1``. A key sees only its own files and batches (the
master key sees all).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from llmswitch.batch.lines import ENDPOINTS, ParsedLines, check_body, line_error, parse_openai_input
from llmswitch.batch.multipart import parse_form
from llmswitch.batch.objects import batch_object, file_object, message_batch_object
from llmswitch.batch.service import WINDOWS, BatchService, owner_of
from llmswitch.dialects._json import dumps, invalid, loads
from llmswitch.errors import APIStatusError
from llmswitch.server import http
from llmswitch.server.chat import parse_json

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway

_ID = r"([A-Za-z0-9_\-]{1,200})"
_OPENAI = re.compile(rf"(?:/v1)?/(files|batches)(?:/{_ID}(?:/(content|cancel))?)?")
_ANTHROPIC = re.compile(rf"/v1/messages/batches(?:/{_ID}(?:/(results|cancel))?)?")


def route(method: str, path: str) -> tuple[http.Handler, str, dict[str, Any]] | None:
    """The handler, its face (``openai`` or ``anthropic``) and path parameters of a batch route."""
    m = _ANTHROPIC.fullmatch(path)
    if m is not None:
        ident, verb = m.group(1), m.group(2)
        table: dict[tuple[str, bool, str | None], http.Handler] = {
            ("POST", False, None): create_message_batch,
            ("GET", False, None): list_message_batches,
            ("GET", True, None): retrieve_message_batch,
            ("GET", True, "results"): message_batch_results,
            ("POST", True, "cancel"): cancel_message_batch,
        }
        handler = table.get((method, ident is not None, verb))
        return (handler, "anthropic", {"batch_id": ident}) if handler is not None else None
    m = _OPENAI.fullmatch(path)
    if m is None:
        return None
    kind, ident, verb = m.group(1), m.group(2), m.group(3)
    openai_table: dict[tuple[str, str, bool, str | None], http.Handler] = {
        ("POST", "files", False, None): upload_file,
        ("GET", "files", False, None): list_files,
        ("GET", "files", True, None): retrieve_file,
        ("GET", "files", True, "content"): file_content,
        ("DELETE", "files", True, None): delete_file,
        ("POST", "batches", False, None): create_batch,
        ("GET", "batches", False, None): list_batches,
        ("GET", "batches", True, None): retrieve_batch,
        ("POST", "batches", True, "cancel"): cancel_batch,
    }
    handler = openai_table.get((method, kind, ident is not None, verb))
    if handler is None:
        return None
    params: dict[str, Any] = {"object_id": ident}
    if handler is upload_file:
        params["body_limit"] = "files"
    return handler, "openai", params


def _service(gw: Gateway) -> BatchService:
    service: BatchService | None = getattr(gw, "batches", None)
    if service is None:
        raise APIStatusError(
            "files and batches need a store: set database_url, or leave the embedded SQLite store on",
            status_code=400,
            provider="llmswitch",
            error_type="invalid_request_error",
        )
    return service


async def _json(send: http.Send, body: Any, status: int = 200) -> None:
    await http.send_bytes(send, status, dumps(body))


def _limit(request: http.Request, default: int, most: int) -> int:
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise invalid("limit", f"must be an integer from 1 to {most}")
    return int(raw)


def _page(data: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    more = len(data) > limit
    data = data[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }


# ---------------------------------------------------------------- files


async def upload_file(gw: Gateway, request: http.Request, send: http.Send) -> None:
    service = _service(gw)
    principal = gw.keys.authenticate(gw.key_of(request))
    form = parse_form(request.body, request.headers.get("content-type"))
    purpose = form.fields.get("purpose")
    if purpose != "batch":
        raise invalid("purpose", f"only 'batch' files are taken here, not {purpose!r}")
    if "file" not in form.files:
        raise invalid("file", "a file part named 'file' is required")
    filename, content = form.files["file"]
    if len(content) > service.settings.max_file_bytes:
        raise invalid("file", f"larger than the {service.settings.max_file_bytes} byte limit")
    rec = await service.files.save(
        owner=owner_of(principal), purpose="batch", filename=filename or "upload.jsonl", content=content
    )
    await _json(send, file_object(rec))


async def list_files(gw: Gateway, request: http.Request, send: http.Send) -> None:
    _service(gw)
    principal = gw.keys.authenticate(gw.key_of(request))
    limit = _limit(request, 10000, 10000)
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid("order", "must be 'asc' or 'desc'")
    owner = None if principal.is_master else owner_of(principal)
    recs = await gw.store.list_files(
        owner=owner, purpose=request.query.get("purpose") or None, limit=limit + 1, after=request.query.get("after")
    )
    data = [file_object(r) for r in recs]
    if order == "asc":
        data.reverse()
    await _json(send, _page(data, limit))


async def retrieve_file(gw: Gateway, request: http.Request, send: http.Send) -> None:
    principal = gw.keys.authenticate(gw.key_of(request))
    rec = await _service(gw).file_for(principal, request.state["object_id"])
    await _json(send, file_object(rec))


async def file_content(gw: Gateway, request: http.Request, send: http.Send) -> None:
    service = _service(gw)
    principal = gw.keys.authenticate(gw.key_of(request))
    rec = await service.file_for(principal, request.state["object_id"])
    content = await service.content_of(rec)
    await http.send_bytes(send, 200, content, content_type=b"application/octet-stream")


async def delete_file(gw: Gateway, request: http.Request, send: http.Send) -> None:
    service = _service(gw)
    principal = gw.keys.authenticate(gw.key_of(request))
    rec = await service.file_for(principal, request.state["object_id"])
    deleted = await service.files.delete(rec)
    await _json(send, {"id": rec.id, "object": "file", "deleted": deleted})


# ---------------------------------------------------------------- OpenAI batches


async def create_batch(gw: Gateway, request: http.Request, send: http.Send) -> None:
    service = _service(gw)
    principal = gw.keys.authenticate(gw.key_of(request))
    body = parse_json(request.body)
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    endpoint = body.get("endpoint")
    if endpoint not in ENDPOINTS:
        raise invalid("endpoint", f"must be one of {', '.join(ENDPOINTS)}; got {endpoint!r}")
    window = body.get("completion_window")
    if window not in WINDOWS:
        raise invalid("completion_window", f"must be '24h', not {window!r}")
    metadata = body.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and len(metadata) <= 16
        and all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in metadata.items()
        )
    ):
        raise invalid("metadata", "at most 16 string keys (64 characters) and string values (512 characters)")
    file_id = body.get("input_file_id")
    if not isinstance(file_id, str) or not file_id:
        raise invalid("input_file_id", "the id of an uploaded file (purpose 'batch') is required")
    try:
        rec = await service.file_for(principal, file_id)
    except APIStatusError as exc:
        raise invalid("input_file_id", f"no file {file_id!r}") from exc
    if rec.purpose != "batch":
        raise invalid("input_file_id", f"file {file_id!r} has purpose {rec.purpose!r}, not 'batch'")
    content = await service.content_of(rec)
    parsed = parse_openai_input(content, endpoint, max_lines=service.settings.max_lines)
    if len(parsed.models) > 1:
        raise invalid("input_file_id", f"a batch's lines must all name one model; they name {parsed.models}")
    batch = await service.create(
        principal,
        parsed,
        endpoint=endpoint,
        input_file_id=file_id,
        completion_window=window,
        metadata=metadata,
    )
    await _json(send, batch_object(batch))


async def list_batches(gw: Gateway, request: http.Request, send: http.Send) -> None:
    principal = gw.keys.authenticate(gw.key_of(request))
    _service(gw)
    limit = _limit(request, 20, 100)
    owner = None if principal.is_master else owner_of(principal)
    recs = await gw.store.list_batches(owner=owner, api="openai", limit=limit + 1, after=request.query.get("after"))
    await _json(send, _page([batch_object(r) for r in recs], limit))


async def retrieve_batch(gw: Gateway, request: http.Request, send: http.Send) -> None:
    principal = gw.keys.authenticate(gw.key_of(request))
    rec = await _service(gw).batch_for(principal, request.state["object_id"])
    await _json(send, batch_object(rec))


async def cancel_batch(gw: Gateway, request: http.Request, send: http.Send) -> None:
    principal = gw.keys.authenticate(gw.key_of(request))
    rec = await _service(gw).cancel(principal, request.state["object_id"])
    await _json(send, batch_object(rec))


# ---------------------------------------------------------------- Anthropic message batches


def _base_url(request: http.Request) -> str:
    host = request.headers.get("host", "localhost")
    proto = request.headers.get("x-forwarded-proto", "http")
    return f"{proto}://{host}"


async def create_message_batch(gw: Gateway, request: http.Request, send: http.Send) -> None:
    service = _service(gw)
    principal = gw.keys.authenticate(gw.key_of(request))
    body = parse_json(request.body)
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise invalid("requests", "a non-empty list of {custom_id, params} is required")
    if len(requests) > 100_000:
        raise invalid("requests", "at most 100,000 requests a batch")
    parsed = ParsedLines()
    seen: set[str] = set()
    for i, item in enumerate(requests):
        where = f"requests.{i}"
        if not isinstance(item, dict):
            raise invalid(where, "each request must be an object with custom_id and params")
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", custom_id):
            raise invalid(f"{where}.custom_id", "1 to 64 letters, digits, '_' or '-' are required")
        if custom_id in seen:
            raise invalid(f"{where}.custom_id", f"{custom_id!r} is used by an earlier request; each must be unique")
        seen.add(custom_id)
        params = item.get("params")
        if not isinstance(params, dict):
            raise invalid(f"{where}.params", "a Messages API request object is required")
        try:
            check_body("/v1/messages", params, None, parsed)
        except APIStatusError as exc:
            raise invalid(f"{where}.{exc.param or 'params'}", _why(exc)) from exc
        parsed.lines.append((custom_id, dumps(params).decode()))
    batch = await service.create(
        principal, parsed, endpoint="/v1/messages", input_file_id="", api="anthropic", batch_id=_msgbatch_id()
    )
    await _json(send, message_batch_object(batch, _base_url(request)))


def _why(exc: APIStatusError) -> str:
    message = str(exc.message)
    _, sep, tail = message.partition("': ")
    return tail if sep else message


def _msgbatch_id() -> str:
    from llmswitch.batch.files import new_id

    return new_id("msgbatch_")


async def _message_batch(gw: Gateway, request: http.Request) -> Any:
    principal = gw.keys.authenticate(gw.key_of(request))
    rec = await _service(gw).batch_for(principal, request.state["batch_id"])
    if rec.api != "anthropic":
        from llmswitch.batch.service import not_found

        raise not_found("message batch", rec.id)
    return rec


async def retrieve_message_batch(gw: Gateway, request: http.Request, send: http.Send) -> None:
    rec = await _message_batch(gw, request)
    await _json(send, message_batch_object(rec, _base_url(request)))


async def list_message_batches(gw: Gateway, request: http.Request, send: http.Send) -> None:
    principal = gw.keys.authenticate(gw.key_of(request))
    _service(gw)
    limit = _limit(request, 20, 1000)
    owner = None if principal.is_master else owner_of(principal)
    recs = await gw.store.list_batches(
        owner=owner, api="anthropic", limit=limit + 1, after=request.query.get("after_id")
    )
    data = [message_batch_object(r, _base_url(request)) for r in recs]
    page = _page(data, limit)
    del page["object"]
    await _json(send, page)


async def cancel_message_batch(gw: Gateway, request: http.Request, send: http.Send) -> None:
    rec = await _message_batch(gw, request)
    principal = gw.keys.authenticate(gw.key_of(request))
    rec = await _service(gw).cancel(principal, rec.id)
    await _json(send, message_batch_object(rec, _base_url(request)))


async def message_batch_results(gw: Gateway, request: http.Request, send: http.Send) -> None:
    """The results as JSONL of Anthropic's shape, from the batch's lines (in input order)."""
    rec = await _message_batch(gw, request)
    if rec.status not in ("completed", "cancelled", "expired", "failed"):
        raise APIStatusError(
            f"message batch {rec.id!r} has not ended yet; its results are ready once processing_status is 'ended'",
            status_code=400,
            provider="llmswitch",
            error_type="invalid_request_error",
        )
    out: list[bytes] = []
    after = 0
    while True:
        page = await gw.store.batch_lines(rec.id, after, 1000)
        if not page:
            break
        for line in page:
            out.append(dumps({"custom_id": line.custom_id, "result": _anthropic_result(rec.status, line)}) + b"\n")
        after = page[-1].line_no
    await http.send_bytes(send, 200, b"".join(out), content_type=b"application/binary")


def _anthropic_result(status: str, line: Any) -> dict[str, Any]:
    if line.state != "done" or line.response is None:
        return {"type": "canceled" if status == "cancelled" else "expired"}
    response = loads(line.response)
    if not line.failed:
        return {"type": "succeeded", "message": response["body"]}
    error = response.get("body")
    if not (isinstance(error, dict) and error.get("type") == "error"):
        error = {"type": "error", "error": {"type": "api_error", "message": str(error)}}
    return {"type": "errored", "error": error}


__all__ = ["line_error", "route"]
