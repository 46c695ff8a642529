"""``GET /model_group/info``: the model groups as configured, with their deployments and fallbacks.

    {"data": [{"model_group": "gpt-4o", "deployments": 2, "providers": ["openai", "azure"],
               "fallbacks": ["claude-sonnet"], "context_window_fallbacks": [], "content_policy_fallbacks": []}]}

The name is LiteLLM's; the fields are ours (LiteLLM's also carry prices and limits per group). Any
valid key may read it, as ``/health``; the fallback lists are the chains the router tries, in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmswitch.dialects._json import dumps
from llmswitch.server import http

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway


async def model_group_info(gw: Gateway, request: http.Request, send: http.Send) -> None:
    gw.keys.authenticate(gw.key_of(request))
    router = gw.router
    by_group: dict[str, list[dict[str, Any]]] = {}
    for row in router.health():
        by_group.setdefault(row["model_name"], []).append(row)
    fallbacks = router.fallbacks
    out = [
        {
            "model_group": group,
            "deployments": len(rows),
            "providers": sorted({str(r.get("provider")) for r in rows}),
            "fallbacks": list(fallbacks.chain(group, "error")),
            "context_window_fallbacks": list(fallbacks.chain(group, "context")),
            "content_policy_fallbacks": list(fallbacks.chain(group, "content_policy")),
        }
        for group, rows in sorted(by_group.items())
    ]
    await http.send_bytes(send, 200, dumps({"data": out}))


ROUTES: dict[tuple[str, str], http.Handler] = {("GET", "/model_group/info"): model_group_info}
