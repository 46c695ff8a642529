"""Credentials in prompts: API keys, tokens, private keys and passwords, masked or refused.

Two detectors, used together when both are there: our own patterns (no dependency: the formats of the
major providers, PEM private keys, JWTs, credentials in URLs, ``password = ...`` assignments), and
detect-secrets' plugins (Yelp's maintained detector, ``pip install 'llmswitch[guardrails]'``), whose
regex plugins we run over the whole text to get each secret's position.

    >>> [f.kind for f in detect_secrets_in("key AKIAIOSFODNN7EXAMPLE")]
    ['AWS_ACCESS_KEY']

A secret found is never written anywhere: decisions carry kinds and counts only.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from llmswitch.guardrails.base import Action, Finding, Phase, TextScanner

_PATTERNS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    (
        "PRIVATE_KEY",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,8000}?-----END (?:[A-Z0-9]+ )*"
            r"PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s]{0,8000})"
        ),
        0,
    ),
    ("AWS_ACCESS_KEY", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[0-9A-Z]{16}(?![A-Z0-9])"), 0),
    (
        "AWS_SECRET_KEY",
        re.compile(r"(?i)aws.{0,20}?(?:secret|key).{0,20}?[:=\s][\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"),
        1,
    ),
    ("GITHUB_TOKEN", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b"), 0),
    ("GITLAB_TOKEN", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"), 0),
    (
        "OPENAI_API_KEY",
        re.compile(r"(?<![\w-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}"),
        0,
    ),
    ("ANTHROPIC_API_KEY", re.compile(r"(?<![\w-])sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{80,}"), 0),
    ("API_KEY", re.compile(r"(?<![\w-])sk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{32,}(?![\w-])"), 0),
    ("SLACK_TOKEN", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), 0),
    ("SLACK_WEBHOOK", re.compile(r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"), 0),
    ("STRIPE_KEY", re.compile(r"\b[rsp]k_(?:live|test)_[A-Za-z0-9]{20,}\b"), 0),
    ("GOOGLE_API_KEY", re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"), 0),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), 0),
    ("NPM_TOKEN", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), 0),
    ("PYPI_TOKEN", re.compile(r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"), 0),
    ("TWILIO_API_KEY", re.compile(r"\bSK[0-9a-fA-F]{32}\b"), 0),
    ("SENDGRID_KEY", re.compile(r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b"), 0),
    ("URL_CREDENTIALS", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@]{0,64}:([^\s/@]{3,128})@"), 1),
    (
        "PASSWORD",
        re.compile(
            r"(?i)\b(?:password|passwd|passphrase|secret|api[_ -]?key|client[_ -]?secret|token)\b\s*(?:=|:|:=)\s*"
            r"([\"'])([^\"'\n]{6,128})\1"
        ),
        2,
    ),
    (
        "PASSWORD",
        re.compile(
            r"(?i)\b(?:password|passwd|pwd|passphrase|secret|api[_ -]?key|access[_ -]?token|auth[_ -]?token|"
            r"client[_ -]?secret|token)\b[\"']?\s*(?:is|was|=|:|:=|=>)\s*[\"']?([^\s\"',;]{6,128})"
        ),
        1,
    ),
)
# literal fragments one of which a pattern's match must contain: a pattern runs only when its fragment
# is in the text (a substring test costs far less than a regex scan of 2 KB); None: lower-cased text
_HINTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "PRIVATE_KEY": (("PRIVATE KEY",), False),
    "AWS_ACCESS_KEY": (("AKIA", "ASIA", "ABIA", "ACCA", "AROA", "AIDA"), False),
    "AWS_SECRET_KEY": (("aws",), True),
    "GITHUB_TOKEN": (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), False),
    "GITLAB_TOKEN": (("glpat-",), False),
    "OPENAI_API_KEY": (("T3BlbkFJ",), False),
    "ANTHROPIC_API_KEY": (("sk-ant-",), False),
    "API_KEY": (("sk-",), False),
    "SLACK_TOKEN": (("xox",), False),
    "SLACK_WEBHOOK": (("hooks.slack.com",), False),
    "STRIPE_KEY": (("_live_", "_test_"), False),
    "GOOGLE_API_KEY": (("AIza",), False),
    "JWT": (("eyJ",), False),
    "NPM_TOKEN": (("npm_",), False),
    "PYPI_TOKEN": (("pypi-",), False),
    "TWILIO_API_KEY": (("SK",), False),
    "SENDGRID_KEY": (("SG.",), False),
    "URL_CREDENTIALS": (("://",), False),
    "PASSWORD": (("pass", "pwd", "secret", "key", "token"), True),
}


def _strong(value: str) -> bool:
    """A value after ``password:`` that looks like one: not a plain word ("the password is incorrect")."""
    has_digit = any(c.isdigit() for c in value)
    has_other = any(not c.isalnum() for c in value)
    has_mixed = any(c.isupper() for c in value) and any(c.islower() for c in value)
    return has_digit or has_other or (has_mixed and len(value) >= 8) or len(value) >= 16


def detect_secrets_in(text: str, *, plugins: bool = False) -> list[Finding]:
    """Spans of credentials in ``text``; ``plugins`` also runs detect-secrets' regex plugins."""
    found: list[Finding] = []
    lowered = text.lower()
    for kind, pattern, group in _PATTERNS:
        hints, lower = _HINTS[kind]
        where = lowered if lower else text
        if not any(h in where for h in hints):
            continue
        for m in pattern.finditer(text):
            start, end = m.span(group)
            if start < 0 or end <= start:
                continue
            if kind == "PASSWORD" and not _strong(m.group(group)):
                continue
            found.append(Finding(kind, start, end))
    if plugins:
        found += _plugin_findings(text)
    return _without_overlaps(found)


