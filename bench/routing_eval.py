"""How well the ``auto`` router spends the strong model: accuracy against strong-model share.

On ``../shared/data/routing/public.jsonl`` (GSM8K and MMLU prompts with whether Mixtral-8x7B-Instruct,
the weak model, and GPT-4-1106-preview, the strong one, answered each correctly), every scorer ranks
prompts by difficulty; sending the top share to the strong model gives an accuracy per share. Reported
for each scorer — random, the rules as shipped, rules re-fitted, the embedding alone, and the hybrid the
router uses — on a held-out fifth (split by a hash of the prompt, trained on the rest) and by 5-fold
cross-validation: APGR (the average share of the weak-to-strong accuracy gap recovered, over strong
shares 0..100%), the strong share needed for 95% of the strong model's accuracy, and the money that
saves against sending everything to the strong model, at the prices the RouteLLM paper uses for these
two models (GPT-4 $24.7, Mixtral-8x7B $0.24 per million tokens, equal tokens per prompt assumed).
Then the classifier's latency per prompt (rules + embedding + dot product) on this machine.

    .venv/bin/python bench/routing_eval.py [--data PATH] [--json out.json]
    .venv/bin/python bench/routing_eval.py --write-model   # refit on all rows: src/.../auto/scorer.json
    .venv/bin/python bench/routing_eval.py --fit-rules     # rule weights fitted on all rows, to compare

Needs the ``semantic`` extra. Embeddings are cached in ``--cache`` (keyed by the data's hash). A
benchmark, not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from llmswitch import ir
from llmswitch.router.auto import rules
from llmswitch.router.auto.scorer import MODEL_PATH, Scorer, ScorerModel, embedding_text

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "routing" / "public.jsonl"
PRICE_STRONG = 24.7  # USD per million tokens, GPT-4 (RouteLLM paper)
PRICE_WEAK = 0.24  # USD per million tokens, Mixtral-8x7B (RouteLLM paper)
L2 = 3.0  # ridge strength: the best of 0.3, 1, 3, 10, 30 by 4-fold cross-validation inside the training part
SHARES = np.linspace(0.0, 1.0, 101)
RULE_NAMES = list(rules.RULES)


def load(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def request_of(prompt: str) -> ir.Request:
    return ir.Request(model="auto", messages=[ir.Message(role="user", content=[ir.TextPart(text=prompt)])])


def fold_of(prompt: str, k: int) -> int:
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) % k


def embeddings(rows: list[dict[str, Any]], cache: Path) -> np.ndarray:
    digest = hashlib.sha256("\n".join(r["prompt"] for r in rows).encode()).hexdigest()[:16]
    path = cache.with_name(f"{cache.stem}-{digest}.npy")
    if path.exists():
        return np.load(path)
    from llmswitch.cache.semantic.local_model import LocalEmbedder

    model = LocalEmbedder.load()
    texts = [embedding_text(request_of(r["prompt"])) for r in rows]
    out = np.zeros((len(rows), LocalEmbedder.dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # batches of like lengths: little padding
    for start in range(0, len(order), 16):
        batch = order[start : start + 16]
        out[batch] = model.embed_sync([texts[i] for i in batch])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Ridge logistic regression by Newton's method (the bias is not penalised)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(30):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) + penalty * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w[:-1], float(w[-1])


def curve(score: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> np.ndarray:
    """Accuracy when the top ``share`` of prompts by score goes to the strong model, per share in SHARES."""
    order = np.argsort(-score, kind="stable")
    gain = (strong[order] - weak[order]).astype(float)
    cum = np.concatenate([[0.0], np.cumsum(gain)])
    n = len(score)
    ks = np.rint(SHARES * n).astype(int)
    return (weak.sum() + cum[ks]) / n


def summary(acc: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> dict[str, float]:
    w, s = weak.mean(), strong.mean()
    pgr = (acc - w) / (s - w)
    reach = np.nonzero(acc >= 0.95 * s)[0]
    share95 = float(SHARES[reach[0]]) if len(reach) else 1.0
    cost = share95 * PRICE_STRONG + (1 - share95) * PRICE_WEAK
    return {
        "apgr": float(pgr.mean()),
        "share_for_95pct": share95,
        "saved_vs_strong_at_95pct": 1 - cost / PRICE_STRONG,
        "acc_at_50pct": float(acc[50]),
    }


def random_summary(weak: np.ndarray, strong: np.ndarray) -> dict[str, float]:
    acc = weak.mean() + SHARES * (strong.mean() - weak.mean())
    return summary(acc, weak, strong)


class Features:
    def __init__(self, rows: list[dict[str, Any]], emb: np.ndarray) -> None:
        reqs = [request_of(r["prompt"]) for r in rows]
        sig = [rules.read_signals(q) for q in reqs]
        self.signals = np.array([[s[n] for n in RULE_NAMES] for s in sig])
        self.rules_logit = np.array([rules.rules_logit(s, rules.DEFAULT_WEIGHTS) for s in sig])
        self.emb = emb
        learned = [RULE_NAMES.index(n) for n in rules.LEARNED]
        self.rules_part = self.signals[:, learned]  # the rules the heads weigh
        hand = {n: rules.DEFAULT_WEIGHTS[n] for n in rules.HAND_SET}
        # what the hand-set rules add to the learned score, in logits (rules.adjustment at the defaults)
        self.adjust = np.array([sum(w * s[n] for n, w in hand.items()) for s in sig])
        self.joint = np.hstack([emb, self.rules_part])
        self.weak = np.array([r["weak_correct"] for r in rows], dtype=float)
        self.strong = np.array([r["strong_correct"] for r in rows], dtype=float)


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def gain_heads(x: np.ndarray, f: Features, train: np.ndarray, l2: float = L2) -> dict[str, tuple[np.ndarray, float]]:
    """One logistic head per tier on ``x``: how likely each model answers correctly."""
    return {"strong": fit_logistic(x[train], f.strong[train], l2), "weak": fit_logistic(x[train], f.weak[train], l2)}


def gain_score(
    x: np.ndarray, heads: dict[str, tuple[np.ndarray, float]], adjust: np.ndarray | None = None
) -> np.ndarray:
    """The shipped score: the strong tier's expected gain, then (``adjust``) the hand-set rules' votes."""
    (ws, bs), (ww, bw) = heads["strong"], heads["weak"]
    gain = np.clip((1.0 + _sig(x @ ws + bs) - _sig(x @ ww + bw)) / 2.0, 1e-9, 1 - 1e-9)
    if adjust is None:
        return gain
    return _sig(np.log(gain / (1 - gain)) + adjust)


def scores(f: Features, train: np.ndarray, test: np.ndarray) -> dict[str, np.ndarray]:
    """Each scorer's scores on ``test``, trained on ``train`` only."""
    out: dict[str, np.ndarray] = {"rules as shipped": f.rules_logit[test]}
    adj = f.adjust[test]
    out["rules, learned"] = gain_score(f.rules_part[test], gain_heads(f.rules_part, f, train, l2=1.0), adj)
    out["embedding"] = gain_score(f.emb[test], gain_heads(f.emb, f, train))
    out["hybrid (shipped)"] = gain_score(f.joint[test], gain_heads(f.joint, f, train), adj)
    # the same features, trained only on "the weak model got it wrong": what gain heads add
    w, b = fit_logistic(f.joint[train], 1.0 - f.weak[train])
    out["hybrid, weak-wrong"] = f.joint[test] @ w + b
    return out


