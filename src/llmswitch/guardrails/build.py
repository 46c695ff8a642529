"""Guardrails by name: LiteLLM's ``guardrails:`` entries built into :class:`Guardrail` objects.

``litellm_params.guardrail`` names a built-in (imported only when used, so an unused optional
dependency is never imported) or a third-party factory as ``"package.module:factory"``, called with
``(name, modes, default_on, params)`` like the built-ins.

    >>> g = build_guardrail(GuardrailSpec("pii", "presidio", ("pre_call",), True, {}))
    >>> type(g).__name__, g.default_on
    ('PersonalData', True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmswitch.guardrails.base import MODES, Guardrail
from llmswitch.guardrails.pii import entity_actions, parse_action

Factory = Callable[[str, frozenset[str], bool, dict[str, Any]], Guardrail]


@dataclass(frozen=True)
class GuardrailSpec:
    """One ``guardrails:`` entry, as written (``params``: the rest of its ``litellm_params``)."""

    name: str
    guardrail: str
    modes: tuple[str, ...]
    default_on: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    source: str = field(default="", compare=False)


def _pii(name: str, modes: frozenset[str], default_on: bool, p: dict[str, Any]) -> Guardrail:
    from llmswitch.guardrails.pii import PersonalData

    secrets = None
    if p.get("secrets"):
        action = p["secrets"] if isinstance(p["secrets"], str) else "mask"
        secrets = _secrets(name, modes, default_on, {"action": action, "detector": p.get("secrets_detector", "auto")})
    return PersonalData(
        name,
        modes=modes,
        default_on=default_on,
        entities=entity_actions(
            p.get("pii_entities_config", p.get("entities")),
            parse_action(p.get("action", "MASK"), "action"),
            "pii_entities_config",
        ),
        secrets=secrets,  # type: ignore[arg-type]
        output_parse_pii=bool(p.get("output_parse_pii", False)),
    )


def _secrets(name: str, modes: frozenset[str], default_on: bool, p: dict[str, Any]) -> Guardrail:
    from llmswitch.guardrails.secrets import Secrets

    return Secrets(
        name,
        modes=modes,
        default_on=default_on,
        action=parse_action(p.get("action", "MASK"), "action"),
        detector=str(p.get("detector", "auto")),
    )


def _words(name: str, modes: frozenset[str], default_on: bool, p: dict[str, Any]) -> Guardrail:
    from llmswitch.guardrails.words import from_params

    return from_params(name, modes, default_on, p)


def _length(name: str, modes: frozenset[str], default_on: bool, p: dict[str, Any]) -> Guardrail:
    from llmswitch.guardrails.length import Length

    def limit(key: str) -> int | None:
        v = p.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{key}: expected a non-negative integer")
        return v

    return Length(
        name,
        modes=modes,
        default_on=default_on,
        max_input_chars=limit("max_input_chars"),
        max_input_tokens=limit("max_input_tokens"),
        max_output_chars=limit("max_output_chars"),
    )


def _sanitizer(name: str, modes: frozenset[str], default_on: bool, p: dict[str, Any]) -> Guardrail:
    from llmswitch.guardrails.sanitize import Sanitizer

    return Sanitizer(
        name,
        modes=modes,
        default_on=default_on,
        allowed_tags=p.get("allowed_tags"),
        allowed_attributes=p.get("allowed_attributes"),
    )


def _schema(name: str, modes: frozenset[str], default_on: bool, p: dict[str, Any]) -> Guardrail:
    from llmswitch.guardrails.schema import JSONSchema

    return JSONSchema(name, modes=modes, default_on=default_on)


def _external(name: str, modes: frozenset[str], default_on: bool, p: dict[str, Any]) -> Guardrail:
    from llmswitch.guardrails.external import External

    base = p.get("api_base")
    if not isinstance(base, str) or not base.startswith(("http://", "https://")):
        raise ValueError("api_base: the guardrail service's http(s) URL is required")
    timeout = p.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError("timeout: expected a positive number of seconds")
    fallback = str(p.get("unreachable_fallback", "fail_closed"))
    if fallback not in ("fail_closed", "fail_open"):
        raise ValueError("unreachable_fallback: expected fail_closed or fail_open")
    headers = p.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError("headers: expected a mapping")
    return External(
        name,
        modes=modes,
        default_on=default_on,
        api_base=base,
        api_key=p.get("api_key"),
        headers={str(k): str(v) for k, v in headers.items()},
        timeout=float(timeout),
        fail_open=fallback == "fail_open",
        extra_params=p.get("additional_provider_specific_params") or {},
    )


BUILT_IN: dict[str, Factory] = {
    "presidio": _pii,
    "pii": _pii,
    "personal_data": _pii,
    "hide-secrets": _secrets,
    "hide_secrets": _secrets,
    "secrets": _secrets,
    "detect_secrets": _secrets,
    "banned_keywords": _words,
    "litellm_content_filter": _words,
    "content_filter": _words,
    "words": _words,
    "length": _length,
    "max_length": _length,
    "html_sanitizer": _sanitizer,
    "sanitize_html": _sanitizer,
    "output_sanitizer": _sanitizer,
    "json_schema": _schema,
    "response_schema": _schema,
    "generic_guardrail_api": _external,
}


def build_guardrail(spec: GuardrailSpec) -> Guardrail:
    """The guardrail ``spec`` describes; ``ValueError`` (naming the setting) or ``ImportError`` (naming
    the missing extra) when it cannot be built."""
    bad = [m for m in spec.modes if m not in MODES]
    if bad or not spec.modes:
        raise ValueError(f"mode: expected one or more of {', '.join(MODES)}, got {', '.join(bad) or 'none'}")
    factory = BUILT_IN.get(spec.guardrail)
    if factory is None:
        if ":" not in spec.guardrail:
            known = ", ".join(sorted(BUILT_IN))
            raise ValueError(f"guardrail: {spec.guardrail!r} is not a built-in ({known}) nor 'module:factory'")
        module, _, attr = spec.guardrail.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    try:
        return factory(spec.name, frozenset(spec.modes), spec.default_on, dict(spec.params))
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in _EXTRA_MODULES:
            raise
        raise ImportError(f"needs {exc.name}: pip install 'llmswitch[guardrails]'", name=exc.name) from exc


# what the `guardrails` extra installs, by import name
_EXTRA_MODULES = frozenset({"nh3", "detect_secrets", "jsonschema"})


def spec_from_litellm(entry: Mapping[str, Any]) -> GuardrailSpec:
    """A spec from a LiteLLM ``guardrails:`` entry (``guardrail_name`` and ``litellm_params``), for the SDK;
    the gateway's config reader does the same with positioned errors."""
    name = entry.get("guardrail_name")
    params = dict(entry.get("litellm_params") or {})
    if not isinstance(name, str) or not name:
        raise ValueError("guardrail_name is required")
    kind = params.pop("guardrail", None)
    if not isinstance(kind, str):
        raise ValueError(f"guardrail {name!r}: litellm_params.guardrail is required")
    mode = params.pop("mode", "pre_call")
    modes = tuple(mode) if isinstance(mode, list) else (str(mode),)
    default_on = bool(params.pop("default_on", entry.get("default_on", False)))
    return GuardrailSpec(name, kind, modes, default_on, params)
