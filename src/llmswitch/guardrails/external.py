"""An external guardrail over HTTP, in the shape of LiteLLM's ``generic_guardrail_api``.

The gateway POSTs the texts to ``{api_base}/beta/litellm_basic_guardrail_api``::

    {"texts": [...], "input_type": "request" | "response", "litellm_call_id": ..., "request_data": {...},
     "additional_provider_specific_params": {...}}

and reads ``{"action": "NONE" | "BLOCKED" | "GUARDRAIL_INTERVENED", "blocked_reason": ..., "texts": [...]}``
(``GUARDRAIL_INTERVENED`` replaces the texts). A service that does not answer within ``timeout`` (or
answers with an error) lets the request through with ``unreachable_fallback: fail_open`` and refuses it
with ``fail_closed`` (the default).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from llmswitch.dialects._json import dumps, loads
from llmswitch.errors import APIError
from llmswitch.guardrails.base import PASSED, Context, Guardrail, Outcome

log = logging.getLogger("llmswitch.guardrails")
PATH = "/beta/litellm_basic_guardrail_api"


class External(Guardrail):
    kind = "external"
    synchronous = False

    def __init__(
        self,
        name: str,
        *,
        modes: frozenset[str],
        default_on: bool = False,
        api_base: str,
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
        fail_open: bool = False,
        extra_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, modes=modes, default_on=default_on)
        base = api_base.rstrip("/")
        self.url = base if base.endswith(PATH) else base + PATH
        self.headers = {"content-type": "application/json", **(headers or {})}
        if api_key:
            self.headers["x-api-key"] = api_key
            self.headers.setdefault("authorization", f"Bearer {api_key}")
        self.timeout = timeout
        self.fail_open = fail_open
        self.extra_params = extra_params or {}

    async def check(self, texts: Sequence[str], context: Context) -> Outcome:
        from llmswitch import transport
        from llmswitch.providers.base import HTTPCall

        body: dict[str, Any] = {
            "texts": list(texts),
            "input_type": "request" if context.phase == "input" else "response",
            "request_data": dict(context.metadata or {}),
            "additional_provider_specific_params": self.extra_params,
        }
        if context.metadata and "request_id" in context.metadata:
            body["litellm_call_id"] = context.metadata["request_id"]
        try:
            resp = await transport.send(
                HTTPCall(self.url, dict(self.headers), dumps(body)), timeout=self.timeout, provider=self.name
            )
            if resp.status >= 300:
                raise ValueError(f"answered HTTP {resp.status}")
            answer = loads(resp.body)
            if not isinstance(answer, dict):
                raise ValueError("answered something other than a JSON object")
        except (APIError, ValueError, TimeoutError, OSError) as exc:
            # the reason names the guardrail service, never the texts
            log.warning("guardrail %r unreachable (%s): %s", self.name, type(exc).__name__, _short(exc))
            if self.fail_open:
                return Outcome(found={"UNREACHABLE": 1})
            return Outcome(found={"UNREACHABLE": 1}, blocked=True, reason="the guardrail service did not answer")
        action = str(answer.get("action", "NONE")).upper()
        if action == "BLOCKED":
            reason = answer.get("blocked_reason")
            return Outcome(
                found={"BLOCKED": 1},
                blocked=True,
                reason=str(reason)[:200] if reason else "the guardrail service refused it",
            )
        if action == "GUARDRAIL_INTERVENED":
            new = answer.get("texts")
            if isinstance(new, list) and len(new) == len(texts) and all(isinstance(t, str) for t in new):
                return Outcome(texts=new, found={"INTERVENED": 1})
            return Outcome(found={"INTERVENED": 1})
        return PASSED


def _short(exc: BaseException) -> str:
    return str(exc)[:200]
