"""What the store keeps about a virtual key and a request's spend, and the checks every backend applies.

    >>> rec = KeyRecord.for_key("sk-abcdefghijklmnopqrstuvwxyz", user_id="u1", max_budget=10.0, budget_duration="30d")
    >>> rec.key_name, rec.spend, rec.blocked
    ('sk-...wxyz', 0.0, False)

Field names and meanings follow LiteLLM's key-management API, so its payloads map onto records
unchanged. Datetimes are always timezone-aware UTC (a naive one is taken to be UTC).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import structs

from llmswitch.store.durations import parse_duration
from llmswitch.store.keys import hash_key, mask_key

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_DATETIME_FIELDS = ("budget_reset_at", "expires", "created_at", "updated_at")


def utcnow() -> datetime:
    return datetime.now(UTC)


class KeyRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One virtual key as stored: its hash, never the key itself.

    ``models`` empty means every model is allowed; ``None`` limits mean no limit. ``spend`` is in USD.
    ``updated_at`` is the last change made through ``update_key``; spend increments leave it alone.
    """

    token_hash: str
    key_name: str | None = None
    key_alias: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    max_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: datetime | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    user_id: str | None = None
    team_id: str | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    expires: datetime | None = None
    blocked: bool = False
    spend: float = 0.0
    created_at: datetime = msgspec.field(default_factory=utcnow)
    updated_at: datetime = msgspec.field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if not isinstance(self.token_hash, str) or _SHA256_HEX.fullmatch(self.token_hash) is None:
            # never echo the value: a caller who got this wrong may have passed the key in clear
            got = f"a {len(self.token_hash)}-character string" if isinstance(self.token_hash, str) else "a non-string"
            raise ValueError(f"token_hash must be a lowercase sha256 hex digest (use hash_key), got {got}")
        if self.budget_duration is not None:
            parse_duration(self.budget_duration)
        for name in _DATETIME_FIELDS:
            value = getattr(self, name)
            if isinstance(value, datetime) and value.tzinfo is not UTC:
                aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
                structs.force_setattr(self, name, aware)

    @classmethod
    def for_key(cls, key: str, **fields: Any) -> KeyRecord:
        """A record for a key in clear: its hash and masked name filled in, the key itself dropped.

        >>> KeyRecord.for_key("sk-abcdefghijklmnopqrstuvwxyz").token_hash == hash_key("sk-abcdefghijklmnopqrstuvwxyz")
        True
        """
        fields.setdefault("key_name", mask_key(key))
        return cls(token_hash=hash_key(key), **fields)

    def is_expired(self, now: datetime | None = None) -> bool:
        """True once ``expires`` has passed."""
        return self.expires is not None and self.expires <= (now or utcnow())


KEY_FIELDS: tuple[str, ...] = tuple(f.name for f in structs.fields(KeyRecord))
# the store sets these itself: the identity cannot change, and the timestamps are the store's word
UPDATABLE_KEY_FIELDS: frozenset[str] = frozenset(KEY_FIELDS) - {"token_hash", "created_at", "updated_at"}
_PLACEHOLDER_HASH = "0" * 64


def validate_key(rec: KeyRecord) -> KeyRecord:
    """``rec`` with every field checked against its type; a ``ValueError`` naming the first bad field.

    Struct construction does not check types, and a wrong type must fail here rather than as an opaque
    database error (or, in SQLite, be stored as is).
    """
    return _convert(structs.asdict(rec))


def validate_key_update(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of an ``update_key`` call, checked and normalized (datetimes to UTC)."""
    unknown = sorted(set(fields) - UPDATABLE_KEY_FIELDS)
    if unknown:
        raise TypeError(f"update_key() got fields that cannot be updated: {', '.join(unknown)}")
    checked = _convert({"token_hash": _PLACEHOLDER_HASH, **fields})
    return {name: getattr(checked, name) for name in fields}


def validate_spend_amount(amount: float) -> float:
    """A spend increment must be a finite number: one NaN would poison a key's spend for good."""
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount):
        raise ValueError(f"spend amount must be a finite number, got {amount!r}")
    return float(amount)


def _convert(data: dict[str, Any]) -> KeyRecord:
    try:
        rec = msgspec.convert(data, KeyRecord)
        msgspec.json.encode(rec.metadata)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid key record: {exc}") from exc
    except TypeError as exc:
        raise ValueError(f"invalid key record: metadata must be JSON-serializable ({exc})") from exc
    return rec


