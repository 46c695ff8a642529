"""Fallbacks across model groups: where a request goes when its own group cannot answer it.

Three maps, group -> groups in order, plus groups for everything:

- ``fallbacks``: the group's deployments all failed (or are all unavailable);
- ``context_window_fallbacks``: the prompt is too long for the group (the provider said so, or the
  router estimated it before sending, from ``model_info.max_input_tokens``);
- ``content_policy_fallbacks``: the group's model refused on content policy;
- ``default_fallbacks``: for any group without its own ``fallbacks`` (``"*"`` as a key does the same).

A context or content-policy failure with no fallback for it fails fast: no other deployment of the
group would answer differently. Both shapes LiteLLM takes are accepted:

    >>> fb = Fallbacks(fallbacks=[{"gpt-4o": ["claude"]}], context_window_fallbacks={"gpt-4o": ["gpt-4o-long"]})
    >>> fb.chain("gpt-4o", "error"), fb.chain("gpt-4o", "context"), fb.chain("other", "error")
    (('claude',), ('gpt-4o-long',), ())
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from llmswitch.errors import ConfigError, ContentPolicyViolationError, ContextWindowExceededError

Reason = Literal["error", "context", "content_policy"]

FallbackSpec = Mapping[str, Iterable[str]] | Iterable[Mapping[str, Iterable[str]]] | None


def normalize(spec: FallbackSpec) -> dict[str, tuple[str, ...]]:
    """``{group: [fallbacks]}`` or LiteLLM's ``[{group: [fallbacks]}, ...]`` as one dict of tuples."""
    if not spec:
        return {}
    entries: Iterable[Mapping[str, Any]] = [spec] if isinstance(spec, Mapping) else spec
    out: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ConfigError(f"fallbacks: expected {{group: [fallback groups]}}, got {entry!r}")
        for group, targets in entry.items():
            groups = (targets,) if isinstance(targets, str) else tuple(targets)
            if not all(isinstance(g, str) and g for g in groups):
                raise ConfigError(f"fallbacks for {group!r}: expected a list of model groups, got {targets!r}")
            out.setdefault(str(group), groups)
    return out


def reason_of(exc: BaseException) -> Reason:
    if isinstance(exc, ContextWindowExceededError):
        return "context"
    if isinstance(exc, ContentPolicyViolationError):
        return "content_policy"
    return "error"


class Fallbacks:
    """The fallback maps, each chain precomputed once per (group, reason)."""

    def __init__(
        self,
        *,
        fallbacks: FallbackSpec = None,
        context_window_fallbacks: FallbackSpec = None,
        content_policy_fallbacks: FallbackSpec = None,
        default_fallbacks: Iterable[str] | None = None,
        max_fallbacks: int = 5,
    ) -> None:
        self.maps: dict[Reason, dict[str, tuple[str, ...]]] = {
            "error": normalize(fallbacks),
            "context": normalize(context_window_fallbacks),
            "content_policy": normalize(content_policy_fallbacks),
        }
        default = tuple(default_fallbacks or ())
        star = self.maps["error"].pop("*", ())
        self.default = default or star
        self.max_fallbacks = max_fallbacks
        self._chains: dict[tuple[str, Reason], tuple[str, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self.default or any(self.maps.values()))

    def chain(self, group: str, reason: Reason) -> tuple[str, ...]:
        """Groups to try, in order, after ``group`` failed for ``reason`` (never ``group`` itself)."""
        key = (group, reason)
        found = self._chains.get(key)
        if found is not None:
            return found
        groups = self.maps[reason].get(group)
        if groups is None:
            groups = self.maps[reason].get("*", ())
        if reason == "error" and not groups:
            groups = self.default
        seen: list[str] = []
        for g in groups:
            if g != group and g not in seen:
                seen.append(g)
        out = tuple(seen[: self.max_fallbacks])
        if len(self._chains) < 10_000:
            self._chains[key] = out
        return out

    def has(self, group: str, reason: Reason) -> bool:
        return bool(self.chain(group, reason))
