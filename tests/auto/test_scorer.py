"""The scorer and the thresholds: a strong share and a quality target become a score threshold through
the calibration table; the score combines the rules' and the embedding's votes as the model file says;
without the embedder the rules decide alone and say so."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from llmswitch import ir
from llmswitch.router.auto.rules import DEFAULT_BIAS, DEFAULT_WEIGHTS
from llmswitch.router.auto.scorer import MODEL_PATH, Scorer, ScorerModel

QUANTILES = [i / 100 for i in range(101)]  # the score's percentiles: score q at percentile q


def _model(strong_w: np.ndarray | None = None) -> ScorerModel:
    zero = np.zeros(384, dtype=np.float32)
    return ScorerModel(
        embedding_weights={"strong": strong_w if strong_w is not None else zero, "weak": zero},
        heads={
            "hybrid": {
                "strong": {"embedding": 2.0, "bias": 0.1, "signals": {"maths": 0.7}},
                "weak": {"bias": 0.3},
            },
            "rules": {"strong": {"signals": {"maths": 1.0}}, "weak": {"signals": {"maths": -1.0}}},
            "embedding": {"strong": {"embedding": 1.0}, "weak": {"embedding": 1.0}},
        },
        quantiles=dict.fromkeys(("hybrid", "rules", "embedding"), QUANTILES),
        quality={key: [0.85 + 0.15 * i / 100 for i in range(101)] for key in ("hybrid", "rules", "embedding")},
    )


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _req(text: str) -> ir.Request:
    return ir.Request(model="auto", messages=[ir.Message(role="user", content=[ir.TextPart(text=text)])])


@pytest.mark.parametrize("share,threshold", [(0.0, 2.0), (1.0, -1.0), (0.3, 0.7), (0.5, 0.5), (0.255, 0.745)])
def test_a_strong_share_is_the_matching_quantile(share: float, threshold: float) -> None:
    assert _model().threshold_for_share("hybrid", share) == pytest.approx(threshold)


@pytest.mark.parametrize("target,share", [(0.85, 0.0), (0.94, 0.6), (1.0, 1.0), (1.01, 1.0)])
def test_a_quality_target_is_the_smallest_share_reaching_it(target: float, share: float) -> None:
    assert _model().share_for_quality("hybrid", target) == pytest.approx(share)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_the_hybrid_score_is_the_expected_gain_of_the_strong_tier() -> None:
    weights = np.zeros(384, dtype=np.float32)
    weights[0] = 1.5
    vector = np.zeros((1, 384), dtype=np.float32)
    vector[0, 0] = 1.0
    seen: list[list[str]] = []

    def embed(texts: list[str]) -> Any:
        seen.append(texts)
        return vector

    scorer = Scorer(_model(weights), "hybrid", embed=embed)
    req = _req("Solve x^2 = 4 and explain why")
    score = asyncio.run(scorer.score(req))
    assert score.p_strong == pytest.approx(_sigmoid(0.1 + 0.7 + 2.0 * 1.5), rel=1e-6)  # maths fired
    assert score.p_weak == pytest.approx(_sigmoid(0.3), rel=1e-6)
    # default weights and no hand-set rule firing: the score is the expected gain itself
    assert score.value == pytest.approx((1 + score.p_strong - score.p_weak) / 2)
    assert seen == [["Solve x^2 = 4 and explain why"]]
    assert score.kind == "hybrid" and score.embedded and "maths" in score.fired


def test_hand_set_rules_keywords_and_edited_weights_move_the_score() -> None:
    scorer = Scorer(_model(), "hybrid", embed=lambda texts: np.zeros((1, 384), dtype=np.float32))
    req = _req("Solve x^2 = 4")
    base = scorer.score_sync(req).value
    tools = _req("Solve x^2 = 4")
    tools.tools = [ir.Tool(name="calc", parameters={"type": "object"})]
    assert _logit(scorer.score_sync(tools).value) - _logit(base) == pytest.approx(DEFAULT_WEIGHTS["tools"])
    edited = {**DEFAULT_WEIGHTS, "maths": DEFAULT_WEIGHTS["maths"] + 2.0}
    assert _logit(scorer.score_sync(req, edited).value) - _logit(base) == pytest.approx(2.0)
    keyword = scorer.score_sync(req, keywords={"x^2": -1.5}).value
    assert _logit(keyword) - _logit(base) == pytest.approx(-1.5)
    assert _logit(scorer.score_sync(req, bias=DEFAULT_BIAS + 0.5).value) - _logit(base) == pytest.approx(0.5)


def test_without_the_embedder_the_rules_decide_alone() -> None:
    scorer = Scorer(_model(), "hybrid")
    scorer._unavailable = "no onnxruntime"  # as when the semantic extra is missing
    score = scorer.score_sync(_req("Solve x^2 = 4"))
    assert score.kind == "rules" and not score.embedded
    assert score.value == pytest.approx((1 + _sigmoid(1.0) - _sigmoid(-1.0)) / 2)


def test_the_shipped_model_loads_and_orders_its_calibration() -> None:
    model = ScorerModel.load(MODEL_PATH)
    assert {t: w.shape for t, w in model.embedding_weights.items()} == {"strong": (384,), "weak": (384,)}
    for kind in ("hybrid", "rules", "embedding"):
        q = model.quantiles[kind]
        assert len(q) == 101 and q == sorted(q)
        assert model.quality[kind][0] < 1.0 <= model.quality[kind][-1] + 1e-9
        # more to the strong tier never lowers the threshold's share
        assert model.threshold_for_share(kind, 0.2) >= model.threshold_for_share(kind, 0.6)
