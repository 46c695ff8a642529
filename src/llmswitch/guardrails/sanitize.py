"""Answers cleaned for a web page: HTML through nh3 (the Ammonia sanitizer: scripts, event handlers,
``javascript:`` and other dangerous URLs removed, an allow list of tags and attributes kept), and
Markdown links and images whose target is a dangerous URL disarmed.

Opt-in, as a ``post_call`` guardrail (``guardrail: html_sanitizer``). Text with no markup is left alone
(nh3 would escape every ``<`` and ``&``, which would mangle code in a plain answer); text with markup
is cleaned as HTML, so it is meant for answers a page renders as HTML or Markdown.

    >>> import asyncio
    >>> g = Sanitizer("html", modes=frozenset({"post_call"}))
    >>> asyncio.run(g.check(['<b onclick="x()">hi</b><script>alert(1)</script>'], Context(phase="output"))).texts
    ['<b>hi</b>']
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from llmswitch.guardrails.base import PASSED, Context, Guardrail, Outcome

# markup worth cleaning: a tag, a comment or doctype, or an entity that could hide one
_MARKUP = re.compile(r"<[A-Za-z!/?]|&#|&[A-Za-z]+;|<%")
# Markdown link or image targets and autolinks, whose scheme is checked
_MD_TARGET = re.compile(r"(\]\(\s*<?)([^)\s>]*)|(<)([A-Za-z][A-Za-z0-9+.-]*:[^>\s]*)(>)")
_SAFE_SCHEMES = frozenset({"http", "https", "mailto", "tel", ""})
_SAFE_DATA = re.compile(r"data:image/(?:png|gif|jpe?g|webp);base64,[A-Za-z0-9+/=]+\Z", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")
_TOKEN = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")
_HELD = re.compile(r"llmswitchmask(\d+)x")
_ATTR_URL = re.compile(r'\s(href|src|cite|action|formaction|longdesc)="([^"]*)"')


def url_is_safe(url: str) -> bool:
    """Whether a link target is harmless: relative, http(s), mailto, tel, or an inline raster image.

    >>> url_is_safe("https://example.com"), url_is_safe(" jav&#x09;ascript:alert(1)"), url_is_safe("JaVaScRiPt:x")
    (True, False, False)
    """
    # entities decoded twice, control characters and spaces dropped, and quotes old browsers took as
    # delimiters (`javascript:...`) stripped, as a lenient parser would read it
    cleaned = _CONTROL.sub("", html.unescape(html.unescape(url))).lstrip("`'\"")
    scheme, sep, _ = cleaned.partition(":")
    if not sep or "/" in scheme or "?" in scheme or "#" in scheme:
        return True  # relative: no scheme before the first path character
    if scheme.lower() == "data":
        return bool(_SAFE_DATA.match(cleaned))
    return scheme.lower() in _SAFE_SCHEMES


def _clean_markdown(text: str) -> tuple[str, int]:
    removed = 0

    def fix(m: re.Match[str]) -> str:
        nonlocal removed
        if m.group(2) is not None:
            if url_is_safe(m.group(2)):
                return m.group(0)
            removed += 1
            return m.group(1) + "#"
        if url_is_safe(m.group(4)):
            return m.group(0)
        removed += 1
        return "&lt;removed&gt;"

    if "](" not in text and "<" not in text:
        return text, 0
    return _MD_TARGET.sub(fix, text), removed


class Sanitizer(Guardrail):
    kind = "sanitizer"

    def __init__(
        self,
        name: str,
        *,
        modes: frozenset[str],
        default_on: bool = False,
        allowed_tags: Sequence[str] | None = None,
        allowed_attributes: dict[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(name, modes=modes, default_on=default_on)
        import nh3  # the gateway refuses to start without it (the `guardrails` extra), not a request

        self._nh3: Any = nh3
        self._options: dict[str, Any] = {}
        if allowed_tags is not None:
            self._options["tags"] = set(allowed_tags)
        if allowed_attributes is not None:
            self._options["attributes"] = {t: set(a) for t, a in allowed_attributes.items()}

    def clean(self, text: str) -> tuple[str, int]:
        """``text`` cleaned, and how many things were removed (0: unchanged)."""
        changes = 0
        if _MARKUP.search(text):
            # masking tokens (<EMAIL_ADDRESS_1>) are not tags: kept through the cleaning as they were
            tokens: list[str] = []

            def hold(m: re.Match[str]) -> str:
                tokens.append(m.group(0))
                return f"llmswitchmask{len(tokens) - 1}x"

            cleaned = self._nh3.clean(_TOKEN.sub(hold, text), **self._options)
            # a second look at URLs nh3 kept as relative that a lenient browser might not (`javascript:`)
            cleaned = _ATTR_URL.sub(lambda m: m.group(0) if url_is_safe(html.unescape(m.group(2))) else "", cleaned)
            if tokens:
                cleaned = _HELD.sub(lambda m: tokens[int(m.group(1))], cleaned)
            if cleaned != text:
                changes += 1
                text = cleaned
        text, removed = _clean_markdown(text)
        return text, changes + removed

    def check_now(self, texts: Sequence[str], context: Context) -> Outcome:
        out: list[str] | None = None
        count = 0
        for i, text in enumerate(texts):
            cleaned, changes = self.clean(text)
            if changes:
                count += changes
                if out is None:
                    out = list(texts)
                out[i] = cleaned
        if not count:
            return PASSED
        return Outcome(texts=out, found={"UNSAFE_MARKUP": count})
