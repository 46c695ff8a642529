"""Reading a positioned tree: typed getters that report problems where they are, and env references.

Both config forms are read with the same tools, so a wrong type, a missing variable or an unknown
key is reported the same way whichever form the user wrote.

    >>> ctx = Context("config.yaml", Marks(), {}, "litellm")
    >>> Section(ctx, ("router_settings",), {"num_retries": "many"}).integer("num_retries") is None
    True
    >>> str(ctx.errors[0])
    "config.yaml: router_settings.num_retries: expected an integer, got 'many'"
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, MutableMapping
from datetime import date
from typing import Any, Literal, TypeVar

from llmswitch.config.positioned_yaml import Marks
from llmswitch.config.problems import KeyPath, Problem, Severity, format_key_path

Form = Literal["litellm", "native"]
T = TypeVar("T")

ENV_PREFIX = "os.environ/"  # LiteLLM's way to say "read this value from the environment"
_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Invalid(Exception):
    """A value has the wrong type or range; the message says what was expected and what was found."""


class Context:
    """What every reader shares: the file, positions, the environment, and the problems found so far."""

    def __init__(self, file: str, marks: Marks, env: MutableMapping[str, str], form: Form) -> None:
        self.file = file
        self.marks = marks
        self.env = env
        self.form = form
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        # the response cache's settings, when the form read any (see config/cache_fields.py)
        self.cache: Any = None

    def report(self, severity: Severity, path: KeyPath, message: str, *, at_key: bool = False) -> None:
        pos = self.marks.key_at(path) if at_key else self.marks.value_at(path)
        line, column = pos if pos else (None, None)
        problem = Problem(message, self.file, line, column, format_key_path(path), severity)
        (self.errors if severity == "error" else self.warnings).append(problem)

    def error(self, path: KeyPath, message: str, *, at_key: bool = False) -> None:
        self.report("error", path, message, at_key=at_key)

    def warn(self, path: KeyPath, message: str, *, at_key: bool = False) -> None:
        self.report("warning", path, message, at_key=at_key)

    def resolve_env(self, value: Any, path: KeyPath, *, strict: bool) -> tuple[Any, bool]:
        """Replace environment references in ``value``; returns (value, ok).

        ``os.environ/NAME`` (both forms, as LiteLLM) is the whole value; ``${NAME}`` and
        ``${NAME:-default}`` (native form) may sit inside a longer string, ``$$`` is a literal ``$``.
        A missing variable is an error when ``strict`` (the field is required, or leaving it unset would
        change who is billed or whether auth is on), otherwise a warning and the field stays unset.
        """
        if not isinstance(value, str):
            return value, True
        missing: list[str] = []
        if value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :]
            if name in self.env:
                return self.env[name], True
            missing.append(name)
        elif self.form == "native" and "$" in value:

            def substitute(match: re.Match[str]) -> str:
                name, default = match.group(1), match.group(2)
                if name is None:
                    return "$"
                found = self.env.get(name)
                if found is not None and (found or default is None):
                    return found
                if default is not None:
                    return default  # `:-` as in the shell: unset or empty takes the default
                missing.append(name)
                return ""

            value = _INTERPOLATION.sub(substitute, value)
        if not missing:
            return value, True
        names = ", ".join(missing)
        plural = "s" if len(missing) > 1 else ""
        if strict:
            self.error(path, f"environment variable{plural} {names} not set")
        else:
            self.warn(path, f"environment variable{plural} {names} not set; left unset")
        return None, False

    def resolve_env_deep(self, value: Any, path: KeyPath) -> Any:
        """``resolve_env`` through nested lists and mappings (free-form params), never strict."""
        if isinstance(value, dict):
            return {k: self.resolve_env_deep(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve_env_deep(v, (*path, i)) for i, v in enumerate(value)]
        return self.resolve_env(value, path, strict=False)[0]


def describe(value: Any, *, secret: bool = False) -> str:
    """How a found value is shown in a message (secrets by type only, never by content)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if secret:
        return f"a {type(value).__name__}"
    return repr(value) if isinstance(value, str) else str(value)


def to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)  # os.environ/ values are text; so are quoted numbers
    raise Invalid(f"expected an integer, got {describe(value)}")


def to_number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise Invalid(f"expected a number, got {describe(value)}")


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
        return value.strip().lower() in ("true", "yes", "on", "1")
    raise Invalid(f"expected true or false, got {describe(value)}")


def to_text(value: Any, raw: str | None = None, *, secret: bool = False) -> str:
    if isinstance(value, str):
        return value
    if raw is not None and not isinstance(value, (dict, list)):
        return raw  # what the user typed, before YAML made it a number, date or boolean
    if isinstance(value, date):
        return value.isoformat()
    raise Invalid(f"expected a string, got {describe(value, secret=secret)}")


