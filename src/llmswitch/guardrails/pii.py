"""Personal data found by pattern and checksum, with no dependency: e-mail addresses, phone numbers,
payment cards (Luhn), IBANs (ISO 13616 mod-97), US social security numbers and IP addresses.

Entity names are Presidio's, so LiteLLM's ``pii_entities_config`` reads unchanged:

    >>> [f.kind for f in detect("card 4111 1111 1111 1111, mail ann@example.com")]
    ['CREDIT_CARD', 'EMAIL_ADDRESS']

Names and locations need a language model (Presidio's analyzer with a spaCy model); they are not
detected here (see docs/guardrails.md).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from llmswitch.guardrails.base import Action, Finding, Phase, TextScanner

ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")

# Patterns start with a character class where they can, lookbehinds after it: CPython's regex engine then
# jumps to candidate characters instead of trying a lookbehind at every position (5x faster on prose).
_EMAIL_DOMAIN = re.compile(r"@((?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24})(?![\w-])")
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_CARD = re.compile(r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_SSN = re.compile(r"\d(?<![\d-]\d)\d\d([- ])\d\d\1\d{4}(?![\d-])")
# digits without separators are personal data only when a word before them says what they are
_BARE_DIGITS = re.compile(r"\d(?<!\d\d)\d{8,10}(?!\d)")
_SSN_WORDS = re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\b\D{0,20}\Z")
_PHONE = re.compile(r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]\d{2,6}){1,5}(?![\w/-]|\.\d)")
_PHONE_START = re.compile(r"[+(\d](?<![\w+/.-][+(\d])")
_PHONE_PLUS = re.compile(r"\+(?<![\w+]\+)\d{8,15}(?!\w)")
_PHONE_WORDS = re.compile(r"(?i)\b(?:phone|call|tel|telephone|mobile|cell|text|whatsapp|sms|fax|number)\b\D{0,16}\Z")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_IPV4 = re.compile(r"\d(?<![\d.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\d|\.\d)")
_IPV6 = re.compile(r"[0-9A-Fa-f:](?<![0-9A-Fa-f:].)[0-9A-Fa-f]{0,3}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]*")
# length of a valid IBAN, by country (the registry's most common ones; others need 15-34 characters)
_IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
    "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26, "AE": 23, "SA": 24, "IL": 23, "BR": 29,
}  # fmt: skip


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies.

    >>> luhn_ok("4111111111111111"), luhn_ok("4111111111111112")
    (True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """ISO 13616: the country's length, and the number mod 97 is 1.

    >>> iban_ok("GB82 WEST 1234 5698 7654 32"), iban_ok("GB82 WEST 1234 5698 7654 33")
    (True, False)
    """
    s = iban.replace(" ", "").upper()
    expected = _IBAN_LENGTHS.get(s[:2])
    if (expected is not None and len(s) != expected) or not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _cards(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _CARD.finditer(text):
        digits = m.group().replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits) and len(set(digits)) > 1:
            out.append(m.span())
    return out


def _ibans(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _IBAN.finditer(text):
        value = m.group()
        # the pattern may run on into the next capitalised word ("... 3456 78 BIC"): drop such tails
        while not iban_ok(value) and " " in value and len(value) > 15:
            value = value.rsplit(" ", 1)[0]
        if iban_ok(value):
            out.append((m.start(), m.start() + len(value)))
    return out


def _ssn_ok(digits: str) -> bool:
    """Area, group and serial as the SSA issues them (never 000, 666 or 9xx; never 00; never 0000)."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _ssns(text: str) -> list[tuple[int, int]]:
    spans = [m.span() for m in _SSN.finditer(text) if _ssn_ok(re.sub(r"\D", "", m.group()))]
    for m in _BARE_DIGITS.finditer(text):
        if len(m.group()) == 9 and _ssn_ok(m.group()) and _SSN_WORDS.search(text, max(0, m.start() - 40), m.start()):
            spans.append(m.span())
    return spans


def _emails(text: str) -> list[tuple[int, int]]:
    if "@" not in text:
        return []
    out = []
    for m in _EMAIL_DOMAIN.finditer(text):
        start = at = m.start()
        while start > 0 and at - start < 64 and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        while start < at and not text[start].isalnum():  # a local part starts with a letter or digit
            start += 1
        if start < at:
            out.append((start, m.end()))
    return out


def _ips(text: str) -> list[tuple[int, int]]:
    out = []
    if "." in text:
        for m in _IPV4.finditer(text):
            try:
                ip4 = ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            if not (ip4.is_unspecified or ip4.is_loopback):  # 0.0.0.0 and 127.0.0.1 say nothing of anyone
                out.append(m.span())
    if ":" in text:
        for m in _IPV6.finditer(text):
            value = m.group()
            try:
                ip6 = ipaddress.IPv6Address(value)
            except ValueError:
                continue
            if not (ip6.is_unspecified or ip6.is_loopback):
                out.append(m.span())
    return out