def evaluate(f: Features, rows: list[dict[str, Any]], k: int = 5) -> dict[str, Any]:
    folds = np.array([fold_of(r["prompt"], k) for r in rows])
    report: dict[str, Any] = {}
    test = folds == 0
    held: dict[str, Any] = {
        "rows": int(test.sum()),
        "weak_acc": f.weak[test].mean(),
        "strong_acc": f.strong[test].mean(),
    }
    held["random"] = random_summary(f.weak[test], f.strong[test])
    for name, s in scores(f, ~test, test).items():
        held[name] = summary(curve(s, f.weak[test], f.strong[test]), f.weak[test], f.strong[test])
    report["held_out"] = held
    per: dict[str, list[dict[str, float]]] = {}
    for i in range(k):
        te = folds == i
        per.setdefault("random", []).append(random_summary(f.weak[te], f.strong[te]))
        for name, s in scores(f, ~te, te).items():
            per.setdefault(name, []).append(summary(curve(s, f.weak[te], f.strong[te]), f.weak[te], f.strong[te]))
    report["cv"] = {
        name: {m: (statistics.mean(x[m] for x in runs), statistics.stdev(x[m] for x in runs)) for m in runs[0]}
        for name, runs in per.items()
    }
    report["_folds"] = folds
    return report


def _kind_features(f: Features, kind: str) -> np.ndarray:
    if kind == "hybrid":
        return f.joint
    if kind == "embedding":
        return f.emb
    return f.rules_part


def _head(w: np.ndarray, b: float, embedding: bool) -> dict[str, Any]:
    """A head as scorer.json holds it: each learned rule's weight, the embedding flag and the bias."""
    part = w[-len(rules.LEARNED) :]
    return {
        "signals": {n: round(float(x), 6) for n, x in zip(rules.LEARNED, part, strict=True)},
        "embedding": 1.0 if embedding else 0.0,
        "bias": b,
    }


