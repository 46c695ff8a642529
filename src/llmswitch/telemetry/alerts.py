"""Alerts to a webhook (LiteLLM's ``general_settings.alerting: ["webhook"]``, or ``["slack"]``).

Two kinds, chosen by ``alert_types`` (all when unset):

- ``budget_alerts``: a request refused because a key's, user's or team's budget is spent
  (``event: "budget_crossed"``), once per subject per ``alerting_args.budget_alert_ttl`` seconds.
- ``outage_alerts``: a deployment failing ``minor_outage_alert_threshold`` (5) times within
  ``outage_alert_ttl`` (60) seconds (``event: "outage"``, ``severity: "minor"``), and again at
  ``major_outage_alert_threshold`` (10) (``severity: "major"``). Failures are those the provider is to
  blame for: 5xx, 429, timeouts, connection errors; never the caller's 4xx.

The webhook gets one JSON object per alert, shaped as LiteLLM's ``WebhookEvent`` (``event``,
``event_group``, ``event_message`` …); Slack gets ``{"text": event_message}``. URLs: ``WEBHOOK_URL`` /
``SLACK_WEBHOOK_URL``, or per alert type ``general_settings.alert_to_webhook_url``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llmswitch.telemetry.webhook import WebhookSender

ALERT_TYPES = frozenset({"budget_alerts", "outage_alerts"})


class Alerts:
    """Decides when to alert and hands each alert to its webhooks."""

    def __init__(
        self,
        senders: Mapping[str, Sequence[tuple[str, WebhookSender]]],
        *,
        alert_types: Sequence[str] | None = None,
        args: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # per alert type: (format, sender), format "webhook" (the event) or "slack" ({"text": ...})
        self._senders = senders
        self.types = frozenset(alert_types) if alert_types else ALERT_TYPES
        args = dict(args or {})
        self._budget_ttl = float(args.get("budget_alert_ttl", 24 * 3600))
        self._outage_ttl = float(args.get("outage_alert_ttl", 60))
        self._minor = int(args.get("minor_outage_alert_threshold", 5))
        self._major = int(args.get("major_outage_alert_threshold", 10))
        self._max_tracked = int(args.get("max_outage_alert_list_size", 1000))
        self._clock = clock
        self._budget_sent: dict[str, float] = {}
        # deployment -> (window start, failures in it, severities alerted in it)
        self._outages: dict[str, tuple[float, int, int]] = {}

    # ------------------------------------------------------------ budgets

    def budget_refused(self, error: Any, principal: Any) -> None:
        if "budget_alerts" not in self.types:
            return
        rec = getattr(principal, "record", None)
        group = str(getattr(error, "param", None) or "key")
        subject = {
            "key": getattr(principal, "key_hash", None),
            "user": getattr(rec, "user_id", None),
            "team": getattr(rec, "team_id", None),
        }.get(group) or "proxy"
        now = self._clock()
        seen = f"{group}:{subject}"
        if now - self._budget_sent.get(seen, -1e18) < self._budget_ttl:
            return
        if len(self._budget_sent) > 10_000:
            self._budget_sent.clear()
        self._budget_sent[seen] = now
        self._send(
            "budget_alerts",
            {
                "event": "budget_crossed",
                "event_group": group,
                "event_message": f"Budget crossed: {error}",
                "token": getattr(principal, "key_hash", None),
                "key_alias": getattr(rec, "key_alias", None),
                "user_id": getattr(rec, "user_id", None),
                "team_id": getattr(rec, "team_id", None),
                "spend": getattr(rec, "spend", None),
                "max_budget": getattr(rec, "max_budget", None) if group == "key" else None,
            },
        )

    # ------------------------------------------------------------ outages

    def attempt(self, a: Any) -> None:
        """The router's record of an attempt (``on_attempt``): counts the deployment's failures."""
        if "outage_alerts" not in self.types or a.probe or a.outcome == "ok" or a.outcome == "cancelled":
            return
        if a.status is not None and 400 <= a.status < 500 and a.status not in (408, 429):
            return  # the request was wrong, not the deployment
        now = self._clock()
        start, count, alerted = self._outages.get(a.deployment, (now, 0, 0))
        if now - start > self._outage_ttl:
            start, count, alerted = now, 0, 0
        count += 1
        severity = None
        if count >= self._major and alerted < 2:
            severity, alerted = "major", 2
        elif count >= self._minor and alerted < 1:
            severity, alerted = "minor", 1
        if len(self._outages) >= self._max_tracked and a.deployment not in self._outages:
            self._outages.clear()
        self._outages[a.deployment] = (start, count, alerted)
        if severity is not None:
            self._send(
                "outage_alerts",
                {
                    "event": "outage",
                    "event_group": "deployment",
                    "severity": severity,
                    "event_message": (
                        f"{severity.capitalize()} outage: deployment {a.deployment} of {a.group!r} "
                        f"({a.provider}/{a.model}) failed {count} times in {self._outage_ttl:g} s; "
                        f"last error {a.error or a.outcome}"
                    ),
                    "model_group": a.group,
                    "deployment": a.deployment,
                    "provider": a.provider,
                    "model": a.model,
                    "errors": count,
                    "window_s": self._outage_ttl,
                    "last_error": a.error,
                    "last_status": a.status,
                },
            )

    # ------------------------------------------------------------ sending

    def _send(self, alert_type: str, event: dict[str, Any]) -> None:
        event["alert_type"] = alert_type
        for fmt, sender in self._senders.get(alert_type, ()):
            sender.send({"text": event["event_message"]} if fmt == "slack" else event)

    def close(self, timeout: float = 5.0) -> None:
        done: set[int] = set()
        for pairs in self._senders.values():
            for _, sender in pairs:
                if id(sender) not in done:
                    done.add(id(sender))
                    sender.close(timeout)
