"""The readable half of the ``auto`` router's difficulty score: signals anyone can check and re-weigh.

Each rule looks at the prompt (the last user turn, the system text, tools, images, size) and yields a
value (0/1, or a small number such as log-length); its weight says how much it pushes towards the strong
tier, in logits. The weights below are the defaults; a group's ``router.rules`` setting overrides any of
them by name, and ``router.keywords`` adds rules of its own (a word or phrase and its weight):

    >>> from llmswitch import ir
    >>> req = ir.Request(model="auto", messages=[ir.Message(role="user", content=[ir.TextPart(text="Prove it.")])])
    >>> signals = read_signals(req)
    >>> signals["reasoning"], signals["code"]
    (1.0, 0.0)
    >>> sorted(fired(signals, DEFAULT_WEIGHTS))[:2]
    ['length', 'reasoning']

The default weights are set by hand (what we would bet on), not fitted, so that evaluating them on the
public data is not evaluating on training data; ``bench/routing_eval.py --fit-rules`` prints weights
fitted on that data for comparison (docs/auto-routing.md). The learned scorer weighs the rules' vote as
a whole against the embedding's (:mod:`llmswitch.router.auto.scorer`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from llmswitch import ir

__all__ = [
    "DEFAULT_BIAS",
    "DEFAULT_WEIGHTS",
    "HAND_SET",
    "LEARNED",
    "LONG_CONTEXT_TOKENS",
    "RULES",
    "adjustment",
    "fired",
    "read_signals",
    "rules_logit",
]

#: a prompt this many tokens long (four characters each) is "long context"
LONG_CONTEXT_TOKENS = 8000

#: what each rule means, for docs and the ``reason`` header
RULES: dict[str, str] = {
    "length": "log of the prompt's words (0 at ~20 words, 1 more per e-fold)",
    "digits": "how many numbers the prompt holds (log)",
    "maths": "maths words or notation (solve, equation, integral, %, √, LaTeX …)",
    "reasoning": "asks for reasoning (why, explain, prove, step by step, compare, derive …)",
    "code": "code: fenced blocks, or programming keywords and syntax",
    "choices": "a multiple-choice question (lines starting A. B. C. D.)",
    "law": "legal matter (court, statute, plaintiff, contract …)",
    "ethics": "moral judgement (morally wrong, ethical …)",
    "tools": "the request offers tools",
    "images": "the prompt has images or files",
    "long_context": f"the prompt is over {LONG_CONTEXT_TOKENS} tokens",
    "multi_turn": "a conversation of more than one user turn",
}

#: logit weight per rule (positive: more likely to need the strong tier)
DEFAULT_WEIGHTS: dict[str, float] = {
    "length": 0.25,
    "digits": 0.2,
    "maths": 0.5,
    "reasoning": 0.2,
    "code": 0.8,
    "choices": -0.3,
    "law": 0.6,
    "ethics": 0.4,
    "tools": 1.0,
    "images": 1.0,
    "long_context": 1.5,
    "multi_turn": 0.3,
}
DEFAULT_BIAS = -1.2

#: rules the evaluation data has no (or too few, or unlike) examples of: the learned scorer does not weigh
#: them, their weights act on the score directly; the others' learned weights stand in for their defaults
#: and an edited weight moves the score by its difference from the default
HAND_SET = frozenset({"code", "tools", "images", "long_context", "multi_turn"})
#: rules the learned scorer weighs (their values are features of its heads)
LEARNED = tuple(name for name in RULES if name not in HAND_SET)

_MATHS = re.compile(
    r"\b(solve|equation|integral|derivative|calculate|compute|how many|how much|probability|percent|"
    r"sum of|product of|remainder|divisible|polynomial|matrix|prime|ratio|average|total)\b|[=+\u00d7\u00f7\u221a\u2211\u222b^%$]|\\frac|\\sqrt",
    re.IGNORECASE,
)
_REASONING = re.compile(
    r"\b(why|explain|prove|proof|step[- ]by[- ]step|justify|derive|analy[sz]e|compare|evaluate|"
    r"reason|implications?|trade-?offs?|critique|infer)\b",
    re.IGNORECASE,
)
_CODE = re.compile(
    r"```|\bdef \w+\(|\bclass \w+[:(]|#include|\bfunction\s*\w*\(|\bSELECT\b.+\bFROM\b|=>|\bimport \w+|"
    r"\bpublic static\b|\bconsole\.log\b|\breturn\b.*;|\{\s*$",
    re.MULTILINE,
)
_CHOICES = re.compile(r"^\s*\(?[A-D][.)]\s", re.MULTILINE)
_LAW = re.compile(
    r"\b(court|statute|plaintiff|defendant|contract|tort|constitution(al)?|jury|testimony|lawsuit|"
    r"negligence|appeal|evidence|liable|liability)\b",
    re.IGNORECASE,
)
_ETHICS = re.compile(r"\bmorally\b|\bethic(al|s)\b|\bmoral(ity)?\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _texts(req: ir.Request) -> tuple[str, int, int, bool]:
    """The last user turn's text, the prompt's characters, its user turns, and whether it has media."""
    last = ""
    chars = 0
    turns = 0
    media = False
    for m in req.messages:
        if m.role == "user":
            turns += 1
        texts = []
        for p in m.content:
            if isinstance(p, ir.TextPart):
                texts.append(p.text)
                chars += len(p.text)
            elif isinstance(p, ir.ImagePart | ir.FilePart):
                media = True
            elif isinstance(p, ir.ToolResultPart):
                chars += sum(len(c.text) for c in p.content if isinstance(c, ir.TextPart))
        if m.role == "user" and texts:
            last = "\n".join(texts)
    return last, chars, turns, media


def read_signals(req: ir.Request) -> dict[str, float]:
    """Every rule's value for ``req`` (cheap: a few regular expressions over the last user turn)."""
    text, chars, turns, media = _texts(req)
    words = max(len(text.split()), 1)
    numbers = len(_NUMBER.findall(text))
    return {
        "length": math.log(words / 20.0),
        "digits": math.log1p(numbers),
        "maths": 1.0 if _MATHS.search(text) else 0.0,
        "reasoning": 1.0 if _REASONING.search(text) else 0.0,
        "code": 1.0 if _CODE.search(text) else 0.0,
        "choices": 1.0 if len(_CHOICES.findall(text)) >= 3 else 0.0,
        "law": 1.0 if _LAW.search(text) else 0.0,
        "ethics": 1.0 if _ETHICS.search(text) else 0.0,
        "tools": 1.0 if req.tools else 0.0,
        "images": 1.0 if media else 0.0,
        "long_context": 1.0 if chars / 4 > LONG_CONTEXT_TOKENS else 0.0,
        "multi_turn": 1.0 if turns > 1 else 0.0,
    }


