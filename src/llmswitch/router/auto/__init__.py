"""The ``auto`` complexity router: the cheap tier where it is enough, the strong one where it is not.

A model group whose deployment's model is ``auto`` routes each request to one of two other groups
(its tiers) by a difficulty score of the prompt — readable rules (:mod:`.rules`) combined with a
learned scorer on the semantic cache's local embedding model (:mod:`.scorer`) — against a threshold
set from a quality target or a strong-model share (:mod:`.settings`); optionally as a cascade that
checks the weak answer and escalates (:mod:`.checks`). See docs/auto-routing.md.

    >>> router = Router(model_list=[
    ...     {"model_name": "weak", "litellm_params": {"model": "openai/gpt-4o-mini"}},
    ...     {"model_name": "strong", "litellm_params": {"model": "openai/gpt-4o"}},
    ...     {"model_name": "auto", "litellm_params": {"model": "auto", "router": {"strong_share": 0.3}}},
    ... ])  # doctest: +SKIP
    >>> r = router.completion(model="auto", messages=[{"role": "user", "content": "Hi"}])  # doctest: +SKIP
    >>> r.llmswitch["model_group"], r.llmswitch["route"]["reason"]  # doctest: +SKIP
    ('weak', 'score 0.212 < 0.534 (no rule fired)')
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from llmswitch.router.auto.settings import AutoSettings, is_auto_model, parse_settings

__all__ = ["AutoSettings", "auto_row", "build_groups", "is_auto_model", "parse_settings"]


def auto_row(row: Any) -> tuple[str, Any] | None:
    """``(group name, its router settings)`` when ``row`` (a config ``Deployment``, a LiteLLM
    ``model_list`` row or a flat dict) is an ``auto`` group, else ``None``."""
    if isinstance(row, Mapping):
        params = row.get("litellm_params")
        source = params if isinstance(params, Mapping) else row
        if not is_auto_model(source.get("model")):
            return None
        extra = source.get("params")
        fallback = extra.get("router") if isinstance(extra, Mapping) else None
        return str(row.get("model_name")), source.get("router", fallback)
    if getattr(row, "provider", None) == "auto" or is_auto_model(getattr(row, "model", None)):
        params = getattr(row, "params", None) or {}
        return str(row.model_name), params.get("router")
    return None


def build_groups(rows: list[tuple[str, Any]], on_decision: Any = None, scorer: Any = None) -> dict[str, Any]:
    """The auto groups of a router (``rows`` from :func:`auto_row`), sharing one scorer (and embedder)."""
    from llmswitch.router.auto.group import AutoGroup
    from llmswitch.router.auto.scorer import Scorer, ScorerModel

    groups: dict[str, Any] = {}
    model = scorer.model if scorer is not None else ScorerModel.load()
    scorers: dict[str, Any] = {}
    for name, raw in rows:
        settings = parse_settings(raw)
        sc = scorer or scorers.get(settings.scorer)
        if sc is None:
            sc = scorers[settings.scorer] = Scorer(model, settings.scorer)
        groups[name] = AutoGroup(name, settings, sc, on_decision)
    for sc in scorers.values():
        if sc.kind != "rules":  # load the embedding model now, off the caller's thread, not on a first request
            threading.Thread(target=sc.warm, name="llmswitch-auto-warm", daemon=True).start()
    return groups