def suggest(key: str, candidates: Collection[str]) -> str:
    """``"; did you mean 'api_base'?"`` when ``key`` looks like a typo of a candidate, else ``""``."""
    close = difflib.get_close_matches(key, sorted(candidates), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


class Section:
    """A mapping being read. Getters convert and report; ``finish`` warns about every key not read."""

    def __init__(self, ctx: Context, path: KeyPath, data: dict[str, Any]) -> None:
        self.ctx = ctx
        self.path = path
        self.data = data
        self.known: set[str] = set()

    @classmethod
    def of(cls, ctx: Context, path: KeyPath, value: Any) -> Section | None:
        """A section for ``value``; ``None`` (with an error) unless it is a mapping. Absent/null is empty."""
        if value is None:
            return cls(ctx, path, {})
        if not isinstance(value, dict):
            ctx.error(path, f"expected a mapping, got {describe(value)}")
            return None
        return cls(ctx, path, value)

    def has(self, key: str) -> bool:
        self.known.add(key)
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        """The value as written (no environment lookup); marks the key as read."""
        self.known.add(key)
        return self.data.get(key)

    def value(self, key: str, *, strict: bool = False) -> Any:
        value, _ = self.ctx.resolve_env(self.raw(key), (*self.path, key), strict=strict)
        return value

    def _read(self, key: str, strict: bool) -> tuple[Any, str | None]:
        """(value after the environment lookup, its source text if YAML typed it as non-text)."""
        written = self.raw(key)
        value, _ = self.ctx.resolve_env(written, (*self.path, key), strict=strict)
        return value, self.ctx.marks.raw.get((*self.path, key)) if value is written else None

    def _checked(self, key: str, convert: Callable[[], T]) -> T | None:
        try:
            return convert()
        except Invalid as exc:
            self.ctx.error((*self.path, key), str(exc))
            return None

    def text(
        self, key: str, *, required: bool = False, strict: bool = False, secret: bool = False, if_empty: str = ""
    ) -> str | None:
        """A string; blank counts as unset (``${VAR:-}``), or as an error with ``if_empty`` or ``required``."""
        if required and key not in self.data:
            self.ctx.error(self.path, f"missing {key!r}", at_key=True)  # at the parent's key: `litellm_params:`
            self.known.add(key)
            return None
        value, raw = self._read(key, strict or required)
        if value is None:
            return None
        result = self._checked(key, lambda: to_text(value, raw, secret=secret))
        if result is not None and not result.strip():
            if required or if_empty:
                self.ctx.error((*self.path, key), if_empty or f"{key!r} must not be empty")
            return None
        return result

    def integer(
        self, key: str, *, minimum: int | None = None, maximum: int | None = None, strict: bool = False
    ) -> int | None:
        value, _ = self._read(key, strict)
        result = None if value is None else self._checked(key, lambda: to_int(value))
        if result is None:
            return None
        if (minimum is not None and result < minimum) or (maximum is not None and result > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            self.ctx.error((*self.path, key), f"expected an integer {bounds}, got {result}")
            return None
        return result

    def number(self, key: str, *, positive: bool = False) -> float | None:
        value, _ = self._read(key, False)
        result = None if value is None else self._checked(key, lambda: to_number(value))
        if result is None:
            return None
        if result < 0 or (positive and result == 0):
            self.ctx.error(
                (*self.path, key), f"expected a {'positive' if positive else 'non-negative'} number, got {result:g}"
            )
            return None
        return result

    def flag(self, key: str) -> bool | None:
        value, _ = self._read(key, False)
        return None if value is None else self._checked(key, lambda: to_bool(value))

    def texts(self, key: str) -> tuple[str, ...] | None:
        """A list of strings (a single string is taken as a list of one)."""
        value = self.value(key)
        if value is None:
            return None
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list):
            self.ctx.error((*self.path, key), f"expected a list of strings, got {describe(value)}")
            return None
        out: list[str] = []
        for i, item in enumerate(value):
            item, ok = self.ctx.resolve_env(item, (*self.path, key, i), strict=False)
            if not ok:
                continue
            if not isinstance(item, str) or not item:
                self.ctx.error((*self.path, key, i), f"expected a non-empty string, got {describe(item)}")
                continue
            out.append(item)
        return tuple(out)

    def section(self, key: str) -> Section | None:
        return Section.of(self.ctx, (*self.path, key), self.raw(key))

    def unread(self) -> list[str]:
        return [key for key in self.data if key not in self.known]

    def finish(self, *, unsupported: Collection[str] = (), what: str = "key", candidates: Collection[str] = ()) -> None:
        """Warn about every key nobody read: a known-but-unsupported setting, or an unknown key (with a
        did-you-mean among the keys this section reads, ``unsupported`` and ``candidates``)."""
        for key in self.unread():
            if key in unsupported:
                self.ctx.warn((*self.path, key), "not supported yet, ignored", at_key=True)
            else:
                hint = suggest(key, self.known | set(unsupported) | set(candidates))
                self.ctx.warn((*self.path, key), f"unknown {what}, ignored{hint}", at_key=True)
