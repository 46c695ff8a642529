"""Guardrails in the SDK: the same checks as the gateway's, in-process.

    >>> import llmswitch
    >>> from llmswitch.guardrails import configure
    >>> configure([{"guardrail_name": "pii", "litellm_params": {"guardrail": "presidio", "mode": "pre_call"}}])
    Guardrails(['pii'])
    >>> llmswitch.completion("openai/gpt-4o-mini", messages, guardrails=["pii"])  # doctest: +SKIP

``configure`` sets the process's guardrails (``default_on`` ones then run on every call);
``guardrails=[...]`` on a call names configured ones, or passes guardrail objects or LiteLLM entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmswitch.guardrails.base import Guardrail
from llmswitch.guardrails.build import GuardrailSpec, build_guardrail, spec_from_litellm
from llmswitch.guardrails.run import Guardrails, Run

_configured: Guardrails | None = None


def configure(entries: Iterable[Mapping[str, Any] | GuardrailSpec | Guardrail] | None) -> Guardrails | None:
    """Set (or with ``None``, clear) the guardrails every SDK call can name; returns them."""
    global _configured
    _configured = None if entries is None else Guardrails([_built(e) for e in entries])
    return _configured


def _built(e: Mapping[str, Any] | GuardrailSpec | Guardrail) -> Guardrail:
    if isinstance(e, Guardrail):
        return e
    return build_guardrail(e if isinstance(e, GuardrailSpec) else spec_from_litellm(e))


def start_for_call(requested: Any) -> Run | None:
    """The run of one SDK call (``None``: no guardrail applies)."""
    gs = _configured
    if requested is None:
        return gs.start() if gs is not None else None
    items = requested if isinstance(requested, list | tuple) else [requested]
    objects = [_built(i) for i in items if not isinstance(i, str)]
    names = [i for i in items if isinstance(i, str)]
    if names and gs is None:
        from llmswitch.guardrails.run import _invalid

        raise _invalid("guardrails", "no guardrails are configured (llmswitch.guardrails.configure)")
    run = gs.start(requested=names) if gs is not None else None
    if not objects:
        return run
    chosen = [*(run.guardrails if run is not None else ()), *objects]
    return Run(tuple(chosen))
