"""What one gateway process may admit on its own while the shared limits backend (Redis) is away.

Every process of a deployment falls back at about the same time, and none can see what the others
admit meanwhile, so a budget or rate limit enforced whole by each of N processes is enforced N times.
The policy bounds that:

- ``closed`` (the default): a request that carries a budget is refused (503) until Redis answers
  again; rate limits and parallel slots hold at ``share`` of their value per process.
- ``share``: each process may spend ``share`` of what is left of a budget when it falls back, counted
  from the larger of the store's spend and the last spend Redis reported to it; rate limits and
  parallel slots at ``share`` of their value. With ``share = 1 / N`` for N processes, the outage
  spends at most what was left (plus one request per process, as concurrency allows anyway).
- ``local``: every process enforces every limit whole, from the last spend Redis reported to it
  (what llmswitch did before this policy existed): N processes may spend N times what was left.

    policy = DegradedPolicy.from_env()          # LLMSWITCH_DEGRADED_BUDGETS, LLMSWITCH_DEGRADED_SHARE
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from llmswitch.errors import ConfigError
from llmswitch.limits.spec import SubjectLimits

DegradedBudgets = Literal["closed", "share", "local"]
ENV_BUDGETS = "LLMSWITCH_DEGRADED_BUDGETS"
ENV_SHARE = "LLMSWITCH_DEGRADED_SHARE"
DEFAULT_SHARE = 0.5  # two instances, the smallest deployment that shares Redis


@dataclass(frozen=True, slots=True)
class DegradedPolicy:
    """``budgets``: ``closed`` | ``share`` | ``local``; ``share``: the fraction of each limit one process
    may use on its own (``1 / N`` for N processes)."""

    budgets: DegradedBudgets = "closed"
    share: float = DEFAULT_SHARE

    def __post_init__(self) -> None:
        if self.budgets not in get_args(DegradedBudgets):
            raise ConfigError(
                f"degraded budgets must be one of {', '.join(get_args(DegradedBudgets))}, got {self.budgets!r}"
            )
        share = self.share
        if isinstance(share, bool) or not isinstance(share, int | float) or not (0 < share <= 1):
            raise ConfigError(f"the degraded share must be a fraction in (0, 1], got {share!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DegradedPolicy:
        env = os.environ if env is None else env
        budgets = env.get(ENV_BUDGETS, "").strip().lower() or "closed"
        raw = env.get(ENV_SHARE, "").strip()
        try:
            share = float(raw) if raw else DEFAULT_SHARE
        except ValueError as exc:
            raise ConfigError(f"{ENV_SHARE} must be a fraction in (0, 1], got {raw!r}") from exc
        return cls(budgets, share)  # type: ignore[arg-type]  # checked in __post_init__

    def scaled(self, limits: Sequence[SubjectLimits]) -> Sequence[SubjectLimits]:
        """``limits`` with rpm, tpm and parallel slots cut to this process's share (budgets are seeded
        apart, see :meth:`budget_spent`)."""
        if self.budgets == "local" or self.share >= 1:
            return limits
        out = []
        for lim in limits:
            if lim.rpm_limit is None and lim.tpm_limit is None and lim.max_parallel_requests is None:
                out.append(lim)
                continue
            out.append(
                SubjectLimits(
                    lim.subject,
                    rpm_limit=self._part(lim.rpm_limit),
                    tpm_limit=self._part(lim.tpm_limit),
                    max_parallel_requests=self._part(lim.max_parallel_requests),
                    max_budget=lim.max_budget,
                    budget_period=lim.budget_period,
                )
            )
        return out

    def budget_spent(self, max_nanos: int, spent: int) -> int:
        """The spend to hold locally so that ``spent + reserved < max`` admits this process's share of
        what is left; a budget already spent stays spent."""
        left = max_nanos - spent
        if left <= 0:
            return spent
        return max_nanos - math.floor(left * self.share)

    def _part(self, limit: int | None) -> int | None:
        # a limit of 0 refuses everything whole and in part; anything else keeps at least 1
        if limit is None or limit == 0:
            return limit
        return max(1, math.floor(limit * self.share))
