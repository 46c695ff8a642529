"""When alerts fire: outage thresholds within the window (stepped with an injected clock), budget alerts once
per subject per TTL, the caller's 4xx never counted."""

from __future__ import annotations

from typing import Any

from llmswitch.errors import APIStatusError
from llmswitch.router.attempts import Attempt
from llmswitch.telemetry.alerts import Alerts


class Sink:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, item: Any) -> bool:
        self.sent.append(item)
        return True

    def close(self, timeout: float = 5.0) -> None:
        return None


def failed(deployment: str = "d1", status: int | None = 503, outcome: Any = "error") -> Attempt:
    return Attempt(
        deployment=deployment,
        group="g",
        provider="openai",
        model="gpt-4o-mini",
        number=1,
        outcome=outcome,
        elapsed=0.1,
        error="ServiceUnavailableError",
        status=status,
    )


def make(**args: Any) -> tuple[Alerts, Sink, list[float]]:
    now = [1000.0]
    sink = Sink()
    alerts = Alerts(
        {"outage_alerts": [("webhook", sink)], "budget_alerts": [("slack", sink)]},  # type: ignore[list-item]
        args=args,
        clock=lambda: now[0],
    )
    return alerts, sink, now


def test_minor_then_major_outage_within_the_window() -> None:
    alerts, sink, _ = make(minor_outage_alert_threshold=2, major_outage_alert_threshold=4)
    for _ in range(6):
        alerts.attempt(failed())
    assert [(e["severity"], e["errors"]) for e in sink.sent] == [("minor", 2), ("major", 4)]


def test_failures_spread_beyond_the_window_do_not_alert() -> None:
    alerts, sink, now = make(minor_outage_alert_threshold=2, outage_alert_ttl=60)
    alerts.attempt(failed())
    now[0] += 61
    alerts.attempt(failed())
    assert sink.sent == []
    alerts.attempt(failed())
    assert len(sink.sent) == 1


def test_a_callers_mistake_and_a_cancellation_are_not_outages() -> None:
    alerts, sink, _ = make(minor_outage_alert_threshold=1)
    alerts.attempt(failed(status=400))
    alerts.attempt(failed(status=None, outcome="cancelled"))
    assert sink.sent == []
    alerts.attempt(failed(status=None, outcome="timeout"))
    assert len(sink.sent) == 1


def test_a_budget_alert_is_sent_once_per_subject_per_ttl_and_slack_gets_text() -> None:
    alerts, sink, now = make(budget_alert_ttl=3600)

    class Principal:
        key_hash = "abc123"
        record = None

    err = APIStatusError(
        "key over budget", status_code=400, provider="llmswitch", error_type="budget_exceeded", param="key"
    )
    alerts.budget_refused(err, Principal())
    alerts.budget_refused(err, Principal())
    assert sink.sent == [{"text": "Budget crossed: key over budget"}]
    now[0] += 3601
    alerts.budget_refused(err, Principal())
    assert len(sink.sent) == 2


def test_alert_types_choose_what_is_sent() -> None:
    sink = Sink()
    alerts = Alerts({"outage_alerts": [("webhook", sink)]}, alert_types=["budget_alerts"])  # type: ignore[list-item]
    for _ in range(20):
        alerts.attempt(failed())
    assert sink.sent == []
