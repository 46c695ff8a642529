"""What ``GET /health`` shows of the router: each deployment's breaker, load, latency, usage and last error."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def health_report(router: Any, groups: Iterable[list[Any]], wildcards: Any) -> list[dict[str, Any]]:
    """One row per deployment of ``groups`` and of the wildcards' resolved ones, then one per wildcard."""
    now = router.clock()
    out = []
    seen: set[str] = set()
    for targets in (*groups, wildcards.resolved()):
        for t in targets:
            if t.id in seen:
                continue
            seen.add(t.id)
            requests, tokens = router.usage.used(t.id)
            out.append(
                {
                    "id": t.id,
                    "model_name": t.group,
                    "provider": t.provider.name,
                    "model": t.model,
                    "api_base": t.endpoint.api_base if t.endpoint else None,
                    "tier": t.tier,
                    "weight": t.weight,
                    "state": t.breaker.state,
                    "cooldown_remaining_s": round(t.breaker.reopens_in(), 3),
                    "resting_s": round(max(t.rest_until - now, 0.0), 3),
                    "in_flight": t.in_flight,
                    "latency_ms": None if t.latency is None else round(t.latency * 1000, 1),
                    "ttft_ms": None if t.ttft is None else round(t.ttft * 1000, 1),
                    "successes": t.successes,
                    "failures": t.failures,
                    "rpm": t.rpm,
                    "tpm": t.tpm,
                    "requests_last_minute": round(requests, 1),
                    "tokens_last_minute": round(tokens),
                    "last_error": t.last_error,
                    "last_error_age_s": None if t.last_error_at is None else round(now - t.last_error_at, 3),
                }
            )
    for spec in wildcards.specs:
        out.append({"id": spec.id, "model_name": spec.group, "provider": spec.provider or "*", "model": spec.model})
    return out
