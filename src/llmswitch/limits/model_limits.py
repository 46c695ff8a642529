"""A key's per-model limits (LiteLLM's ``model_rpm_limit``, ``model_tpm_limit``, ``model_max_budget``) as
subjects of their own, admitted beside the key's other limits.

Each model group a key limits gets one subject, ``key_model:<token hash>:<model group>``, holding that
model's rpm, tpm and budget: a request for the group is admitted only if the key's own limits and the
group's all admit it, and its cost is settled to both. A per-model budget's ``time_period`` resets it
in fixed windows counted from the Unix epoch (weeks from a Monday), like a ``budget_duration``
without a ``budget_reset_at``; without one it never resets.

    >>> from llmswitch.store import KeyRecord
    >>> rec = KeyRecord.for_key("sk-" + "x" * 30, model_rpm_limit={"gpt-4o": 2},
    ...                         model_max_budget={"gpt-4o": {"budget_limit": 0.5, "time_period": "1d"}})
    >>> limits = model_limits_for_key(rec)["gpt-4o"]
    >>> limits.rpm_limit, limits.max_budget, limits.budget_period.duration
    (2, 0.5, '1d')
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from llmswitch.limits.periods import BudgetPeriod
from llmswitch.limits.spec import SubjectLimits

if TYPE_CHECKING:
    from llmswitch.store.records import KeyRecord

KIND = "key_model"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def model_subject(token_hash: str, model_group: str) -> str:
    """The limiter subject of one key's limits on one model group."""
    return f"{KIND}:{token_hash}:{model_group}"


def parse_model_subject(subject: str) -> tuple[str, str] | None:
    """``(token hash, model group)`` of a :func:`model_subject`, or ``None`` for any other subject."""
    kind, _, rest = subject.partition(":")
    if kind != KIND:
        return None
    token_hash, _, group = rest.partition(":")  # a token hash is hex: the group is all that follows
    return (token_hash, group) if token_hash and group else None


def model_limits_for_key(record: KeyRecord) -> dict[str, SubjectLimits]:
    """The per-model subjects of a key, by model group (empty when it has no per-model limits)."""
    groups = {*record.model_rpm_limit, *record.model_tpm_limit, *record.model_max_budget}
    out: dict[str, SubjectLimits] = {}
    for group in groups:
        budget = record.model_max_budget.get(group)
        period = None
        if budget is not None and budget.get("time_period") is not None:
            period = BudgetPeriod(budget["time_period"])
        out[group] = SubjectLimits(
            subject=model_subject(record.token_hash, group),
            rpm_limit=record.model_rpm_limit.get(group),
            tpm_limit=record.model_tpm_limit.get(group),
            max_budget=None if budget is None else budget["budget_limit"],
            budget_period=period,
        )
    return out


async def load_model_spend(store: Any, token_hash: str, model_group: str) -> tuple[float, datetime | None] | None:
    """What a key has spent on a model group in the current window of its per-model budget, from the
    spend records (the limiter's spend loader, after a restart or a Redis that lost its state)."""
    rec = await store.get_key(token_hash)
    budget = None if rec is None else rec.model_max_budget.get(model_group)
    if budget is None:
        return None
    now = datetime.now(UTC)
    period = BudgetPeriod(budget["time_period"]) if budget.get("time_period") is not None else None
    start = (period.start_at(now) if period is not None else None) or _EPOCH
    spent: float = await store.spend_since("key_hash", token_hash, start, model_group=model_group)
    return spent, None if period is None else period.end_at(now)
