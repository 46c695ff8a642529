"""What the store keeps about a virtual key, and the checks every backend applies before writing it.

    >>> rec = KeyRecord.for_key("sk-abcdefghijklmnopqrstuvwxyz", user_id="u1", max_budget=10.0, budget_duration="30d")
    >>> rec.key_name, rec.spend, rec.blocked
    ('sk-...wxyz', 0.0, False)

Field names and meanings follow LiteLLM's key-management API, so its payloads map onto records
unchanged. Datetimes are always timezone-aware UTC (a naive one is taken to be UTC).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

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
