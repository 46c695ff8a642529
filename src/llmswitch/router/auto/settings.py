"""An ``auto`` group's settings: its tiers, how much goes to the strong one, its rules, its cascade.

In a LiteLLM-style config the group is a ``model_list`` row whose ``litellm_params.model`` is ``auto``
(or ``auto/<anything>``), its settings under ``litellm_params.router``; every setting has a default:

    - model_name: auto
      litellm_params:
        model: auto
        router:
          weak: weak              # the cheap tier's model group        (default "weak")
          strong: strong          # the strong tier's model group       (default "strong")
          quality_target: 0.95    # of the strong model's accuracy      (default 0.95)
          # or strong_share: 0.4  (about this share of prompts to strong), or threshold: 0.6 (a raw score)
          scorer: hybrid          # hybrid | rules | embedding
          rules: {code: 1.2}      # rule weights overriding the defaults (llmswitch.router.auto.rules)
          keywords: {"step by step": 0.8}
          cascade: false          # or true, or {checks: [...], min_logprob: -1.0, check: "pkg.mod:fn"}

    >>> s = parse_settings({"weak": "cheap", "strong_share": 0.3})
    >>> (s.weak, s.strong, s.strong_share, s.quality_target, s.cascade)
    ('cheap', 'strong', 0.3, None, None)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from llmswitch.errors import ConfigError
from llmswitch.router.auto import rules as rule_table

__all__ = [
    "CHECKS",
    "DEFAULT_QUALITY_TARGET",
    "AutoSettings",
    "CascadeSettings",
    "is_auto_model",
    "load_check",
    "parse_settings",
]

DEFAULT_QUALITY_TARGET = 0.95
Check = Literal["schema", "tools", "refusal", "length", "logprobs", "check"]
#: the cascade's checks, in the order they run
CHECKS: tuple[Check, ...] = ("schema", "tools", "refusal", "length", "logprobs", "check")
_KEYS = (
    "weak",
    "strong",
    "quality_target",
    "strong_share",
    "threshold",
    "scorer",
    "rules",
    "rules_bias",
    "keywords",
    "cascade",
    "classify",
)
_CASCADE_KEYS = ("checks", "min_logprob", "check")


def is_auto_model(model: Any) -> bool:
    """Whether a deployment's ``model`` makes its group an ``auto`` group."""
    return isinstance(model, str) and (model == "auto" or model.startswith("auto/"))


@dataclass(frozen=True)
class CascadeSettings:
    checks: tuple[Check, ...] = CHECKS
    min_logprob: float = -1.0  # mean log-probability per token below which the answer is doubted
    check: str | None = None  # "package.module:function" or "package.module.function"


@dataclass(frozen=True)
class AutoSettings:
    weak: str = "weak"
    strong: str = "strong"
    quality_target: float | None = DEFAULT_QUALITY_TARGET
    strong_share: float | None = None
    threshold: float | None = None
    scorer: Literal["hybrid", "rules", "embedding"] = "hybrid"
    rules: Mapping[str, float] = field(default_factory=lambda: dict(rule_table.DEFAULT_WEIGHTS))
    rules_bias: float = rule_table.DEFAULT_BIAS
    keywords: Mapping[str, float] = field(default_factory=dict)
    cascade: CascadeSettings | None = None
    classify: bool = True  # score before the call; off: every request starts on the weak tier (a cascade)


