"""What each Claude model takes, read from its id: its version, default and largest output, whether it has
native structured outputs, whether it can think. Ids of Anthropic's API, Bedrock and Vertex alike.

    >>> model_version("claude-sonnet-4-5-20250929"), max_tokens_of(("sonnet", 4, 5))
    (('sonnet', 4, 5), (8192, 64000))
"""

from __future__ import annotations

import re

_MODEL = re.compile(
    r"claude-(?:(?P<fam>[a-z]+)-(?P<major>\d)(?:-(?P<minor>\d{1,2}))?(?!\d)"
    r"|(?P<omajor>\d)(?:-(?P<ominor>\d))?-(?P<ofam>[a-z]+))"
)


def model_version(model: str) -> tuple[str, int, int] | None:
    """``claude-sonnet-4-5-20250929`` -> ("sonnet", 4, 5); ``claude-3-5-haiku-latest`` -> ("haiku", 3, 5).

    Works on Bedrock / Vertex ids too (``us.anthropic.claude-…``, ``claude-opus-4-1@2025…``).
    """
    m = _MODEL.search(model)
    if m is None:
        return None
    if m.group("fam"):
        return m.group("fam"), int(m.group("major")), int(m.group("minor") or 0)
    return m.group("ofam"), int(m.group("omajor")), int(m.group("ominor") or 0)


def max_tokens_of(version: tuple[str, int, int] | None) -> tuple[int, int | None]:
    """(default max_tokens, the model's output ceiling or None if unknown)."""
    if version is None:
        return 4096, None
    fam, major, minor = version
    if (major, minor) < (3, 5):
        return 4096, 4096
    if (major, minor) < (3, 7):
        return 8192, 8192
    if fam == "opus" and (major, minor) < (4, 5):
        return 8192, 32000
    return 8192, 128000 if fam == "opus" and (major, minor) >= (4, 6) else 64000


def native_structured(version: tuple[str, int, int] | None) -> bool:
    """Models with ``output_config.format`` and strict tools (Claude 4.5 and later)."""
    return version is not None and version[1:] >= (4, 5)


def thinking_capable(version: tuple[str, int, int] | None) -> bool:
    return version is None or version[1:] >= (3, 7)
