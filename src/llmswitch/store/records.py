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
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import structs

from llmswitch.store.durations import parse_duration
from llmswitch.store.keys import hash_key, mask_key

_ZERO = Decimal(0)

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
    # LiteLLM's per-key model aliases: a request for a name here is served as the model it maps to
    aliases: dict[str, str] = msgspec.field(default_factory=dict)
    # LiteLLM's key tags: written on every spend record of the key (``metadata["tags"]``)
    tags: list[str] = msgspec.field(default_factory=list)
    # LiteLLM's soft budget (USD): passing it only warns (see llmswitch.server.soft_budgets)
    soft_budget: float | None = None
    # LiteLLM's per-model limits, by model group: {"gpt-4o": 10}, and budgets as
    # {"gpt-4o": {"budget_limit": 0.5, "time_period": "1d"}} (see llmswitch.limits.model_limits)
    model_rpm_limit: dict[str, Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]] = msgspec.field(default_factory=dict)
    model_tpm_limit: dict[str, Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]] = msgspec.field(default_factory=dict)
    model_max_budget: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
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
CallType = Literal["chat", "embeddings"]
# daily_spend's group names, and the column each one means ("model" is what the client asked for)
SPEND_GROUP_COLUMNS: dict[str, str] = {"key": "key_hash", "user": "user_id", "team": "team_id", "model": "model_group"}


