"""LiteLLM's ``POST /key/regenerate``: a key's secret replaced, everything else about it kept.

    curl -X POST localhost:4000/key/regenerate -H "Authorization: Bearer $MASTER_KEY" -d '{"key": "sk-..."}'

The body names the key (in clear or by its ``token`` hash); LiteLLM's ``/key/{key}/regenerate`` path
form is not served. The answer is the key's info with the new ``key``, shown this once, as
``/key/generate`` does. The old key stops authenticating at once on this gateway (at the next refresh
on others); its spend, budget, limits, team and user carry over to the new one. The master key, or
a team admin for a key of its team (team_scope.py), may regenerate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from msgspec import structs

from llmswitch.dialects._json import dumps
from llmswitch.errors import NotFoundError
from llmswitch.server import http
from llmswitch.server.admin import _info, _object, _store_required, _token_of
from llmswitch.server.subject_fields import refuse_unsupported
from llmswitch.server.team_scope import admin_scope

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway


async def key_regenerate(gw: Gateway, request: http.Request, send: http.Send) -> None:
    from llmswitch.store import KeyRecord, generate_key

    scope = admin_scope(gw, request)
    store = _store_required(gw)
    body = _object(request)
    refuse_unsupported(body, frozenset({"key"}))
    token = _token_of(body.get("key"), "key")
    old = await store.get_key(token)
    if old is None:
        raise NotFoundError("no such key", status_code=404, provider="llmswitch", param="key")
    scope.check_key(old)
    key = generate_key()
    kept = {name: value for name, value in structs.asdict(old).items() if name not in ("token_hash", "key_name")}
    # the new key first: a failure between the two writes leaves the old one working, never neither
    rec = await store.create_key(KeyRecord.for_key(key, **kept))
    gw.keys.put(rec)
    await store.delete_keys([token])
    gw.keys.remove(token)
    await http.send_bytes(send, 200, dumps(_info(rec) | {"key": key}))


ROUTES: dict[tuple[str, str], http.Handler] = {("POST", "/key/regenerate"): key_regenerate}