def _fraction(where: str, value: Any, *, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number between 0 and 1, got {value!r}")
    if not (0.0 < value <= 1.0 if open_low else 0.0 <= value <= 1.0):
        raise ConfigError(f"{where} must be between 0 and 1, got {value!r}")
    return float(value)


def _weights(where: str, value: Any, known: Mapping[str, str] | None) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of name to weight, got {value!r}")
    out = {}
    for name, weight in value.items():
        if known is not None and name not in known:
            raise ConfigError(f"{where}.{name}: unknown rule; known: {', '.join(known)}")
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ConfigError(f"{where}.{name} must be a number, got {weight!r}")
        out[str(name)] = float(weight)
    return out


def _cascade(value: Any) -> CascadeSettings | None:
    if value is None or value is False:
        return None
    if value is True:
        return CascadeSettings()
    if not isinstance(value, Mapping):
        raise ConfigError(f"router.cascade must be true, false or a mapping, got {value!r}")
    for key in value:
        if key not in _CASCADE_KEYS:
            raise ConfigError(f"router.cascade.{key}: unknown key; known: {', '.join(_CASCADE_KEYS)}")
    checks = value.get("checks")
    if checks is None:
        picked: tuple[Check, ...] = CHECKS if value.get("check") else tuple(c for c in CHECKS if c != "check")
    else:
        if not isinstance(checks, list) or not all(c in CHECKS for c in checks):
            raise ConfigError(f"router.cascade.checks must be a list of {', '.join(CHECKS)}; got {checks!r}")
        picked = tuple(c for c in CHECKS if c in checks)
    check = value.get("check")
    if check is not None and not isinstance(check, str):
        raise ConfigError(f"router.cascade.check must be a dotted path to a function, got {check!r}")
    if "check" in picked and check is None:
        raise ConfigError("router.cascade.checks names 'check' but router.cascade.check gives no function")
    low = value.get("min_logprob", -1.0)
    if isinstance(low, bool) or not isinstance(low, int | float) or low > 0:
        raise ConfigError(f"router.cascade.min_logprob must be a number <= 0, got {low!r}")
    return CascadeSettings(checks=picked, min_logprob=float(low), check=check)


def parse_settings(value: Any) -> AutoSettings:
    """An ``auto`` group's settings from the mapping under ``router`` (``None``: every default).

    Raises ``ConfigError`` naming the setting; the config reader adds the file and line.
    """
    if value is None:
        return AutoSettings()
    if not isinstance(value, Mapping):
        raise ConfigError(f"router must be a mapping of settings, got {value!r}")
    for key in value:
        if key not in _KEYS:
            raise ConfigError(f"router.{key}: unknown setting; known: {', '.join(_KEYS)}")
    targets = [k for k in ("quality_target", "strong_share", "threshold") if value.get(k) is not None]
    if len(targets) > 1:
        raise ConfigError(
            f"router: give one of quality_target, strong_share and threshold, not {' and '.join(targets)}"
        )
    kw: dict[str, Any] = {}
    for key in ("weak", "strong"):
        if key in value:
            if not isinstance(value[key], str) or not value[key]:
                raise ConfigError(f"router.{key} must name a model group, got {value[key]!r}")
            kw[key] = value[key]
    if "strong_share" in targets:
        kw["strong_share"] = _fraction("router.strong_share", value["strong_share"])
        kw["quality_target"] = None
    elif "threshold" in targets:
        kw["threshold"] = _fraction("router.threshold", value["threshold"])
        kw["quality_target"] = None
    elif "quality_target" in targets:
        kw["quality_target"] = _fraction("router.quality_target", value["quality_target"], open_low=True)
    if "scorer" in value:
        if value["scorer"] not in ("hybrid", "rules", "embedding"):
            raise ConfigError(f"router.scorer must be hybrid, rules or embedding, got {value['scorer']!r}")
        kw["scorer"] = value["scorer"]
    if value.get("rules") is not None:
        kw["rules"] = {**rule_table.DEFAULT_WEIGHTS, **_weights("router.rules", value["rules"], rule_table.RULES)}
    if value.get("rules_bias") is not None:
        bias = value["rules_bias"]
        if isinstance(bias, bool) or not isinstance(bias, int | float):
            raise ConfigError(f"router.rules_bias must be a number, got {bias!r}")
        kw["rules_bias"] = float(bias)
    if value.get("keywords") is not None:
        kw["keywords"] = _weights("router.keywords", value["keywords"], None)
    kw["cascade"] = _cascade(value.get("cascade"))
    if "classify" in value:
        if not isinstance(value["classify"], bool):
            raise ConfigError(f"router.classify must be true or false, got {value['classify']!r}")
        kw["classify"] = value["classify"]
    settings = AutoSettings(**kw)
    if settings.weak == settings.strong:
        raise ConfigError(f"router.strong names the same group as router.weak: {settings.weak!r}")
    return settings


def load_check(path: str) -> Callable[..., Any]:
    """The user's check function at ``path`` (``pkg.mod:fn`` or ``pkg.mod.fn``)."""
    module, sep, name = path.partition(":")
    if not sep:
        module, _, name = path.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"router.cascade.check: cannot import {path!r}: {exc}") from exc
    if not callable(fn):
        raise ConfigError(f"router.cascade.check: {path!r} is not callable")
    return fn  # type: ignore[no-any-return]