def keyword_signals(req: ir.Request, keywords: Mapping[str, float]) -> dict[str, float]:
    """A group's own keyword rules: ``{"keyword:<phrase>": 1.0}`` for each phrase the last user turn holds."""
    if not keywords:
        return {}
    text = _texts(req)[0].lower()
    return {f"keyword:{k}": 1.0 for k in keywords if k.lower() in text}


def rules_logit(signals: Mapping[str, float], weights: Mapping[str, float], bias: float = DEFAULT_BIAS) -> float:
    """The rules' vote in logits: ``bias + sum(weight * value)`` over the rules that have a weight."""
    return bias + sum(weights.get(name, 0.0) * value for name, value in signals.items())


def adjustment(signals: Mapping[str, float], weights: Mapping[str, float], bias: float = DEFAULT_BIAS) -> float:
    """What the rules add to the learned score, in logits: the hand-set rules' (and keywords') votes, and
    for the learned rules only the difference an edited weight (or bias) makes from the default."""
    out = bias - DEFAULT_BIAS
    for name, value in signals.items():
        if not value:
            continue
        w = weights.get(name, 0.0)
        out += value * (w - DEFAULT_WEIGHTS[name] if name in DEFAULT_WEIGHTS and name not in HAND_SET else w)
    return out


def fired(signals: Mapping[str, float], weights: Mapping[str, float]) -> list[str]:
    """The rules that pushed this prompt towards the strong tier, biggest push first (for ``reason``)."""
    pushes = [(weights.get(n, 0.0) * v, n) for n, v in signals.items()]
    return [n for push, n in sorted(pushes, reverse=True) if push > 0]
