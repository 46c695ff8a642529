"""What every guardrail is and returns: one async call over a list of texts.

A guardrail reads the texts of a prompt (``phase="input"``) or of an answer (``phase="output"``) and
returns an :class:`Outcome`: the texts rewritten (masked, sanitized) or ``None``, what it found by
kind, and whether it refuses. Outcomes carry kinds and counts, never the values found, so a decision
can be logged, metered and written to a spend record without leaking what it caught.

    >>> from llmswitch.guardrails.pii import PersonalData
    >>> import asyncio
    >>> g = PersonalData("pii", modes=frozenset({"pre_call"}))
    >>> asyncio.run(g.check(["mail me at ann@example.com"], Context(phase="input"))).texts
    ['mail me at <EMAIL_ADDRESS_1>']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from llmswitch.errors import BadRequestError

if TYPE_CHECKING:
    from llmswitch import ir

Mode = Literal["pre_call", "during_call", "post_call", "logging_only"]
MODES: tuple[str, ...] = get_args(Mode)
Phase = Literal["input", "output"]
Action = Literal["block", "mask", "flag"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One span of a text a detector matched: its kind (``EMAIL_ADDRESS``, ``AWS_ACCESS_KEY``...) and action."""

    kind: str
    start: int
    end: int
    action: Action = "mask"


@dataclass(slots=True)
class Outcome:
    """What one guardrail did to one list of texts."""

    texts: list[str] | None = None
    """The texts rewritten, in order; ``None`` when nothing changed."""
    found: dict[str, int] = field(default_factory=dict)
    """Kinds found and how often (never the values)."""
    blocked: bool = False
    reason: str = ""
    """Why it refused, safe to show the caller (kinds, never values)."""


PASSED = Outcome()


@dataclass(slots=True)
class Context:
    """What a check may need besides the texts: the phase, the request, and the per-request vault."""

    phase: Phase
    request: ir.Request | None = None
    vault: Vault | None = None
    """Masked values of this request, for ``output_parse_pii`` (see :class:`Vault`)."""
    metadata: Mapping[str, Any] | None = None


class Vault:
    """The values a request's masking replaced, by token, so the answer can get them back (LiteLLM's
    ``output_parse_pii``). One per request: a caller only ever gets back its own values."""

    __slots__ = ("_by_value", "_counts", "by_token")

    def __init__(self) -> None:
        self.by_token: dict[str, str] = {}
        self._by_value: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def token_for(self, kind: str, value: str) -> str:
        """``<KIND_n>``: the same value gets the same token within the request."""
        token = self._by_value.get((kind, value))
        if token is None:
            n = self._counts.get(kind, 0) + 1
            self._counts[kind] = n
            token = f"<{kind}_{n}>"
            self._by_value[(kind, value)] = token
            self.by_token[token] = value
        return token

    def restore(self, text: str) -> str:
        if not self.by_token or "<" not in text:
            return text
        return _TOKEN.sub(lambda m: self.by_token.get(m.group(0), m.group(0)), text)


_TOKEN = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")


class Guardrail:
    """The one interface: ``await guardrail.check(texts, context) -> Outcome``.

    ``name`` is the config's ``guardrail_name``; ``modes`` when it runs; ``default_on`` whether it runs
    on every request or only on those that name it (a key's, a team's, or the request's ``guardrails``).
    Built-ins and third-party guardrails (``guardrail: "my_pkg.module:Factory"``) use the same interface.
    """

    kind = "guardrail"
    synchronous = True
    """Whether :meth:`check_now` does the work (no I/O): streams then check each piece as it passes."""
    whole_answer = False
    """Whether it must see the whole answer (a JSON schema): a stream is then checked once, at its end."""

    def __init__(self, name: str, *, modes: frozenset[str], default_on: bool = False) -> None:
        self.name = name
        self.modes = modes
        self.default_on = default_on

    async def check(self, texts: Sequence[str], context: Context) -> Outcome:
        return self.check_now(texts, context)

    def check_now(self, texts: Sequence[str], context: Context) -> Outcome:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, modes={sorted(self.modes)})"


class TextScanner(Guardrail):
    """A guardrail made of a synchronous detector: spans found are masked or block the request.

    Subclasses implement :meth:`scan`; masking replaces each span with ``<KIND_n>`` (or ``<KIND>``
    when the request keeps no vault), longest span first where two overlap.
    """

    def scan(self, text: str, phase: Phase) -> list[Finding]:
        raise NotImplementedError

    def check_now(self, texts: Sequence[str], context: Context) -> Outcome:
        found: dict[str, int] = {}
        out: list[str] | None = None
        blocked: list[str] = []
        for i, text in enumerate(texts):
            spans = self.scan(text, context.phase)
            if not spans:
                continue
            for f in spans:
                found[f.kind] = found.get(f.kind, 0) + 1
                if f.action == "block" and f.kind not in blocked:
                    blocked.append(f.kind)
            masked = mask_spans(text, [f for f in spans if f.action == "mask"], context.vault)
            if masked != text:
                if out is None:
                    out = list(texts)
                out[i] = masked
        if blocked:
            return Outcome(found=found, blocked=True, reason="found " + ", ".join(blocked))
        if not found:
            return PASSED
        return Outcome(texts=out, found=found)


def mask_spans(text: str, spans: Sequence[Finding], vault: Vault | None) -> str:
    """``text`` with each span replaced by its token; overlapping spans merge into the first, longest one."""
    if not spans:
        return text
    ordered = sorted(spans, key=lambda f: (f.start, -(f.end - f.start)))
    parts: list[str] = []
    pos = 0
    for f in ordered:
        if f.start < pos:
            continue
        parts.append(text[pos : f.start])
        value = text[f.start : f.end]
        parts.append(vault.token_for(f.kind, value) if vault is not None else f"<{f.kind}>")
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


class GuardrailBlocked(BadRequestError):
    """A guardrail refused the request or its answer: a 400 in the caller's dialect naming the guardrail
    and the kinds it found (``guardrail 'pii' blocked the request: found EMAIL_ADDRESS``), never a value."""

    def __init__(self, guardrail: str, reason: str, *, phase: Phase) -> None:
        what = "request" if phase == "input" else "response"
        super().__init__(
            f"guardrail {guardrail!r} blocked the {what}: {reason}",
            status_code=400,
            provider="llmswitch",
            error_type="invalid_request_error",
            code="guardrail_blocked",
            param="guardrails",
        )
        self.guardrail = guardrail
