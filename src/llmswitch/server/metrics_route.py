"""``GET /metrics``: every worker's metrics in the Prometheus text format, or OpenMetrics when the scraper
asks for it (``Accept: application/openmetrics-text``, as Prometheus does by default).

Open by default, as LiteLLM's; with ``general_settings.require_auth_for_metrics_endpoint: true`` a
scrape needs a key the gateway accepts (the master key or a virtual key), sent as a bearer token
(Prometheus: ``authorization: {credentials: ...}`` in the scrape config).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmswitch.errors import NotFoundError
from llmswitch.server import http
from llmswitch.telemetry.metrics_render import CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway


async def handle(gw: Gateway, request: http.Request, send: http.Send) -> None:
    if gw.require_auth_for_metrics:
        gw.keys.authenticate(gw.key_of(request))
    metrics = gw.metrics
    if metrics is None:
        raise NotFoundError(
            "metrics are turned off on this gateway", status_code=404, provider="llmswitch", error_type="not_found"
        )
    if gw.metrics_collector is not None:
        await gw.metrics_collector.collect()
    openmetrics = "application/openmetrics-text" in request.headers.get("accept", "")
    body = metrics.render(openmetrics=openmetrics)
    content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else CONTENT_TYPE
    await http.send_bytes(send, 200, body, content_type=content_type.encode())
