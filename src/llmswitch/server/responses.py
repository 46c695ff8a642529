"""OpenAI's Responses API on the gateway: ``POST /v1/responses`` on any deployment, whole and streamed,
``GET`` / ``DELETE /v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items``.

A request is served as a chat request is (:func:`llmswitch.server.chat.handle_chat`: keys, limits, the
router, spend), read and answered by the Responses face. ``previous_response_id`` continues a stored
response: its input items and its output are put before the new input. A response is stored unless the
request says ``store: false``, for the key that made it (another key gets a 404 for it, as for one that
does not exist).

With a store (a master key or ``database_url``: SQLite by default, PostgreSQL for several instances),
stored responses live in it, so a continuation may reach any worker or instance; an answer is sent
only once its copy is written. Without one they live in this process's memory (the newest
``LLMSWITCH_RESPONSES_STORE_SIZE``, 10,000 by default). Either way for ``LLMSWITCH_RESPONSES_STORE_TTL``
seconds, a day by default. A store that fails the write is logged and the response kept in this
process's memory instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from llmswitch import ir
from llmswitch.dialects import openai_responses
from llmswitch.dialects._json import dumps, invalid, loads
from llmswitch.errors import NotFoundError
from llmswitch.server import faces, http
from llmswitch.server.chat import handle_chat, parse_json
from llmswitch.store.records import utcnow
from llmswitch.store.responses import StoredResponse

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway
    from llmswitch.store.base import Store

log = logging.getLogger("llmswitch.server")
# how long an answer may wait for its stored copy before it goes out with the copy in memory only
_WRITE_TIMEOUT_S = 5.0


@dataclass
class Stored:
    owner: str
    input: list[dict[str, Any]]
    response: dict[str, Any]
    expires_at: float  # unix seconds


class ResponseStore:
    """Stored responses, for their owner, each kept ``ttl`` seconds: in ``db`` when there is one, else
    (and when ``db`` fails a write) the newest ``size`` in this process's memory."""

    def __init__(self, size: int | None = None, ttl: float | None = None, db: Store | None = None) -> None:
        self.size = size if size is not None else int(os.environ.get("LLMSWITCH_RESPONSES_STORE_SIZE", "10000"))
        self.ttl = ttl if ttl is not None else float(os.environ.get("LLMSWITCH_RESPONSES_STORE_TTL", "86400"))
        self.db = db
        self._items: OrderedDict[str, Stored] = OrderedDict()

    def put(self, owner: str, input_items: list[dict[str, Any]], response: dict[str, Any]) -> Awaitable[None] | None:
        """Keep ``response``; with a store, the write to wait for before the answer's last byte."""
        expires_at = time.time() + self.ttl
        if self.db is None:
            self._remember(Stored(owner, input_items, response, expires_at))
            return None
        now = utcnow()
        row = StoredResponse(
            response_id=response["id"],
            owner=owner,
            input=dumps(input_items),
            response=dumps(response),
            created_at=now,
            expires_at=now + timedelta(seconds=self.ttl),
        )
        return asyncio.ensure_future(self._write(row, Stored(owner, input_items, response, expires_at)))

    async def _write(self, row: StoredResponse, stored: Stored) -> None:
        assert self.db is not None
        try:
            async with asyncio.timeout(_WRITE_TIMEOUT_S):
                await self.db.put_response(row)
        except Exception as exc:  # the answer still goes out; only this process can continue it
            log.warning(
                "stored response %s kept in this process only: the store failed to write it (%s: %s)",
                row.response_id,
                type(exc).__name__,
                exc,
            )
            self._remember(stored)

    def _remember(self, stored: Stored) -> None:
        rid = stored.response["id"]
        self._items[rid] = stored
        self._items.move_to_end(rid)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    async def get(self, owner: str, rid: str, *, param: str = "response_id") -> Stored:
        got = self._items.get(rid)
        if got is None and self.db is not None:
            row = await self.db.get_response(rid)
            if row is not None:
                got = Stored(row.owner, loads(row.input), loads(row.response), row.expires_at.timestamp())
        if got is None or got.owner != owner or got.expires_at <= time.time():
            raise NotFoundError(
                f"No response found with id '{rid}'.",
                status_code=404,
                provider="llmswitch",
                error_type="invalid_request_error",
                param=param,
            )
        return got

    async def delete(self, owner: str, rid: str) -> None:
        await self.get(owner, rid)
        self._items.pop(rid, None)
        if self.db is not None:
            await self.db.delete_response(rid)


def _store(gw: Gateway) -> ResponseStore:
    store: ResponseStore | None = getattr(gw, "responses_store", None)
    if store is None:
        store = gw.responses_store = ResponseStore(db=gw.store)  # type: ignore[attr-defined]
    return store


def _owner(gw: Gateway, request: http.Request) -> str:
    principal = gw.keys.authenticate(gw.key_of(request))
    return str(getattr(principal, "key_hash", None) or "master")


