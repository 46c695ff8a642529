"""What the ``auto`` router decided for one request, and how that is shown.

The same facts go to the response headers, the request's spend record (``metadata["route"]``), the
metrics counter and the SDK result's ``llmswitch["route"]``:

    >>> d = Decision("strong", "strong", 0.71, 0.62, "score 0.710 >= 0.620 (maths, length)")
    >>> d.headers()["x-llmswitch-route"], d.headers()["x-llmswitch-route-score"]
    ('strong', '0.7100')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Decision", "Tier"]

Tier = Literal["weak", "strong"]


@dataclass
class Decision:
    tier: Tier  # the tier that answered
    group: str  # its model group
    score: float | None  # the difficulty score (None: not scored, e.g. an override)
    threshold: float | None
    reason: str
    #: "classifier" | "override" | "cascade" (a weak answer failed a check and the strong tier answered)
    source: Literal["classifier", "override", "cascade"] = "classifier"
    #: cascades: the checks the weak answer failed, and the weak call's route and usage (charged too)
    failed_checks: tuple[str, ...] = ()
    weak_call: Any = field(default=None, repr=False)

    def headers(self) -> dict[str, str]:
        out = {"x-llmswitch-route": self.tier, "x-llmswitch-route-reason": _header_safe(self.reason)}
        if self.score is not None:
            out["x-llmswitch-route-score"] = f"{self.score:.4f}"
        if self.threshold is not None:
            out["x-llmswitch-route-threshold"] = f"{self.threshold:.4f}"
        if self.source == "cascade":
            out["x-llmswitch-route-cascade"] = ",".join(self.failed_checks) or "escalated"
        return out

    def log(self) -> dict[str, Any]:
        """For the spend record's metadata and the SDK result (small: a few fields)."""
        out: dict[str, Any] = {"tier": self.tier, "group": self.group, "source": self.source, "reason": self.reason}
        if self.score is not None:
            out["score"] = round(self.score, 4)
        if self.threshold is not None:
            out["threshold"] = round(self.threshold, 4)
        if self.failed_checks:
            out["failed_checks"] = list(self.failed_checks)
        return out


def _header_safe(text: str) -> str:
    """Header values are latin-1 on the wire and one line: keep ASCII, cut long reasons."""
    clean = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)
    return clean[:200]
