"""What admitting and recording a key's requests needs, worked out once per key record, and the limits of
users and teams; how a limit's subject reads in an error message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmswitch.limits import BudgetPeriod, SubjectLimits
from llmswitch.limits.model_limits import parse_model_subject

if TYPE_CHECKING:
    from llmswitch.server.auth import Principal

OPTIONAL_STR = (str, type(None))


class KeyPlan:
    """What admitting and recording a key's requests needs, worked out once per key record."""

    __slots__ = ("has_subjects", "limits", "model_limits", "record", "spend_fields", "tags", "team_id", "user_id")

    def __init__(self, record: Any, limits: tuple[SubjectLimits, ...]) -> None:
        self.record = record
        self.limits = limits
        self.model_limits: dict[str, SubjectLimits] = {}
        self.user_id = getattr(record, "user_id", None)
        self.team_id = getattr(record, "team_id", None)
        self.has_subjects = bool(self.user_id or self.team_id)
        self.tags = getattr(record, "tags", None)  # for the spend record's metadata: read once per key record
        fields = (getattr(record, "key_alias", None), self.user_id, self.team_id)
        # None: a value that is not a string, for the spend record's full check to refuse
        self.spend_fields = fields if all(type(v) in OPTIONAL_STR for v in fields) else None


def subject_name(subject: str, principal: Principal) -> str:
    """``key:<hash>`` as a person reads it: the key's alias or masked name; users and teams by id."""
    kind, _, ident = subject.partition(":")
    on_model = parse_model_subject(subject)
    if on_model is not None:
        return f"{subject_name('key:' + on_model[0], principal)} on model '{on_model[1]}'"
    if kind == "key":
        rec = principal.record
        alias = getattr(rec, "key_alias", None)
        name = getattr(rec, "key_name", None)
        if alias:
            return f"key '{alias}'" + (f" ({name})" if name else "")
        return f"key {name or ident[:12]}"
    return f"{kind} '{ident}'"


def subject_limits(kind: str, sub: Any) -> SubjectLimits:
    period = None
    if getattr(sub, "budget_duration", None) is not None or getattr(sub, "budget_reset_at", None) is not None:
        period = BudgetPeriod(sub.budget_duration, sub.budget_reset_at)
    return SubjectLimits(
        subject=f"{kind}:{sub.id}",
        rpm_limit=sub.rpm_limit,
        tpm_limit=sub.tpm_limit,
        max_parallel_requests=getattr(sub, "max_parallel_requests", None),
        max_budget=sub.max_budget,
        budget_period=period,
    )
