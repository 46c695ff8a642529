"""Who is calling: the key from any SDK's header, checked against keys held in memory.

Keys live in the store hashed (sha256); the gateway keeps every key record in memory and refreshes
it in the background from the store's change feed, so authenticating a known key never touches the
database (DESIGN.md, hot-path rules). A key this instance does not hold yet (made on another instance
since the last refresh) is looked up in the store before it is refused: once per key however many
requests bring it at the same time, and not again for a few seconds when the store does not know it
either; the store is read for at most ``lookup_rate`` unknown keys a second (plus a burst as large),
so a flood of made-up keys cannot hammer the database. Blocking, changing or deleting a key takes
effect here at the next refresh (``refresh_interval``, one second by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmswitch.errors import AuthenticationError, PermissionDeniedError
from llmswitch.server.refresh import refresh_forever
from llmswitch.server.soft_budgets import notice_spend
from llmswitch.store.errors import StoreError

if TYPE_CHECKING:
    from llmswitch.server.http import Request

log = logging.getLogger("llmswitch.auth")


def extract_key(req: Request) -> str | None:
    """The caller's key from ``Authorization: Bearer``, ``x-api-key`` (Anthropic SDK),
    ``x-goog-api-key`` or ``?key=`` (Google SDK), or ``api-key`` (Azure clients)."""
    h = req.headers
    auth = h.get("authorization")
    if auth:
        if auth.startswith("Bearer "):  # what nearly every client sends
            value = auth[7:].strip()
            if value:
                return value
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    for name in ("x-api-key", "x-goog-api-key", "api-key"):
        v = h.get(name)
        if v:
            return v.strip()
    if req.query_string and b"key=" in req.query_string:
        return req.query.get("key") or None
    return None


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the master key, or a virtual key's record."""

    key_hash: str
    is_master: bool
    record: Any = None

    @property
    def alias(self) -> str | None:
        return getattr(self.record, "key_alias", None) if self.record is not None else "master"

    def allows_model(self, model: str) -> bool:
        if self.is_master or self.record is None:
            return True
        models = getattr(self.record, "models", None) or []
        if not models or "all-proxy-models" in models or "*" in models:
            return True
        return any(m == model or (m.endswith("*") and model.startswith(m[:-1])) for m in models)


def _auth_error(message: str) -> AuthenticationError:
    return AuthenticationError(message, status_code=401, provider="llmswitch", error_type="authentication_error")


# keys remembered after a successful check, so a caller's next request skips hashing its key; past
# this many, the memory is cleared (it refills with the keys in use)
_MAX_REMEMBERED = 10_000
# key hashes the store did not know, remembered this long, at most this many (least recent dropped)
NEGATIVE_TTL_S = 5.0
NEGATIVE_SIZE = 10_000
# store reads for keys unknown here: this many a second, and bursts of as many
LOOKUP_RATE = 50.0
_MAX_REMOVED = 10_000


