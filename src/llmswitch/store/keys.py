"""Virtual keys in clear: make one, hash it for storage, mask it for display.

A key is shown to its owner once, at creation; the store keeps only its SHA-256 hex digest (the same
hash LiteLLM stores, so imported keys keep working) and a masked form for listings.

    >>> key = generate_key()
    >>> key.startswith("sk-") and len(key) >= 46
    True
    >>> hash_key("sk-1234")
    '88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b'
    >>> mask_key("sk-abcdefghijklmnopqrstuvwxyz")
    'sk-...wxyz'
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk-"
# 32 random bytes is 256 bits of entropy, beyond any brute force, and encodes to 43 url-safe characters
_KEY_BYTES = 32
# below this length the last four characters would give away too much of the key, so nothing is shown
_MIN_LEN_TO_SHOW_TAIL = 16


def generate_key() -> str:
    """A new virtual key: ``"sk-"`` followed by 43 url-safe characters (32 random bytes).

    >>> len(generate_key())
    46
    """
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)


def hash_key(key: str) -> str:
    """The SHA-256 hex digest of ``key``: the only form of a key the store keeps.

    >>> hash_key("sk-1234")[:12]
    '88dc28d0f030'
    """
    return hashlib.sha256(key.encode()).hexdigest()


def mask_key(key: str) -> str:
    """A display form that names a key without revealing it: its prefix and last four characters.

    >>> mask_key("sk-abcdefghijklmnopqrstuvwxyz")
    'sk-...wxyz'
    >>> mask_key("short")
    '...'
    """
    prefix = KEY_PREFIX if key.startswith(KEY_PREFIX) else ""
    if len(key) < _MIN_LEN_TO_SHOW_TAIL:
        return prefix + "..."
    return f"{prefix}...{key[-4:]}"