def _items_of(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if isinstance(raw, list):
        return [i for i in raw if isinstance(i, dict)]
    raise invalid("input", "must be a string or a list of input items")


@dataclass
class ResponsesFace(faces.Face):
    """The Responses face for one request: it knows the request (a Response echoes its settings) and
    stores what it answered."""

    body: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
    input_items: list[dict[str, Any]] = field(default_factory=list)
    store: ResponseStore | None = None
    _encoder: openai_responses.StreamEncoder | None = None

    def decode_request(self, body: Any, *, model: str | None = None) -> ir.Request:
        return openai_responses.decode_request(body)

    def encode_response(self, resp: ir.Response, *, legacy_functions: bool | None = None) -> dict[str, Any]:
        out = openai_responses.encode_response(resp, self.body)
        self._keep(out)
        return out

    def stream_encoder(
        self,
        meta: ir.StreamMeta,
        *,
        include_usage: bool,
        json_array: bool = False,
        legacy_functions: bool | None = None,
    ) -> Any:
        self._encoder = _Storing(self, meta)
        return self._encoder

    def encode_error(self, exc: BaseException) -> tuple[int, dict[str, Any]]:
        return faces.OPENAI.encode_error(exc)

    def stream_error(self, exc: BaseException) -> bytes:
        encoder = self._encoder or openai_responses.StreamEncoder(ir.StreamMeta(), request=self.body)
        return encoder.error(exc)

    def _keep(self, response: dict[str, Any]) -> None:
        if self.store is not None and self.body.get("store", True) is not False:
            self.pending = self.store.put(self.owner, self.input_items, response)


class _Storing(openai_responses.StreamEncoder):
    def __init__(self, face: ResponsesFace, meta: ir.StreamMeta) -> None:
        super().__init__(meta, request=face.body)
        self._face = face

    def close(self) -> bytes:
        tail = super().close()
        if self.response is not None:
            self._face._keep(self.response)
        return tail


async def create(gw: Gateway, request: http.Request, send: http.Send) -> None:
    owner = _owner(gw, request)
    body = parse_json(request.body)
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    store = _store(gw)
    items = _items_of(body.get("input"))
    prev = body.get("previous_response_id")
    if prev is not None:
        if not isinstance(prev, str):
            raise invalid("previous_response_id", "must be a string")
        before = await store.get(owner, prev, param="previous_response_id")
        items = [*before.input, *before.response.get("output", []), *items]
    sent = {**body, "input": items}
    face = ResponsesFace("openai_responses", body=body, owner=owner, input_items=items, store=store)
    request.body = dumps(sent)
    await handle_chat(gw, request, send, face)


async def retrieve(gw: Gateway, request: http.Request, send: http.Send) -> None:
    stored = await _store(gw).get(_owner(gw, request), request.state["response_id"])
    await http.send_bytes(send, 200, dumps(stored.response))


async def input_items(gw: Gateway, request: http.Request, send: http.Send) -> None:
    """The stored response's input items, as OpenAI lists them: newest first unless ``order=asc``, ``limit``
    (1 to 100, 20 by default) after the item ``after``; message content as typed parts."""
    rid = request.state["response_id"]
    stored = await _store(gw).get(_owner(gw, request), rid)
    query = request.query
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid("order", f"must be 'asc' or 'desc', got {order!r}")
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        raise invalid("limit", f"must be an integer from 1 to 100, got {query.get('limit')!r}") from None
    if not 1 <= limit <= 100:
        raise invalid("limit", f"must be an integer from 1 to 100, got {limit}")
    items = [_listed(item, rid, n) for n, item in enumerate(stored.input)]
    if order == "desc":
        items.reverse()
    after = query.get("after")
    if after is not None:
        ids = [i["id"] for i in items]
        if after not in ids:
            raise invalid("after", f"no input item {after!r} in response {rid!r}")
        items = items[ids.index(after) + 1 :]
    data = items[:limit]
    page = {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": len(items) > limit}  # fmt: skip
    await http.send_bytes(send, 200, dumps(page))


def _listed(item: dict[str, Any], rid: str, n: int) -> dict[str, Any]:
    """An input item as the list shows it: an id of its own (the same on every read) and, for a message,
    its content as parts (a plain string is one ``input_text``, ``output_text`` for the assistant's)."""
    out = dict(item)
    message = out.get("type", "message") == "message"
    out.setdefault("id", f"{'msg' if message else 'item'}_{rid.removeprefix('resp_')}_{n}")
    if message:
        out["type"] = "message"
        content = out.get("content")
        if isinstance(content, str):
            kind = "output_text" if out.get("role") == "assistant" else "input_text"
            part: dict[str, Any] = {"type": kind, "text": content}
            if kind == "output_text":
                part["annotations"] = []
            out["content"] = [part]
        out.setdefault("status", "completed")
    return out


async def delete(gw: Gateway, request: http.Request, send: http.Send) -> None:
    rid = request.state["response_id"]
    await _store(gw).delete(_owner(gw, request), rid)
    await http.send_bytes(send, 200, dumps({"id": rid, "object": "response.deleted", "deleted": True}))


def route(method: str, path: str) -> tuple[Any, dict[str, Any]] | None:
    """The handler for a ``/v1/responses…`` path, and what the path says."""
    for prefix in ("/v1/responses", "/responses"):
        if path == prefix and method == "POST":
            return create, {}
        if path.startswith(prefix + "/"):
            rest = path[len(prefix) + 1 :]
            rid, _, tail = rest.partition("/")
            if not rid.startswith("resp_"):
                return None
            if tail == "" and method == "GET":
                return retrieve, {"response_id": rid}
            if tail == "" and method == "DELETE":
                return delete, {"response_id": rid}
            if tail == "input_items" and method == "GET":
                return input_items, {"response_id": rid}
    return None
