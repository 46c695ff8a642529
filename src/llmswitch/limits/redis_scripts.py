"""The Lua scripts of the Redis backend, and the key names they work on.

Each script is one atomic step on the server: every check-and-update of a request happens inside
it, so no other gateway process can interleave a read and a write (never read-modify-write across
the network). They are sent with EVALSHA (redis-py's ``register_script``), falling back to loading
the script once when a server does not know it yet.

Keys of subject ``S`` under prefix ``P`` (one subject's keys never hold another's state)::

    P:rate:S      hash  rd/rt (rpm debt, last update), td/tt/tl (tpm debt, last update, limit)
    P:slots:S     zset  lease id -> expiry                     (parallel requests in flight)
    P:budget:S    hash  spent, reserved, reset_at, seeded, unit   (µs; reset_at 0 = never)
    P:leases:S    zset  "lease id:amount" -> expiry               (budget reservations in flight)

Money is whole nano-dollars (:mod:`llmswitch.limits.money`), integers that Lua's doubles hold exactly
up to 2**53 (about $9 million of spend plus reservations per subject and period). A budget hash
without ``unit = nusd`` was written by an older llmswitch in float USD: the scripts treat it as lost,
so the budget is loaded again from the store, once, and its old reservations are dropped.
"""

from __future__ import annotations

from importlib import resources

KEYS_PER_SUBJECT = 4


def _load(name: str) -> str:
    return resources.files("llmswitch.limits").joinpath("lua").joinpath(name).read_text(encoding="utf-8")


_COMMON = _load("common.lua")
ADMIT = _COMMON + _load("admit.lua")
SETTLE = _COMMON + _load("settle.lua")
SEED = _COMMON + _load("seed.lua")
RENEW = _COMMON + _load("renew.lua")


def subject_keys(prefix: str, subject: str) -> tuple[str, str, str, str]:
    """The four keys of ``subject``, in the order every script takes them."""
    return (
        f"{prefix}:rate:{subject}",
        f"{prefix}:slots:{subject}",
        f"{prefix}:budget:{subject}",
        f"{prefix}:leases:{subject}",
    )


def budget_keys(prefix: str, subject: str) -> tuple[str, str]:
    return f"{prefix}:budget:{subject}", f"{prefix}:leases:{subject}"
