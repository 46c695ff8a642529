"""Health routes: LiteLLM's liveliness and readiness paths (open), and per-deployment state (a key needed)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from llmswitch.dialects._json import dumps
from llmswitch.server import http

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway


async def liveliness(gw: Gateway, request: http.Request, send: http.Send) -> None:
    await http.send_bytes(send, 200, b'"I\'m alive!"')


async def readiness(gw: Gateway, request: http.Request, send: http.Send) -> None:
    status = 200 if gw.ready else 503
    body = {"status": "healthy" if gw.ready else "starting", "db": "connected" if gw.store is not None else "none"}
    await http.send_bytes(send, status, dumps(body))


async def health(gw: Gateway, request: http.Request, send: http.Send) -> None:
    """Every deployment's state, with its api_base and last upstream error: for callers with a key only
    (as LiteLLM's ``/health``); the liveliness and readiness probes above stay open and name no deployment."""
    gw.keys.authenticate(gw.key_of(request))
    body: dict[str, Any] = {
        "status": "healthy" if gw.ready else "starting",
        "uptime_s": round(time.time() - gw.started_at, 1),
        "deployments": gw.router.health(),
    }
    journal = gw.accounting.journal
    if journal is not None:
        # a journal that cannot write makes the gateway refuse requests (see docs/spend.md)
        stats = journal.stats
        body["spend_journal"] = {
            "failing": journal.failing,
            "held": stats.held,
            "dropped": stats.dropped,
            "write_errors": stats.write_errors,
        }
    await http.send_bytes(send, 200, dumps(body))