def _is_date(value: str) -> bool:
    """A date (and maybe a time after it), not a number: 2024-03-15, 12.03.2024, 2024-03-15 14."""
    m = _DATE.match(value)
    if m is None:
        return False
    a, b, c = (int(p) for p in re.split(r"[-./]", m.group()))
    if a > 31:  # year first
        return 1 <= b <= 12 and 1 <= c <= 31
    return (1 <= a <= 31 and 1 <= b <= 12) or (1 <= a <= 12 and 1 <= b <= 31)


def _phones(text: str) -> list[tuple[int, int]]:
    out = []
    pos = 0
    while (start := _PHONE_START.search(text, pos)) is not None:
        m = _PHONE.match(text, start.start())
        if m is None:
            pos = start.end()
            continue
        pos = m.end()
        value = m.group()
        digits = sum(c.isdigit() for c in value)
        if not 8 <= digits <= 15 or _is_date(value):
            continue
        # a bare "12 345" is a number in prose; a phone number has a country code, an area code in
        # brackets, or at least three groups
        groups = len(re.split(r"[ .-]+", value.replace("(", "").replace(")", " ").strip()))
        if value.startswith("+") or "(" in value or groups >= 3 or (groups == 2 and digits >= 10):
            if "." in value and not value.startswith("+") and "(" not in value and value.count(".") >= 3:
                continue  # 10.20.30.40: an address or a version, not a number
            out.append(m.span())
    out += [m.span() for m in _PHONE_PLUS.finditer(text)]
    for m in _BARE_DIGITS.finditer(text):
        if len(m.group()) >= 10 and _PHONE_WORDS.search(text, max(0, m.start() - 40), m.start()):
            out.append(m.span())
    return out


DETECTORS: dict[str, Callable[[str], list[tuple[int, int]]]] = {
    "CREDIT_CARD": _cards,
    "IBAN_CODE": _ibans,
    "US_SSN": _ssns,
    "EMAIL_ADDRESS": _emails,
    "IP_ADDRESS": _ips,
    "PHONE_NUMBER": _phones,  # last: digits already claimed by a card, an SSN or an IBAN are not a phone
}


def detect(
    text: str, entities: Collection[str] = ENTITIES, actions: Mapping[str, Action] | None = None
) -> list[Finding]:
    """Every span of personal data in ``text`` of the kinds asked for, in text order, without overlaps."""
    found: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for kind, detector in DETECTORS.items():
        if kind not in entities:
            continue
        action = actions.get(kind, "mask") if actions else "mask"
        for start, end in detector(text):
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            found.append(Finding(kind, start, end, action))
    found.sort(key=lambda f: f.start)
    return found


class PersonalData(TextScanner):
    """``guardrail: presidio`` / ``pii``: personal data masked (``MASK``) or refused (``BLOCK``) by kind.

    ``pii_entities_config: {CREDIT_CARD: BLOCK, EMAIL_ADDRESS: MASK}`` chooses kinds and actions (kinds
    not listed are not looked for); without it every kind is masked. ``secrets`` adds a secrets scanner
    to the same pass; ``output_parse_pii`` puts the masked values back into the answer.
    """

    kind = "personal_data"

    def __init__(
        self,
        name: str,
        *,
        modes: frozenset[str],
        default_on: bool = False,
        entities: Mapping[str, Action] | None = None,
        secrets: TextScanner | None = None,
        output_parse_pii: bool = False,
    ) -> None:
        super().__init__(name, modes=modes, default_on=default_on)
        self.actions: dict[str, Action] = dict(entities) if entities else dict.fromkeys(ENTITIES, "mask")
        self.entities = frozenset(self.actions)
        self.secrets = secrets
        self.output_parse_pii = output_parse_pii

    def scan(self, text: str, phase: Phase) -> list[Finding]:
        found = detect(text, self.entities, self.actions)
        if self.secrets is not None:
            more = self.secrets.scan(text, phase)
            if more:
                found = [f for f in found if not any(f.start < s.end and s.start < f.end for s in more)] + more
        return found


def entity_actions(config: Any, default: Action, where: str) -> dict[str, Action]:
    """LiteLLM's ``pii_entities_config`` (``{KIND: MASK|BLOCK}``) or a list of kinds with ``default``."""
    if config is None:
        return dict.fromkeys(ENTITIES, default)
    if isinstance(config, list):
        config = dict.fromkeys(config, default)
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a mapping of entity to MASK or BLOCK")
    out: dict[str, Action] = {}
    for kind, action in config.items():
        if kind not in ENTITIES:
            raise ValueError(f"{where}: {kind!r} is not detected here (known: {', '.join(ENTITIES)})")
        out[kind] = parse_action(action, f"{where}.{kind}")
    return out


def parse_action(value: Any, where: str) -> Action:
    v = str(value).lower()
    if v in ("mask", "redact", "anonymize", "replace"):
        return "mask"
    if v == "block":
        return "block"
    if v in ("flag", "log", "none", "allow"):
        return "flag"
    raise ValueError(f"{where}: expected MASK or BLOCK, got {value!r}")
