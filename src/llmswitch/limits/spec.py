"""What to enforce on one subject: a key, user, team or deployment named by a string.

    >>> SubjectLimits("team:research", rpm_limit=600, max_budget=500.0, budget_period=BudgetPeriod("1mo"))
    SubjectLimits(subject='team:research', rpm_limit=600, max_budget=500.0, budget_period=BudgetPeriod('1mo', reset_at=None))

Field names are the key record's (and LiteLLM's), so a limit named in a refusal reads the same as in
the admin API. ``None`` means no limit of that kind. A request is admitted only if every limit of
every subject it carries admits it (key, then user, then team, say).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from llmswitch.errors import ConfigError
from llmswitch.limits.money import to_nanos
from llmswitch.limits.periods import BudgetPeriod

if TYPE_CHECKING:
    from llmswitch.store.records import KeyRecord

LimitKind = Literal["rpm_limit", "tpm_limit", "max_parallel_requests", "max_budget"]


@dataclass(frozen=True, slots=True, repr=False)
class SubjectLimits:
    """The limits of one subject. Build once per key/user/team and reuse: the hot path only reads it."""

    subject: str
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    max_budget: float | None = None
    budget_period: BudgetPeriod | None = None
    # the budget in whole nano-dollars (see limits.money): what the backends compare, exactly
    max_budget_nanos: int | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.subject, str) or not self.subject:
            raise ConfigError(f"a limit subject must be a non-empty string, got {self.subject!r}")
        for name in ("rpm_limit", "tpm_limit", "max_parallel_requests"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"{name} of {self.subject} must be a non-negative integer, got {value!r}")
        budget = self.max_budget
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int | float) or not math.isfinite(budget) or budget < 0
        ):
            raise ConfigError(f"max_budget of {self.subject} must be a finite number >= 0, got {budget!r}")
        if budget is not None:
            object.__setattr__(self, "max_budget_nanos", to_nanos(budget))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in ("rpm_limit", "tpm_limit", "max_parallel_requests", "max_budget", "budget_period")
            if getattr(self, name) is not None
        )
        return f"SubjectLimits(subject={self.subject!r}{', ' if shown else ''}{shown})"

    @property
    def has_limits(self) -> bool:
        return (
            self.rpm_limit is not None
            or self.tpm_limit is not None
            or self.max_parallel_requests is not None
            or self.max_budget is not None
        )

    @classmethod
    def for_key(cls, record: KeyRecord) -> SubjectLimits:
        """The limits a virtual key's record sets, on subject ``"key:<token hash>"``.

        >>> from llmswitch.store import KeyRecord
        >>> SubjectLimits.for_key(KeyRecord.for_key("sk-" + "x" * 30, rpm_limit=5)).rpm_limit
        5
        """
        period = None
        if record.budget_duration is not None or record.budget_reset_at is not None:
            period = BudgetPeriod(record.budget_duration, record.budget_reset_at)
        return cls(
            subject=f"key:{record.token_hash}",
            rpm_limit=record.rpm_limit,
            tpm_limit=record.tpm_limit,
            max_parallel_requests=record.max_parallel_requests,
            max_budget=record.max_budget,
            budget_period=period,
        )