class SpendRecord(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """What one answered request cost, as the gateway journals it and the store keeps it.

        >>> rec = SpendRecord(request_id="req-1", key_hash="ab" * 32, model_group="gpt-4o", cost=0.0021)
        >>> rec.status, rec.cache_hit, rec.time.tzinfo is UTC
        (200, False, True)

    ``request_id`` is unique: storing a record twice keeps the first, which is what makes replaying
    the journal safe. ``cost`` is in USD, ``None`` when the price is unknown. ``model_group`` is the model the client asked for, ``model`` the
    provider's model that answered. ``time`` is when the request arrived, always UTC.
    ``metadata`` is for a few small tags; the journal truncates big ones. ``call_type`` says which kind
    of call it was; ``estimated`` marks a record whose token counts the gateway estimated itself (a
    stream that ended before the provider reported its usage: the prompt counted locally, the output
    from the text relayed).

    As JSON (a journal line, PostgreSQL's batch) a field at its default is left out: most of a
    record's fields are, and every reader fills them in again from these defaults.
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
    # last, and with defaults: journal lines written before they existed decode unchanged
    call_type: CallType = "chat"
    estimated: bool = False
    # a cache hit (``cache_hit``) costs nothing: what the answer cost when it was first made (USD)
    cache_saved_cost: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.request_id, str) or not self.request_id:
            raise ValueError("request_id must be a non-empty string")
        # JSON has no NaN (it would come back as null), and one would poison a key's spend for good
        if isinstance(self.cost, float) and not math.isfinite(self.cost):
            raise ValueError(f"cost must be a finite number or None, got {self.cost!r}")
        saved = self.cache_saved_cost
        if isinstance(saved, float) and not math.isfinite(saved):
            raise ValueError(f"cache_saved_cost must be a finite number or None, got {saved!r}")
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


class CheckedSpendRecords(list[SpendRecord]):
    """Spend records known to pass :func:`validate_spend_record`, which stores then skip.

    The spend journal's reader makes these: it decodes each line into a :class:`SpendRecord` with
    msgspec, which checks every field exactly as :func:`validate_spend_record` does, so checking them
    again before storing would only cost time (a few microseconds a record, on the event loop). Put
    nothing in one that has not been checked; a slice or copy is a plain list, checked as usual.
    """


def validate_spend_records(records: Sequence[SpendRecord]) -> list[SpendRecord]:
    """``records`` each checked by :func:`validate_spend_record` (at once if they are :class:`CheckedSpendRecords`)."""
    if type(records) is CheckedSpendRecords:
        return records
    return [validate_spend_record(rec) for rec in records]


def spend_by_key(costs: Iterable[tuple[str | None, float | None]]) -> list[tuple[str, float]]:
    """Total known cost per key from ``(key_hash, cost)`` pairs, sorted by key hash.

    >>> spend_by_key([("b", 1.0), ("a", 0.5), ("b", 0.25), (None, 9.0), ("a", None)])
    [('a', 0.5), ('b', 1.25)]
    """
    totals: dict[str, Decimal] = {}
    for key_hash, cost in costs:
        if key_hash is not None and cost:
            # in decimal: float sums drift (ten times 0.005 is 0.049999999999999996)
            totals[key_hash] = totals.get(key_hash, _ZERO) + Decimal(repr(float(cost)))
    return sorted((key_hash, float(total)) for key_hash, total in totals.items())


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


# -- users and teams -----------------------------------------------------------------------------

SubjectKind = Literal["user", "team"]
SUBJECT_KINDS: tuple[SubjectKind, ...] = ("user", "team")
# bounded so every limit fits a 64-bit column (PostgreSQL's BIGINT)
Limit = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class SubjectRecord(msgspec.Struct, kw_only=True, frozen=True):
    """A user or a team: the budget and limits all of its keys share, and what it has spent.

        >>> team = SubjectRecord(kind="team", id="research", alias="Research", max_budget=100.0, budget_duration="30d")
        >>> team.spend, team.blocked, team.models
        (0.0, False, [])

    Fields follow LiteLLM's user and team API: ``id`` is its ``user_id`` or ``team_id``, ``alias`` its
    ``user_alias`` or ``team_alias``. ``models`` empty means every model; ``None`` limits mean no limit.
    ``spend`` (USD) grows as the spend logs of the subject's requests are stored
    (:meth:`~llmswitch.store.Store.insert_spend_logs`). Datetimes are aware UTC, like :class:`KeyRecord`'s.
    """

    kind: SubjectKind
    id: str
    alias: str | None = None
    models: list[str] = msgspec.field(default_factory=list)
    max_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: datetime | None = None
    rpm_limit: Limit | None = None
    tpm_limit: Limit | None = None
    max_parallel_requests: Limit | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    blocked: bool = False
    spend: float = 0.0
    created_at: datetime = msgspec.field(default_factory=utcnow)
    updated_at: datetime = msgspec.field(default_factory=utcnow)
    # a team's members, as LiteLLM's ``members_with_roles``: [{"user_id": "ana", "role": "admin"}, ...];
    # an ``admin`` manages the team's keys and reads its spend (llmswitch.server.team_scope). Users: empty.
    members_with_roles: list[dict[str, str]] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        check_kind(self.kind)
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"a {self.kind}'s id must be a non-empty string, got {self.id!r}")
        if self.budget_duration is not None:
            parse_duration(self.budget_duration)
        for name in ("budget_reset_at", "created_at", "updated_at"):
            value = getattr(self, name)
            if isinstance(value, datetime) and value.tzinfo is not UTC:
                aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
                structs.force_setattr(self, name, aware)


SUBJECT_FIELDS: tuple[str, ...] = tuple(f.name for f in structs.fields(SubjectRecord))
UPDATABLE_SUBJECT_FIELDS: frozenset[str] = frozenset(SUBJECT_FIELDS) - {"kind", "id", "created_at", "updated_at"}


def check_kind(kind: object) -> SubjectKind:
    """``kind`` if it is ``"user"`` or ``"team"``; a ``ValueError`` otherwise."""
    if kind == "user" or kind == "team":
        return kind
    raise ValueError(f"kind must be 'user' or 'team', got {kind!r}")


def validate_subject(rec: SubjectRecord) -> SubjectRecord:
    """``rec`` with every field checked; a ``ValueError`` naming the first bad one.

    Beyond types: numbers finite, and no NUL character anywhere (PostgreSQL's text cannot hold one,
    and both backends must accept the same records).
    """
    checked = _convert_subject(structs.asdict(rec))
    _check_subject_values(checked, SUBJECT_FIELDS)
    return checked


def validate_subject_update(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of an ``update_subject`` call, checked as :func:`validate_subject` checks a record."""
    unknown = sorted(set(fields) - UPDATABLE_SUBJECT_FIELDS)
    if unknown:
        raise TypeError(f"update_subject() got fields that cannot be updated: {', '.join(unknown)}")
    checked = _convert_subject({"kind": "user", "id": "placeholder", **fields})
    _check_subject_values(checked, tuple(fields))
    return {name: getattr(checked, name) for name in fields}


def _convert_subject(data: dict[str, Any]) -> SubjectRecord:
    try:
        rec = msgspec.convert(data, SubjectRecord)
        msgspec.json.encode(rec.metadata)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid {data.get('kind', 'subject')} record: {exc}") from exc
    except TypeError as exc:
        raise ValueError(f"invalid subject record: metadata must be JSON-serializable ({exc})") from exc
    return rec


def _check_subject_values(rec: SubjectRecord, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(rec, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if has_nul(value):
            raise ValueError(f"{name} must not contain NUL characters")


def has_nul(value: Any) -> bool:
    """True if a string, or any string (key or value) nested in lists and dicts, holds a NUL character.

    >>> has_nul({"tags": ["ok", "bad\\x00"]}), has_nul(["fine"])
    (True, False)
    """
    # a loop, not recursion: metadata nested thousands deep must not raise RecursionError
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return False


def spend_by_subject(
    rows: Iterable[tuple[str | None, str | None, float | None]],
) -> list[tuple[SubjectKind, str, float]]:
    """Total known cost per user and per team from ``(user_id, team_id, cost)`` triples.

    >>> spend_by_subject([("u1", "t1", 1.0), ("u1", None, 0.5), (None, "t1", None), ("u2", "t1", 0.25)])
    [('user', 'u1', 1.5), ('user', 'u2', 0.25), ('team', 't1', 1.25)]
    """
    rows = list(rows)
    users = spend_by_key((user_id, cost) for user_id, _, cost in rows)
    teams = spend_by_key((team_id, cost) for _, team_id, cost in rows)
    return [("user", i, amount) for i, amount in users] + [("team", i, amount) for i, amount in teams]