class KeyCache:
    """Key records by hash, in memory, kept fresh from the store in the background.

    A key that authenticated is remembered with its principal, so its next request costs one dict
    lookup instead of a SHA-256. The memory holds keys in clear (as the process does anyway while it
    reads a request); it is never logged, and an entry is only used while the key's record is still
    the one in :attr:`_keys`, so a refresh, a ``put`` or a ``remove`` (a key blocked, changed,
    deleted) takes effect on the very next request, and an expiry is checked on every request.
    """

    def __init__(
        self,
        store: Any,
        master_key: str | None,
        *,
        refresh_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        lookup_rate: float = LOOKUP_RATE,
        negative_ttl_s: float = NEGATIVE_TTL_S,
        negative_size: int = NEGATIVE_SIZE,
    ) -> None:
        self._store = store
        self._clock = clock  # epoch seconds, for expiries (inject one in tests)
        self._monotonic = monotonic  # for the negative cache and the lookup rate
        # hash -> monotonic time until which the store is not asked about it again
        self._missing: OrderedDict[str, float] = OrderedDict()
        self._negative_ttl_s = negative_ttl_s
        self._negative_size = negative_size
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._lookup_rate = lookup_rate
        self._lookup_tokens = lookup_rate
        self._lookup_at = monotonic()
        self._lookup_failing = False
        # bumped by every refresh and removal; _removed says when each recently removed key went, so
        # a lookup whose read raced a removal never brings the key back
        self._generation = 0
        self._removed: OrderedDict[str, int] = OrderedDict()
        self.store_lookups = 0  # store reads made for keys unknown here
        self._master_hash = hash_token(master_key) if master_key else None
        self._keys: dict[str, Any] = {}
        # key in clear -> (principal, the record it was made from, expiry as epoch seconds or None)
        self._remembered: dict[str, tuple[Principal, Any, float | None]] = {}
        self._cursor = 0
        self._interval = refresh_interval
        self._task: asyncio.Task[None] | None = None
        self.auth_required = bool(master_key) or store is not None

    async def start(self) -> None:
        if self._store is None:
            return
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_loop(), name="llmswitch-key-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> None:
        records, deleted, cursor = await self._store.keys_changed_since(self._cursor)
        if cursor < self._cursor:  # the database was replaced: start over
            self._keys.clear()
            self._cursor = 0
            records, deleted, cursor = await self._store.keys_changed_since(0)
        self._generation += 1
        if self._cursor == 0:
            # a full load lists no deletions: it is the whole truth, also about keys a lookup added
            old, self._keys = self._keys, {rec.token_hash: rec for rec in records}
            for rec in records:
                notice_spend(old.get(rec.token_hash), rec)
            for h in old.keys() - self._keys.keys():
                self._mark_removed(h)
        else:
            for rec in records:
                notice_spend(self._keys.get(rec.token_hash), rec)
                self._keys[rec.token_hash] = rec
        for h in deleted:
            self._keys.pop(h, None)
            self._mark_removed(h)
        self._cursor = cursor

    async def _refresh_loop(self) -> None:
        await refresh_forever(self.refresh, self._interval, "keys")

    def put(self, record: Any) -> None:
        self._keys[record.token_hash] = record

    def records(self) -> list[Any]:
        """Every key record held in memory (the dashboard's budget view reads them)."""
        return list(self._keys.values())

    def remove(self, key_hash: str) -> None:
        self._keys.pop(key_hash, None)
        self._generation += 1
        self._mark_removed(key_hash)

    def _mark_removed(self, key_hash: str) -> None:
        self._removed[key_hash] = self._generation
        self._removed.move_to_end(key_hash)
        if len(self._removed) > _MAX_REMOVED:
            self._removed.popitem(last=False)  # only lookups in flight (milliseconds) ever ask

    def lookup_needed(self, key: str) -> bool:
        """Whether ``key`` may be one this instance does not hold yet (then ``await lookup(key)``).

        False at the cost of a dict lookup for a key that authenticated before, as most requests' do."""
        return self._store is not None and key not in self._remembered

    async def lookup(self, key: str) -> None:
        """Load ``key``'s record from the store if it is not held here, so :meth:`authenticate` knows it.

        Concurrent lookups of one key share one store read; a key the store does not know is not looked
        up again for ``negative_ttl_s``; and past ``lookup_rate`` reads a second, unknown keys are
        refused without a read (a key made elsewhere is then known at the next refresh, as before).
        """
        h = hash_token(key)
        if h in self._keys or (self._master_hash is not None and hmac.compare_digest(h, self._master_hash)):
            return
        now = self._monotonic()
        until = self._missing.get(h)
        if until is not None:
            if until > now:
                self._missing.move_to_end(h)
                return
            del self._missing[h]
        pending = self._inflight.get(h)
        if pending is None:
            if not self._may_read(now):
                return
            pending = self._inflight[h] = asyncio.ensure_future(self._fetch(h))
            pending.add_done_callback(functools.partial(self._fetched, h))
        # shielded: a caller that goes away must not cancel the read others wait on
        await asyncio.shield(pending)

    def _may_read(self, now: float) -> bool:
        tokens = min(self._lookup_rate, self._lookup_tokens + (now - self._lookup_at) * self._lookup_rate)
        self._lookup_at = now
        if tokens < 1.0:
            self._lookup_tokens = tokens
            return False
        self._lookup_tokens = tokens - 1.0
        return True

    async def _fetch(self, h: str) -> None:
        generation = self._generation
        self.store_lookups += 1
        try:
            rec = await self._store.get_key(h)
        except Exception as exc:
            # nothing is remembered, so it is asked again
            if not self._lookup_failing:
                self._lookup_failing = True
                log.warning("looking up a key in the store failed: %s", exc)
            if isinstance(exc, StoreError):
                raise  # an outage: whether the key exists is unknown, a 503 (not a 401) says so
            return  # anything else: the key is refused as unknown this time
        self._lookup_failing = False
        if rec is None:
            self._missing[h] = self._monotonic() + self._negative_ttl_s
            if len(self._missing) > self._negative_size:
                self._missing.popitem(last=False)
            return
        removed = self._removed.get(h)
        if h in self._keys or (removed is not None and removed > generation):
            # a refresh brought it meanwhile, or removed it after this read began: theirs is newer
            return
        self._keys[h] = rec

    def _fetched(self, h: str, done: asyncio.Future[None]) -> None:
        self._inflight.pop(h, None)
        if not done.cancelled():
            done.exception()  # retrieved here too: every caller may have gone away

    def is_master(self, key: str | None) -> bool:
        return (
            key is not None
            and self._master_hash is not None
            and hmac.compare_digest(hash_token(key), self._master_hash)
        )

    def authenticate(self, key: str | None) -> Principal:
        """The principal for a key; AuthenticationError naming what is wrong otherwise."""
        if not self.auth_required:
            return Principal("", True)
        if not key:
            raise _auth_error(
                "no API key: send it as 'Authorization: Bearer <key>', 'x-api-key', 'x-goog-api-key' or '?key='"
            )
        known = self._remembered.get(key)
        if known is not None:
            principal, rec, expires_at = known
            if rec is None or (
                self._keys.get(principal.key_hash) is rec and (expires_at is None or self._clock() < expires_at)
            ):
                return principal
            del self._remembered[key]  # changed, deleted or expired since: check it afresh
        h = hash_token(key)
        if self._master_hash is not None and hmac.compare_digest(h, self._master_hash):
            principal = Principal(h, True)
            self._remember(key, principal, None, None)
            return principal
        rec = self._keys.get(h)
        if rec is None:
            raise _auth_error("invalid API key")
        if getattr(rec, "blocked", False):
            raise _auth_error("this API key is blocked")
        expires = getattr(rec, "expires", None)
        expires_at = expires.timestamp() if expires is not None else None
        if expires_at is not None and expires_at <= self._clock():
            raise _auth_error("this API key has expired")
        principal = Principal(h, False, rec)
        self._remember(key, principal, rec, expires_at)
        return principal

    def principal_for(self, key_hash: str) -> Principal | None:
        """The principal of a key known by its hash (work a key started, such as a batch, run later); ``None``
        when the key is gone, blocked or expired since."""
        if not self.auth_required or not key_hash:  # "" stands for the master key (see llmswitch.batch)
            return Principal(self._master_hash or "", True)
        if self._master_hash is not None and hmac.compare_digest(key_hash, self._master_hash):
            return Principal(key_hash, True)
        rec = self._keys.get(key_hash)
        if rec is None or getattr(rec, "blocked", False):
            return None
        expires = getattr(rec, "expires", None)
        if expires is not None and expires.timestamp() <= self._clock():
            return None
        return Principal(key_hash, False, rec)

    def _remember(self, key: str, principal: Principal, rec: Any, expires_at: float | None) -> None:
        if len(self._remembered) >= _MAX_REMEMBERED:
            self._remembered.clear()
        self._remembered[key] = (principal, rec, expires_at)


def model_not_allowed(model: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"this API key is not allowed to use model {model!r}",
        status_code=403,
        provider="llmswitch",
        error_type="permission_error",
        param="model",
    )
