"""A key's ``soft_budget`` (LiteLLM's): an amount that only warns. Requests go on until ``max_budget``.

When a key's spend for the current budget period reaches its soft budget, the gateway logs one warning
(``llmswitch.budgets``) as the key cache sees the spend pass it, and ``/key/info`` shows
``soft_budget_exceeded: true`` until the period resets. Each gateway instance logs the crossing it sees.

    >>> from llmswitch.store import KeyRecord
    >>> before = KeyRecord.for_key("sk-" + "x" * 30, soft_budget=1.0, spend=0.75)
    >>> passed_soft_budget(before, KeyRecord.for_key("sk-" + "x" * 30, soft_budget=1.0, spend=1.25))
    True
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("llmswitch.budgets")


def soft_budget_exceeded(rec: Any) -> bool:
    """True when the key has a soft budget and its spend has reached it."""
    soft = getattr(rec, "soft_budget", None)
    return soft is not None and rec.spend >= soft


def passed_soft_budget(old: Any, new: Any) -> bool:
    """True when ``new`` is past its soft budget and ``old`` (the same key, earlier) was not."""
    return old is not None and soft_budget_exceeded(new) and not soft_budget_exceeded(old)


def notice_spend(old: Any, new: Any) -> None:
    """Log the warning if the key's spend passed its soft budget between ``old`` and ``new``."""
    if passed_soft_budget(old, new):
        name = f"key {new.key_alias!r} ({new.key_name})" if new.key_alias else f"key {new.key_name}"
        log.warning(
            "%s passed its soft budget: spend $%s of soft_budget $%s (max_budget %s)",
            name,
            new.spend,
            new.soft_budget,
            "none" if new.max_budget is None else f"${new.max_budget}",
        )
