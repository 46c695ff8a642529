"""A request's own cache controls: LiteLLM's ``cache`` object in the body, and ``Cache-Control`` headers.

    >>> c = read_controls({"no-store": True, "ttl": 60, "namespace": "eval-7"}, None)
    >>> c.no_store, c.ttl, c.namespace, c.no_cache
    (True, 60.0, 'eval-7', False)
    >>> read_controls(None, "no-cache, max-age=30").max_age
    30.0

``no-cache``: do not answer from the cache (the answer is still stored); ``no-store``: do not store it;
``ttl``: keep it this long; ``s-maxage`` (``max-age`` in the header): accept only an entry at most this
old; ``namespace``: a separate set of entries; ``use-cache``: opt in when the config's mode is
``default_off``. A control of the wrong type or range is a 400 naming it, never a crash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llmswitch.cache.settings import MAX_TTL_S
from llmswitch.dialects._json import invalid

MAX_NAMESPACE = 128
_KNOWN = frozenset({"no-cache", "no-store", "ttl", "s-maxage", "s-max-age", "max-age", "namespace", "use-cache"})


@dataclass(frozen=True, slots=True)
class Controls:
    no_cache: bool = False
    no_store: bool = False
    ttl: float | None = None
    max_age: float | None = None
    namespace: str | None = None
    use_cache: bool | None = None


NONE = Controls()


def read_controls(body_cache: Any, header: str | None) -> Controls:
    """The controls of a request's body ``cache`` object and its ``Cache-Control`` header."""
    if body_cache is None and not header:
        return NONE
    values: dict[str, Any] = {}
    if header:
        values.update(_from_header(header))
    if body_cache is not None:
        if not isinstance(body_cache, dict):
            raise invalid("cache", 'expected an object such as {"no-cache": true, "ttl": 600}')
        for key, value in body_cache.items():
            if key not in _KNOWN:
                raise invalid(f"cache.{key}", f"unknown cache control; known: {', '.join(sorted(_KNOWN))}")
            values[key] = value
    return Controls(
        no_cache=_flag("no-cache", values.get("no-cache")),
        no_store=_flag("no-store", values.get("no-store")),
        ttl=_seconds("ttl", values.get("ttl")),
        max_age=_seconds("s-maxage", values.get("s-maxage", values.get("s-max-age", values.get("max-age"))), zero=True),
        namespace=_namespace(values.get("namespace")),
        use_cache=None if values.get("use-cache") is None else _flag("use-cache", values["use-cache"]),
    )


def _from_header(header: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for directive in header[:1024].split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-cache", "no-store"):
            out[name] = True
        elif name in ("max-age", "s-maxage"):
            try:
                out["s-maxage"] = float(value.strip().strip('"'))
            except ValueError:
                continue  # an unreadable directive is ignored, as HTTP caches do
    return out


def _flag(name: str, value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise invalid(f"cache.{name}", f"expected true or false, got {type(value).__name__}")


def _seconds(name: str, value: Any, *, zero: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(f"cache.{name}", "expected a number of seconds")
    if value < 0 or (value == 0 and not zero) or value > MAX_TTL_S:
        raise invalid(f"cache.{name}", f"expected seconds between 0 and {MAX_TTL_S:.0f}, got {value}")
    return float(value)


def _namespace(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_NAMESPACE or not value.isprintable():
        raise invalid("cache.namespace", f"expected a printable string of 1 to {MAX_NAMESPACE} characters")
    return value
