"""Cache keys: the model group plus a canonical form of everything that changes the answer.

    >>> from llmswitch import ir
    >>> a = ir.Request(model="g", messages=[ir.Message("user", [ir.TextPart("hi")])], user="u1", stream=True)
    >>> b = ir.Request(model="g", messages=[ir.Message("user", [ir.TextPart("hi")])], user="u2")
    >>> entry_key("team:t1", "", "g", a) == entry_key("team:t1", "", "g", b)
    True
    >>> entry_key("team:t1", "", "g", a) == entry_key("team:t2", "", "g", a)
    False

The request is the IR every client dialect decodes to, so an OpenAI, Anthropic or Gemini client asking
the same thing shares an entry, and a whole and a streamed request do too. Settings that do not change the
answer (the caller's user id, stream options, timeouts, metadata) are left out; everything else (messages,
tools, response format, sampling settings, provider extras) is in. Mapping keys are sorted, so the order a
client wrote a JSON object in does not split entries.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from llmswitch import ir

# extras that say how to call, or who asks, not what to answer
_NOT_IN_KEY = frozenset(
    {
        "stream_options", "timeout", "request_timeout", "user", "metadata", "litellm_metadata", "cache",
        "caching", "extra_headers", "num_retries", "max_retries", "mock_response", "tags", "trace_id",
    }
)  # fmt: skip
_encode = msgspec.json.Encoder(order="sorted").encode


def canonical(req: ir.Request, group: str) -> bytes:
    """The request as the bytes its key hashes (see the module docstring for what is left out)."""
    extra = req.extra
    if extra:
        extra = {k: v for k, v in extra.items() if k not in _NOT_IN_KEY} or None
    plain = msgspec.structs.replace(
        req,
        model=group,
        stream=False,
        include_usage=False,
        user=None,
        metadata=None,
        extra=extra,
        client_dialect=None,
        extra_dialect=None,
    )
    return _encode(plain)


def entry_key(partition: str, namespace: str, group: str, req: ir.Request) -> str:
    """The entry's key (64 hex digits): who may read it, its namespace, the group and the request."""
    h = hashlib.sha256()
    h.update(b"llmswitch-cache-1\x00")
    h.update(partition.encode())
    h.update(b"\x00")
    h.update(namespace.encode())
    h.update(b"\x00")
    h.update(canonical(req, group))
    return h.hexdigest()


def semantic_parts(partition: str, namespace: str, group: str, req: ir.Request) -> tuple[str, str] | None:
    """(scope, query) for the semantic index: the scope hashes everything but the last user turn's text,
    which is the query. ``None`` when the request does not end in a user turn of text alone."""
    if not req.messages:
        return None
    last = req.messages[-1]
    if last.role != "user" or not last.content or not all(isinstance(p, ir.TextPart) for p in last.content):
        return None
    query = last.text
    if not query.strip():
        return None
    before = msgspec.structs.replace(req, messages=[*req.messages[:-1], ir.Message(role="user", name=last.name)])
    return entry_key(partition, namespace, group, before), query


def partition_of(principal: Any, namespace: str | None, shared: frozenset[str]) -> str:
    """Whose entries a request reads and writes: its team's, else its key's, unless it names a namespace
    the config shares between tenants."""
    if namespace is not None and namespace in shared:
        return "shared"
    rec = getattr(principal, "record", None)
    team = getattr(rec, "team_id", None)
    if team:
        return f"team:{team}"
    key_hash = getattr(principal, "key_hash", None)
    if key_hash:
        return f"key:{key_hash}"
    return "gateway"  # the master key, or a gateway without keys: one tenant
