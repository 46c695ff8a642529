"""Topics and words: banned keywords and regexes (LiteLLM's ``banned_keywords`` and content filter),
topic deny lists, and an allow list a prompt must stay within.

    >>> g = Words("words", modes=frozenset({"pre_call"}), blocked=[("project falcon", "block")])
    >>> [f.kind for f in g.scan("Tell me about Project Falcon", "input")]
    ['BLOCKED_WORD']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from llmswitch.guardrails.base import Action, Context, Finding, Outcome, Phase, TextScanner
from llmswitch.guardrails.pii import DETECTORS, parse_action


def _word_pattern(words: Sequence[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = sorted({re.escape(w.strip()) for w in words if w.strip()}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


class Words(TextScanner):
    """Denied words, regexes and topics; ``allowed_topics`` refuses a prompt that touches none of them."""

    kind = "words"

    def __init__(
        self,
        name: str,
        *,
        modes: frozenset[str],
        default_on: bool = False,
        blocked: Sequence[tuple[str, Action]] = (),
        patterns: Sequence[tuple[str, str, Action]] = (),
        prebuilt: Sequence[tuple[str, Action]] = (),
        denied_topics: dict[str, Sequence[str]] | None = None,
        allowed_topics: Sequence[str] = (),
    ) -> None:
        super().__init__(name, modes=modes, default_on=default_on)
        by_action: dict[Action, list[str]] = {}
        for word, action in blocked:
            by_action.setdefault(action, []).append(word)
        self.words = [(p, a) for a, ws in by_action.items() if (p := _word_pattern(ws)) is not None]
        self.patterns = [(kind, re.compile(rx), action) for kind, rx, action in patterns]
        self.prebuilt = list(prebuilt)
        self.topics = [(t.upper(), p) for t, ws in (denied_topics or {}).items() if (p := _word_pattern(ws))]
        self.allowed = _word_pattern(allowed_topics)

    def scan(self, text: str, phase: Phase) -> list[Finding]:
        out: list[Finding] = []
        for pattern, action in self.words:
            out += [Finding("BLOCKED_WORD", *m.span(), action) for m in pattern.finditer(text)]
        for kind, pattern, action in self.patterns:
            out += [Finding(kind, *m.span(), action) for m in pattern.finditer(text) if m.end() > m.start()]
        for kind, action in self.prebuilt:
            out += [Finding(kind, s, e, action) for s, e in DETECTORS[kind](text)]
        for topic, pattern in self.topics:
            out += [Finding(f"TOPIC_{topic}", *m.span(), "block") for m in pattern.finditer(text)]
        return out

    def check_now(self, texts: Sequence[str], context: Context) -> Outcome:
        outcome = super().check_now(texts, context)
        allowed = self.allowed
        on_topic = allowed is None or context.phase != "input" or not texts or any(allowed.search(t) for t in texts)
        if not on_topic and not outcome.blocked:
            found = dict(outcome.found)
            found["OFF_TOPIC"] = 1
            return Outcome(found=found, blocked=True, reason="the prompt is outside the allowed topics")
        return outcome


# LiteLLM content filter's prebuilt pattern names, mapped to our detectors
PREBUILT = {
    "us_ssn": "US_SSN",
    "email": "EMAIL_ADDRESS",
    "credit_card": "CREDIT_CARD",
    "visa": "CREDIT_CARD",
    "mastercard": "CREDIT_CARD",
    "amex": "CREDIT_CARD",
    "phone": "PHONE_NUMBER",
    "us_phone": "PHONE_NUMBER",
    "iban": "IBAN_CODE",
    "ip_address": "IP_ADDRESS",
    "ipv4": "IP_ADDRESS",
}


def from_params(name: str, modes: frozenset[str], default_on: bool, p: dict[str, Any]) -> Words:
    """LiteLLM's ``banned_keywords_list`` / ``blocked_words`` / ``patterns``, plus topic lists."""
    default = parse_action(p.get("action", "BLOCK"), "action")
    blocked: list[tuple[str, Action]] = []
    for i, item in enumerate(list(p.get("banned_keywords_list") or []) + list(p.get("blocked_words") or [])):
        if isinstance(item, str):
            blocked.append((item, default))
        elif isinstance(item, dict) and isinstance(item.get("keyword"), str):
            blocked.append((item["keyword"], parse_action(item.get("action", default), f"blocked_words[{i}].action")))
        else:
            raise ValueError(f"blocked_words[{i}]: expected a word or {{keyword, action}}")
    patterns: list[tuple[str, str, Action]] = []
    prebuilt: list[tuple[str, Action]] = []
    for i, item in enumerate(p.get("patterns") or []):
        if not isinstance(item, dict):
            raise ValueError(f"patterns[{i}]: expected {{pattern, action}} or {{pattern_type: prebuilt, pattern_name}}")
        action = parse_action(item.get("action", default), f"patterns[{i}].action")
        if item.get("pattern_type") == "prebuilt":
            kind = PREBUILT.get(str(item.get("pattern_name")))
            if kind is None:
                raise ValueError(f"patterns[{i}].pattern_name: expected one of {', '.join(sorted(PREBUILT))}")
            prebuilt.append((kind, action))
            continue
        rx = item.get("pattern")
        if not isinstance(rx, str):
            raise ValueError(f"patterns[{i}].pattern: expected a regular expression")
        try:
            re.compile(rx)
        except re.error as exc:
            raise ValueError(f"patterns[{i}].pattern: not a valid regular expression ({exc})") from exc
        kind = re.sub(r"[^A-Z0-9]+", "_", str(item.get("name") or "PATTERN").upper()).strip("_") or "PATTERN"
        patterns.append((kind, rx, action))
    denied = p.get("denied_topics") or {}
    if isinstance(denied, list):
        denied = {str(w): [str(w)] for w in denied}
    if not isinstance(denied, dict):
        raise ValueError("denied_topics: expected a mapping of topic to words")
    allowed = p.get("allowed_topics") or []
    if not isinstance(allowed, list):
        raise ValueError("allowed_topics: expected a list of words")
    return Words(
        name,
        modes=modes,
        default_on=default_on,
        blocked=blocked,
        patterns=patterns,
        prebuilt=prebuilt,
        denied_topics={str(k): [str(w) for w in (v if isinstance(v, list) else [v])] for k, v in denied.items()},
        allowed_topics=[str(w) for w in allowed],
    )
