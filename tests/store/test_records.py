"""KeyRecord and its checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from llmswitch.store import KeyRecord, hash_key
from llmswitch.store.records import UPDATABLE_KEY_FIELDS, validate_key, validate_key_update

KEY = "sk-abcdefghijklmnopqrstuvwxyz"


def test_for_key_keeps_only_the_hash_and_a_masked_name() -> None:
    rec = KeyRecord.for_key(KEY, user_id="u1")
    assert rec.token_hash == hash_key(KEY) and rec.key_name == "sk-...wxyz"
    assert KEY not in repr(rec)
    assert (rec.models, rec.metadata, rec.spend, rec.blocked) == ([], {}, 0.0, False)
    assert rec.created_at.tzinfo is UTC


def test_a_key_in_clear_is_refused_as_a_hash_and_not_echoed() -> None:
    with pytest.raises(ValueError, match="sha256 hex digest") as info:
        KeyRecord(token_hash=KEY)
    assert KEY not in str(info.value)
    with pytest.raises(ValueError, match="sha256"):
        KeyRecord(token_hash=hash_key(KEY).upper())


def test_datetimes_become_utc() -> None:
    local = datetime(2030, 1, 1, 3, tzinfo=timezone(timedelta(hours=3)))
    rec = KeyRecord.for_key(KEY, expires=local, budget_reset_at=datetime(2030, 1, 1))
    assert rec.expires == local and rec.expires is not None and rec.expires.tzinfo is UTC
    assert rec.budget_reset_at == datetime(2030, 1, 1, tzinfo=UTC)


def test_bad_budget_duration_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="'monthly'"):
        KeyRecord.for_key(KEY, budget_duration="monthly")


def test_validate_key_checks_types_and_json() -> None:
    assert validate_key(KeyRecord.for_key(KEY, max_budget=5)).max_budget == 5.0
    with pytest.raises(ValueError, match="models"):
        validate_key(KeyRecord.for_key(KEY, models="gpt-4o"))
    with pytest.raises(ValueError, match="blocked"):
        validate_key(KeyRecord.for_key(KEY, blocked=1))
    with pytest.raises(ValueError, match="JSON"):
        validate_key(KeyRecord.for_key(KEY, metadata={"when": object()}))


def test_validate_key_update_allows_every_field_but_identity_and_timestamps() -> None:
    assert {"token_hash", "created_at", "updated_at"}.isdisjoint(UPDATABLE_KEY_FIELDS)
    assert {"spend", "blocked", "expires", "metadata", "models"} <= UPDATABLE_KEY_FIELDS
    assert validate_key_update({"expires": datetime(2030, 1, 1)}) == {"expires": datetime(2030, 1, 1, tzinfo=UTC)}
    assert validate_key_update({}) == {}
    with pytest.raises(TypeError, match="updated_at"):
        validate_key_update({"updated_at": datetime.now(UTC)})
