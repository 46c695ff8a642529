"""The ``auto`` router's difficulty score: a learned estimate of the strong tier's gain, and the rules.

Two logistic heads estimate how likely each tier is to answer well, from the values of the rules the
evaluation data speaks to (:data:`~llmswitch.router.auto.rules.LEARNED`) and the semantic cache's local
MiniLM embedding of the last user turn (:class:`~llmswitch.cache.semantic.local_model.LocalEmbedder`,
imported, not copied):

    p_tier = sigmoid(v_tier . learned_rules + w_tier . embedding + c_tier)        tier: strong, weak
    gain   = (1 + p_strong - p_weak) / 2
    score  = sigmoid(logit(gain) + adjustment)

so the score is high where the strong tier is expected to gain most over the weak one (a prompt both
would get wrong, or both right, scores in the middle). ``adjustment``
(:func:`~llmswitch.router.auto.rules.adjustment`) is the readable part: the votes of the hand-set rules
(code, tools, images, long context, turns) and keywords, and whatever an edited weight changes. With
the default weights and none of the hand-set rules firing, the score is exactly the evaluated one.

The weights, each kind's heads (``hybrid``, ``rules``: no embedding, ``embedding``: no rules) and the
calibration tables (the score's percentiles, and the quality reached when each share of prompts goes
to the strong tier) are in ``scorer.json`` beside this module, written by
``bench/routing_eval.py --write-model``.

Without the ``semantic`` extra (no ONNX Runtime or model) the scorer falls back to the rules alone and
says so in every decision's ``reason`` (``rules only``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from llmswitch import ir
from llmswitch.router.auto import rules

__all__ = ["MODEL_PATH", "Score", "Scorer", "ScorerKind", "ScorerModel", "embedding_text"]

log = logging.getLogger("llmswitch.router.auto")

MODEL_PATH = Path(__file__).with_name("scorer.json")

ScorerKind = Literal["hybrid", "rules", "embedding"]

# the local embedding model, loaded once per process and shared by every scorer (ONNX Runtime sessions
# are thread-safe; LocalEmbedder keeps one inference at a time)
_SHARED: dict[str, Any] = {}
_SHARED_LOCK = threading.Lock()


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass(frozen=True)
class ScorerModel:
    """What ``scorer.json`` holds (see the module docstring)."""

    embedding_weights: Mapping[str, npt.NDArray[np.float32]]  # tier -> weights over the embedding
    # kind -> tier -> {"signals": {rule: weight}, "embedding": 0|1, "bias": c}
    heads: Mapping[str, Mapping[str, Mapping[str, Any]]]
    quantiles: Mapping[str, list[float]]  # kind -> the score's 0th..100th percentiles on the training prompts
    quality: Mapping[str, list[float]]  # kind -> accuracy / strong accuracy when share i% goes to strong

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> ScorerModel:
        data = json.loads(path.read_text())
        return cls(
            embedding_weights={t: np.asarray(w, dtype=np.float32) for t, w in data["embedding"].items()},
            heads=data["heads"],
            quantiles=data["quantiles"],
            quality=data["quality"],
        )

    def threshold_for_share(self, kind: ScorerKind, share: float) -> float:
        """The score above which about ``share`` of prompts like the training ones go to the strong tier."""
        if share >= 1.0:
            return -1.0  # below every score: all strong
        if share <= 0.0:
            return 2.0  # above every score: all weak
        q = self.quantiles[kind]
        pos = (1.0 - share) * (len(q) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(q) - 1)
        return q[lo] + (q[hi] - q[lo]) * (pos - lo)

    def share_for_quality(self, kind: ScorerKind, target: float) -> float:
        """The smallest strong share whose measured quality (cross-validated) reaches ``target``."""
        curve = self.quality[kind]
        for i, reached in enumerate(curve):
            if reached >= target:
                return i / (len(curve) - 1)
        return 1.0


@dataclass(frozen=True)
class Score:
    value: float  # 0..1, higher: the strong tier is expected to gain more over the weak one
    p_strong: float  # how likely the strong tier answers well
    p_weak: float
    rules_logit: float
    embedded: bool  # the embedding voted (False: rules only)
    fired: tuple[str, ...]  # rules that pushed towards strong, biggest first
    kind: ScorerKind


def embedding_text(req: ir.Request) -> str:
    """What the learned scorer embeds: the last user turn's text (the model reads its first 256 tokens)."""
    for m in reversed(req.messages):
        if m.role == "user":
            text = "\n".join(p.text for p in m.content if isinstance(p, ir.TextPart))
            if text:
                return text
    return ""