def _without_overlaps(found: list[Finding]) -> list[Finding]:
    found.sort(key=lambda f: (f.start, -(f.end - f.start)))
    out: list[Finding] = []
    for f in found:
        if out and f.start < out[-1].end:
            continue
        out.append(f)
    return out


@cache
def _plugins() -> tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]:
    """detect-secrets' regex plugins (those that find a secret by its shape), as (kind, patterns)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    out: list[tuple[str, tuple[re.Pattern[str], ...]]] = []
    mapping: dict[str, Any] = get_mapping_from_secret_type_to_class()
    for secret_type, cls in sorted(mapping.items()):
        if not issubclass(cls, RegexBasedDetector) or cls.__name__ == "IPPublicDetector":
            continue  # an IP address is personal data, not a credential (the personal-data guardrail has it)
        kind = re.sub(r"[^A-Z0-9]+", "_", secret_type.upper()).strip("_")
        denylist: Any = cls().denylist
        out.append((kind, tuple(denylist)))
    return tuple(out)


def plugins_available() -> bool:
    try:
        _plugins()
    except ImportError:
        return False
    return True


def _plugin_findings(text: str) -> list[Finding]:
    out = []
    for kind, patterns in _plugins():
        for pattern in patterns:
            for m in pattern.finditer(text):
                # the secret is the pattern's first non-empty group, as detect-secrets reports it
                group = next((i for i in range(1, (pattern.groups or 0) + 1) if m.group(i)), 0)
                start, end = m.span(group)
                if end > start:
                    out.append(Finding(kind, start, end))
    return out


class Secrets(TextScanner):
    """``guardrail: hide-secrets`` / ``secrets``: credentials masked (default) or refused (``action: block``).

    ``detector``: ``auto`` (ours, plus detect-secrets' plugins when installed), ``builtin`` or
    ``detect-secrets`` (required: the gateway refuses to start without it).
    """

    kind = "secrets"

    def __init__(
        self,
        name: str,
        *,
        modes: frozenset[str],
        default_on: bool = False,
        action: Action = "mask",
        detector: str = "auto",
    ) -> None:
        super().__init__(name, modes=modes, default_on=default_on)
        self.action: Action = action
        if detector == "detect-secrets":
            _plugins()  # ImportError names the missing extra at startup, not on a request
            self.plugins = True
        elif detector == "auto":
            self.plugins = plugins_available()
        elif detector == "builtin":
            self.plugins = False
        else:
            raise ValueError(f"detector: expected auto, builtin or detect-secrets, got {detector!r}")

    def scan(self, text: str, phase: Phase) -> list[Finding]:
        found = detect_secrets_in(text, plugins=self.plugins)
        if self.action != "mask":
            found = [Finding(f.kind, f.start, f.end, self.action) for f in found]
        return found


def settings(params: dict[str, Any]) -> dict[str, Any]:
    return {"detector": str(params.get("detector", "auto"))}
