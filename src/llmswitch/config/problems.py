"""Positioned problems in a config file, and the error that carries them.

Every problem names the file, the line and the key, so a user can jump straight to it::

    config.yaml:14: model_list[2].litellm_params.rpm: expected an integer, got 'fast'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from llmswitch.errors import ConfigError

KeyPath = tuple[str | int, ...]
"""Where a value sits in the document: mapping keys and sequence indexes from the root."""

Severity = Literal["error", "warning"]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def format_key_path(path: KeyPath) -> str:
    """``("model_list", 2, "litellm_params", "rpm")`` -> ``model_list[2].litellm_params.rpm``.

    Keys that are not plain words (``gpt-3.5-turbo``, ``openai/*``) are quoted so the path stays readable:

    >>> format_key_path(("router", "fallbacks", "gpt-3.5-turbo"))
    'router.fallbacks["gpt-3.5-turbo"]'
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


@dataclass(frozen=True)
class Problem:
    """One error or warning about a config file, with where it is.

    >>> str(Problem("expected an integer, got 'fast'", "config.yaml", 14, 12, "model_list[2].litellm_params.rpm"))
    "config.yaml:14: model_list[2].litellm_params.rpm: expected an integer, got 'fast'"
    """

    message: str
    file: str
    line: int | None = None
    column: int | None = None
    key: str = ""
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigFileError(ConfigError):
    """A config file could not be loaded; ``problems`` lists every error found, not only the first.

    The message lists them all, one per line, so a single run shows everything to fix.
    """

    def __init__(self, problems: list[Problem], warnings: list[Problem] | None = None) -> None:
        self.problems = list(problems)
        self.warnings = list(warnings or [])
        file = problems[0].file if problems else "config"
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = [f"{file}: {count}:"] + [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))
