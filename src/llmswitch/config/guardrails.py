"""LiteLLM's ``guardrails:`` list, read with positions, each entry built once so a wrong setting or a
missing extra is reported at load time, naming its line:

    guardrails:
      - guardrail_name: pii-mask
        litellm_params:
          guardrail: presidio        # or hide-secrets, banned_keywords, html_sanitizer, generic_guardrail_api, ...
          mode: pre_call             # or a list: [pre_call, post_call]
          default_on: true
"""

from __future__ import annotations

from typing import Any

from llmswitch.config.reading import Context, Section, describe
from llmswitch.guardrails.build import GuardrailSpec, build_guardrail


def read_guardrails(ctx: Context, root: Section) -> tuple[GuardrailSpec, ...]:
    raw = root.raw("guardrails")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        ctx.error(("guardrails",), f"expected a list of guardrails, got {describe(raw)}")
        return ()
    specs: list[GuardrailSpec] = []
    names: set[str] = set()
    for i, entry in enumerate(raw):
        path = ("guardrails", i)
        sec = Section.of(ctx, path, entry)
        if sec is None:
            continue
        name = sec.text("guardrail_name", required=True)
        params = sec.section("litellm_params")
        info = sec.raw("guardrail_info")  # descriptive only (LiteLLM shows it on /guardrails/list)
        del info
        sec.finish()
        if name is None or params is None:
            continue
        if name in names:
            ctx.error((*path, "guardrail_name"), f"{name!r} is named twice")
            continue
        names.add(name)
        kind = params.text("guardrail", required=True)
        mode_raw = params.raw("mode")
        modes: tuple[str, ...]
        if mode_raw is None:
            modes = ("pre_call",)
        elif isinstance(mode_raw, list) and all(isinstance(m, str) for m in mode_raw):
            modes = tuple(mode_raw)
        elif isinstance(mode_raw, str):
            modes = (mode_raw,)
        else:
            ctx.error((*params.path, "mode"), f"expected a mode or a list of modes, got {describe(mode_raw)}")
            continue
        default_on = bool(params.flag("default_on"))
        rest: dict[str, Any] = {}
        for key in params.unread():
            secret = key in ("api_key",)
            value = (
                params.text(key, secret=True) if secret else ctx.resolve_env_deep(params.data[key], (*params.path, key))
            )
            params.known.add(key)
            rest[key] = value
        if kind is None:
            continue
        spec = GuardrailSpec(name, kind, modes, default_on, rest, source=f"{ctx.file}")
        try:
            build_guardrail(spec)
        except (ValueError, ImportError, TypeError) as exc:
            ctx.error(path, f"guardrail {name!r}: {exc}")
            continue
        specs.append(spec)
    return tuple(specs)