class Scorer:
    """Scores requests; the embedder is loaded once, on first use, in a worker thread.

    ``embed`` (texts to unit vectors, blocking) may be injected, e.g. by tests or the benchmark.
    """

    def __init__(self, model: ScorerModel, kind: ScorerKind = "hybrid", embed: Any = None) -> None:
        self.model = model
        self.kind: ScorerKind = kind
        self._embed = embed
        self._unavailable: str | None = None

    def _embedder(self) -> Any:
        if self._embed is not None or self._unavailable is not None:
            return self._embed
        with _SHARED_LOCK:
            if self._embed is None and self._unavailable is None:
                try:
                    if "local" not in _SHARED:  # one model per process, however many routers are built
                        from llmswitch.cache.semantic.local_model import LocalEmbedder

                        _SHARED["local"] = LocalEmbedder.load().embed_sync
                    self._embed = _SHARED["local"]
                except (ImportError, FileNotFoundError) as exc:
                    self._unavailable = str(exc)
                    log.warning("auto router: the local embedding model cannot load, scoring by rules only: %s", exc)
        return self._embed

    def warm(self) -> None:
        """Load the embedder now (blocking) rather than on the first request."""
        if self.kind != "rules":
            self._embedder()

    def embedding_logits(self, text: str) -> dict[str, float] | None:
        """Each tier's embedding vote for ``text`` (``None``: no embedder)."""
        embed = self._embedder()
        if embed is None:
            return None
        vector = embed([text or " "])[0]
        return {tier: float(np.dot(w, vector)) for tier, w in self.model.embedding_weights.items()}

    def score_sync(
        self,
        req: ir.Request,
        weights: Mapping[str, float] = rules.DEFAULT_WEIGHTS,
        bias: float = rules.DEFAULT_BIAS,
        keywords: Mapping[str, float] | None = None,
    ) -> Score:
        """The score of ``req`` (blocking: the embedding takes a few ms of CPU)."""
        signals = rules.read_signals(req)
        if keywords:
            signals.update(rules.keyword_signals(req, keywords))
            weights = {**weights, **{f"keyword:{k}": w for k, w in keywords.items()}}
        r = rules.rules_logit(signals, weights, bias)
        e = self.embedding_logits(embedding_text(req)) if self.kind != "rules" else None
        kind: ScorerKind = self.kind if (e is not None or self.kind == "rules") else "rules"
        p: dict[str, float] = {}
        for tier in ("strong", "weak"):
            h = self.model.heads[kind][tier]
            logit = h.get("bias", 0.0)
            learned: Mapping[str, float] = h.get("signals", {})
            for name, w in learned.items():
                logit += w * signals.get(name, 0.0)
            if e is not None and h.get("embedding", 0.0):
                logit += h["embedding"] * e[tier]
            p[tier] = _sigmoid(logit)
        gain = min(max((1.0 + p["strong"] - p["weak"]) / 2.0, 1e-9), 1.0 - 1e-9)
        value = _sigmoid(math.log(gain / (1.0 - gain)) + rules.adjustment(signals, weights, bias))
        return Score(value, p["strong"], p["weak"], r, e is not None, tuple(rules.fired(signals, weights)), kind)

    async def score(
        self,
        req: ir.Request,
        weights: Mapping[str, float] = rules.DEFAULT_WEIGHTS,
        bias: float = rules.DEFAULT_BIAS,
        keywords: Mapping[str, float] | None = None,
    ) -> Score:
        """:meth:`score_sync` off the event loop when it embeds (ONNX Runtime releases the GIL)."""
        if self.kind == "rules":
            return self.score_sync(req, weights, bias, keywords)
        return await asyncio.to_thread(self.score_sync, req, weights, bias, keywords)
