"""What the gateway tells the ``auto`` router about the request in this task, beside the request itself.

The server knows the caller (its key's model permissions and budget) and the HTTP headers; the router
knows neither. Before routing a request for an ``auto`` group the server calls :func:`enter`:

    enter(override=request.headers.get("x-llmswitch-route"), permits=lambda group, before=None: None or "why not")

``permits(group, before)`` returns ``None`` when the caller may be served by ``group``, else the reason
it may not: its key does not list the model, or (for a cascade's escalation, ``before`` being the weak
call's route and usage) its budget cannot take both calls. The SDK sets nothing: every tier is allowed.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

__all__ = ["OVERRIDE_HEADER", "Permits", "enter", "override", "permits"]

OVERRIDE_HEADER = "x-llmswitch-route"

Permits = Callable[[str, Any], str | None]

_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("llmswitch_auto_override", default=None)
_permits: contextvars.ContextVar[Permits | None] = contextvars.ContextVar("llmswitch_auto_permits", default=None)


def enter(*, override: str | None, permits: Permits | None) -> None:
    _override.set(override.strip().lower() if override else None)
    _permits.set(permits)


def override() -> str | None:
    return _override.get()


def permits() -> Permits | None:
    return _permits.get()
