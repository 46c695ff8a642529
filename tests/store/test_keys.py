"""Keys in clear: generation, hashing, masking."""

from __future__ import annotations

import base64
import hashlib
import string

from hypothesis import given
from hypothesis import strategies as st

from llmswitch.store import generate_key, hash_key, mask_key

_URLSAFE = set(string.ascii_letters + string.digits + "-_")


def test_generated_keys_carry_32_random_bytes_in_url_safe_text() -> None:
    keys = [generate_key() for _ in range(1000)]
    assert len(set(keys)) == 1000
    for key in keys[:50]:
        assert key.startswith("sk-") and set(key[3:]) <= _URLSAFE
        assert len(base64.urlsafe_b64decode(key[3:] + "=")) == 32


def test_hash_is_the_sha256_hex_litellm_stores() -> None:
    assert hash_key("sk-1234") == hashlib.sha256(b"sk-1234").hexdigest()
    assert hash_key("sk-1234") == "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"


def test_mask_shows_the_prefix_and_last_four_characters() -> None:
    assert mask_key("sk-abcdefghijklmnopqrstuvwxyz") == "sk-...wxyz"
    assert mask_key("abcdefghijklmnopqrstuvwxyz") == "...wxyz"
    assert mask_key("sk-short") == "sk-..."
    assert mask_key("") == "..."


@given(st.text(max_size=80))
def test_mask_never_reveals_more_than_four_characters(key: str) -> None:
    masked = mask_key(key)
    revealed = masked.removeprefix("sk-").removeprefix("...")
    assert len(revealed) <= 4
    assert revealed == "" or (len(key) >= 16 and key.endswith(revealed))