# -- spend ---------------------------------------------------------------------------------------

# bounded so every count fits a 64-bit column: an unstorable record would stall the spend shipper
TokenCount = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
HTTPStatus = Annotated[int, msgspec.Meta(ge=0, le=999)]
SpendGroup = Literal["key", "user", "team", "model"]
# daily_spend's group names, and the column each one means ("model" is what the client asked for)
SPEND_GROUP_COLUMNS: dict[str, str] = {"key": "key_hash", "user": "user_id", "team": "team_id", "model": "model_group"}


class SpendRecord(msgspec.Struct, kw_only=True, frozen=True):
    """What one answered request cost, as the gateway journals it and the store keeps it.

        >>> rec = SpendRecord(request_id="req-1", key_hash="ab" * 32, model_group="gpt-4o", cost=0.0021)
        >>> rec.status, rec.cache_hit, rec.time.tzinfo is UTC
        (200, False, True)

    ``request_id`` is unique: storing a record twice keeps the first, which is what makes replaying
    the journal safe. ``cost`` is in USD, ``None`` when the price is unknown. ``model_group`` is the model the client asked for, ``model`` the
    provider's model that answered. ``time`` is when the request arrived, always UTC.
    ``metadata`` is for a few small tags; the journal truncates big ones.
    """

    request_id: str
    time: datetime = msgspec.field(default_factory=utcnow)
    key_hash: str | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    model_group: str | None = None
    deployment_id: str | None = None
    provider: str | None = None
    model: str | None = None
    input_tokens: TokenCount = 0
    output_tokens: TokenCount = 0
    cache_read_tokens: TokenCount = 0
    cache_write_tokens: TokenCount = 0
    reasoning_tokens: TokenCount = 0
    cost: float | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    status: HTTPStatus = 200
    error_class: str | None = None
    cache_hit: bool = False
    stream: bool = False
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.request_id, str) or not self.request_id:
            raise ValueError("request_id must be a non-empty string")
        # JSON has no NaN (it would come back as null), and one would poison a key's spend for good
        if isinstance(self.cost, float) and not math.isfinite(self.cost):
            raise ValueError(f"cost must be a finite number or None, got {self.cost!r}")
        if isinstance(self.time, datetime) and self.time.tzinfo is not UTC:
            aware = self.time.replace(tzinfo=UTC) if self.time.tzinfo is None else self.time.astimezone(UTC)
            structs.force_setattr(self, "time", aware)


SPEND_FIELDS: tuple[str, ...] = tuple(f.name for f in structs.fields(SpendRecord))


def validate_spend_record(rec: SpendRecord) -> SpendRecord:
    """``rec`` with every field checked against its type; a ``ValueError`` naming the first bad field."""
    try:
        checked = msgspec.convert(structs.asdict(rec), SpendRecord)
        msgspec.json.encode(checked.metadata)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid spend record {rec.request_id!r}: {exc}") from exc
    except TypeError as exc:
        raise ValueError(
            f"invalid spend record {rec.request_id!r}: metadata must be JSON-serializable ({exc})"
        ) from exc
    return checked


def spend_by_key(costs: Iterable[tuple[str | None, float | None]]) -> list[tuple[str, float]]:
    """Total known cost per key from ``(key_hash, cost)`` pairs, sorted by key hash.

    >>> spend_by_key([("b", 1.0), ("a", 0.5), ("b", 0.25), (None, 9.0), ("a", None)])
    [('a', 0.5), ('b', 1.25)]
    """
    totals: dict[str, float] = {}
    for key_hash, cost in costs:
        if key_hash is not None and cost:
            totals[key_hash] = totals.get(key_hash, 0.0) + cost
    return sorted(totals.items())


def spend_group_column(group_by: str) -> str:
    """The column ``daily_spend`` groups by; ``ValueError`` for a name it does not know."""
    try:
        return SPEND_GROUP_COLUMNS[group_by]
    except KeyError:
        raise ValueError(f"group_by must be one of {', '.join(SPEND_GROUP_COLUMNS)}; got {group_by!r}") from None


def utc(value: datetime | None) -> datetime | None:
    """A query bound as an aware UTC datetime (a naive one is taken to be UTC, as in records)."""
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