def write_model(f: Features, rows: list[dict[str, Any]], folds: np.ndarray, path: Path) -> None:
    """Fit each kind's heads on every row; calibrate thresholds and quality from out-of-fold scores.

    The shipped embedding weights are the hybrid's; the ``embedding`` kind reuses them with the rules'
    mean values folded into the bias (one weight vector per tier ships, not two)."""
    k = int(folds.max()) + 1
    every = np.ones(len(rows), dtype=bool)
    heads = gain_heads(f.joint, f, every)
    rules_heads = gain_heads(f.rules_part, f, every, l2=1.0)
    mean_rules = f.rules_part.mean(axis=0)
    kinds: dict[str, dict[str, dict[str, Any]]] = {"hybrid": {}, "embedding": {}, "rules": {}}
    for tier in ("strong", "weak"):
        w, b = heads[tier]
        kinds["hybrid"][tier] = _head(w, b, True)
        folded = b + float(w[-len(mean_rules) :] @ mean_rules)
        kinds["embedding"][tier] = {"embedding": 1.0, "bias": folded}
        kinds["rules"][tier] = _head(*rules_heads[tier], False)
    quantiles: dict[str, list[float]] = {}
    quality: dict[str, list[float]] = {}
    for kind in kinds:
        oof = np.zeros(len(rows))
        for i in range(k):
            te = folds == i
            if kind == "embedding":  # as shipped: the hybrid's weights, the rules' mean values in the bias
                fold_heads = gain_heads(f.joint, f, ~te)
                means = np.tile(f.rules_part[~te].mean(axis=0), (int(te.sum()), 1))
                oof[te] = gain_score(np.hstack([f.emb[te], means]), fold_heads, f.adjust[te])
            else:
                x = _kind_features(f, kind)
                fold_heads = gain_heads(x, f, ~te, l2=L2 if kind == "hybrid" else 1.0)
                oof[te] = gain_score(x[te], fold_heads, f.adjust[te])
        quantiles[kind] = [round(float(q), 6) for q in np.quantile(oof, SHARES)]
        acc = curve(oof, f.weak, f.strong)
        quality[kind] = [round(float(a / f.strong.mean()), 5) for a in acc]
    model = {
        "about": "bench/routing_eval.py --write-model on ../shared/data/routing/public.jsonl; see docs/auto-routing.md",
        "embedder": "all-MiniLM-L6-v2-onnx-int8",
        "embedding": {
            tier: [round(float(x), 6) for x in heads[tier][0][: f.emb.shape[1]]] for tier in ("strong", "weak")
        },
        "heads": kinds,
        "quantiles": quantiles,
        "quality": quality,
    }
    path.write_text(json.dumps(model, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def latency(rows: list[dict[str, Any]], n: int = 300) -> dict[str, dict[str, float]]:
    """Per-prompt time of the shipped scorer (rules, embedding, both heads), wall clock and CPU, on the
    first ``n`` prompts; and of the rules-only scorer."""
    out: dict[str, dict[str, float]] = {}
    for kind in ("hybrid", "rules"):
        scorer = Scorer(ScorerModel.load(), kind)  # type: ignore[arg-type]
        scorer.warm()
        wall, cpu = [], []
        for r in rows[:n]:
            req = request_of(r["prompt"])
            t, c = time.perf_counter(), time.process_time()
            scorer.score_sync(req)
            wall.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        wall.sort()
        cpu.sort()
        out[kind] = {"p50_ms": wall[n // 2], "p95_ms": wall[int(n * 0.95)], "cpu_p50_ms": cpu[n // 2], "n": n}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/llmswitch-routing-emb.npy"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--write-model", action="store_true")
    ap.add_argument("--fit-rules", action="store_true")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--latency-only", action="store_true")
    args = ap.parse_args()
    rows = load(args.data)
    if args.latency_only:
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cpus")
        for kind, lat in latency(rows).items():
            print(kind, json.dumps(lat))
        return 0
    f = Features(rows, embeddings(rows, args.cache))
    if args.fit_rules:  # the rules' weights fitted on every row (one "weak fails" head), to compare
        w, b = fit_logistic(f.signals, 1.0 - f.weak, l2=1.0)
        print(json.dumps({"bias": round(b, 2), **{n: round(float(x), 2) for n, x in zip(RULE_NAMES, w, strict=True)}}))
        return 0
    report = evaluate(f, rows)
    folds = report.pop("_folds")
    if args.write_model:
        write_model(f, rows, folds, MODEL_PATH)
    if not args.no_latency and MODEL_PATH.exists():
        report["latency"] = latency(rows)
    held = report["held_out"]
    print(f"weak {f.weak.mean():.3f}  strong {f.strong.mean():.3f}  rows {len(rows)}")
    print(f"\nheld-out fifth ({held['rows']} prompts; weak {held['weak_acc']:.3f}, strong {held['strong_acc']:.3f})")
    print(f"{'scorer':22} {'APGR':>6} {'share@95%':>10} {'saved@95%':>10} {'acc@50%':>8}")
    for name, m in held.items():
        if isinstance(m, dict):
            print(
                f"{name:22} {m['apgr']:6.3f} {m['share_for_95pct']:10.2f} "
                f"{m['saved_vs_strong_at_95pct']:10.1%} {m['acc_at_50pct']:8.3f}"
            )
    print("\n5-fold cross-validation (mean ± sd)")
    for name, m in report["cv"].items():
        a, s95 = m["apgr"], m["share_for_95pct"]
        print(f"{name:22} APGR {a[0]:.3f} ± {a[1]:.3f}   share@95% {s95[0]:.2f} ± {s95[1]:.2f}")
    for kind, lat in report.get("latency", {}).items():
        print(
            f"classifier latency ({kind}): p50 {lat['p50_ms']:.2f} ms, p95 {lat['p95_ms']:.2f} ms, "
            f"CPU p50 {lat['cpu_p50_ms']:.2f} ms ({lat['n']} prompts)"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
