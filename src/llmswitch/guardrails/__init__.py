"""Guardrails: checks on prompts and answers, configured as LiteLLM's ``guardrails:`` list.

Entered from the gateway (``llmswitch.server.chat``) and the SDK through one call, :meth:`Guardrails.start`,
which returns ``None`` when none applies; see :mod:`llmswitch.guardrails.run` for the moments they run at,
:mod:`llmswitch.guardrails.build` for the built-ins by name, and docs/guardrails.md.

    >>> import asyncio
    >>> from llmswitch import ir
    >>> gs = from_config([{"guardrail_name": "pii", "litellm_params": {"guardrail": "presidio",
    ...                    "mode": "pre_call", "default_on": True}}])
    >>> req = ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart("I am ann@example.com")])])
    >>> run = gs.start()
    >>> asyncio.run(run.pre_call(req)), req.messages[0].content[0].text
    (True, 'I am <EMAIL_ADDRESS_1>')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmswitch.guardrails.base import Context, Finding, Guardrail, GuardrailBlocked, Outcome, TextScanner, Vault
from llmswitch.guardrails.build import GuardrailSpec, build_guardrail, spec_from_litellm
from llmswitch.guardrails.run import Guardrails, Run, StreamGuard
from llmswitch.guardrails.sdk import configure


def from_config(entries: Iterable[Mapping[str, Any] | GuardrailSpec | Guardrail]) -> Guardrails:
    """Guardrails from LiteLLM ``guardrails:`` entries, specs, or guardrail objects."""
    items: list[Guardrail] = []
    for e in entries:
        if isinstance(e, Guardrail):
            items.append(e)
        else:
            items.append(build_guardrail(e if isinstance(e, GuardrailSpec) else spec_from_litellm(e)))
    return Guardrails(items)


__all__ = [
    "Context",
    "Finding",
    "Guardrail",
    "GuardrailBlocked",
    "GuardrailSpec",
    "Guardrails",
    "Outcome",
    "Run",
    "StreamGuard",
    "TextScanner",
    "Vault",
    "build_guardrail",
    "configure",
    "from_config",
    "spec_from_litellm",
]
