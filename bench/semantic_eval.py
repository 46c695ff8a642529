"""Precision and recall of the semantic cache on labelled paraphrase pairs (PAWS-style).

Each pair is (cached query, new query): the first is added to an empty scope of a real
``SemanticIndex`` with the local model, the second looked up. A hit on a label-0 pair is a wrong
answer served. Reported for the rows the rules were developed on (the first half), the held-out
half, and all, at the default threshold through the index itself, and, from the same vectors, for
cosine alone and cosine + guard at other thresholds.

    .venv/bin/python bench/semantic_eval.py [--data ../shared/data/paraphrase/paws_wiki_dev_2000.tsv]
                                           [--threshold 0.9] [--json out.json]

Exits 0 when precision at the chosen threshold is >= 0.99 on every part, else 1. Needs the
``semantic`` extra. A benchmark, not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from llmswitch.cache.semantic import DEFAULT_THRESHOLD, SemanticIndex
from llmswitch.cache.semantic.guard import same_meaning
from llmswitch.cache.semantic.local_model import LocalEmbedder

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "paraphrase" / "paws_wiki_dev_2000.tsv"
GOAL_PRECISION = 0.99


def read_pairs(path: Path) -> list[tuple[str, str, int]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(a, b, int(label)) for a, b, label in rows[1:]]


def score(hits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    tp = int((hits & (labels == 1)).sum())
    n_hits = int(hits.sum())
    return {
        "hits": n_hits,
        "wrong_hits": n_hits - tp,
        "precision": tp / n_hits if n_hits else 1.0,
        "recall": tp / int((labels == 1).sum()),
    }


async def through_index(model: LocalEmbedder, pairs: list[tuple[str, str, int]], threshold: float) -> np.ndarray:
    index = SemanticIndex(model.embed, threshold=threshold, ttl=None, max_entries=len(pairs) + 1)
    hits = []
    for n, (cached, query, _label) in enumerate(pairs):
        await index.add(f"pair-{n}", cached, f"key-{n}")
        hits.append(await index.lookup(f"pair-{n}", query) == f"key-{n}")
    await index.aclose()
    return np.array(hits)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    pairs = read_pairs(args.data)
    labels = np.array([label for _, _, label in pairs])
    half = len(pairs) // 2
    parts = {
        f"dev (rows 1-{half})": np.arange(len(pairs)) < half,
        f"held out (rows {half + 1}-{len(pairs)})": np.arange(len(pairs)) >= half,
        "all": np.ones(len(pairs), dtype=bool),
    }
    print(
        f"{args.data.name}: {len(pairs)} pairs, {int(labels.sum())} paraphrases; load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )

    model = LocalEmbedder.load()
    started = time.perf_counter()
    hits = asyncio.run(through_index(model, pairs, args.threshold))
    print(f"through SemanticIndex (threshold {args.threshold}): {time.perf_counter() - started:.1f} s")
    results: dict[str, object] = {"threshold": args.threshold, "index": {}, "sweep": []}
    ok = True
    for name, mask in parts.items():
        s = score(hits[mask], labels[mask])
        results["index"][name] = s  # type: ignore[index]
        ok &= s["precision"] >= GOAL_PRECISION
        print(
            f"  {name:24} hits {s['hits']:4}  wrong {s['wrong_hits']:3}  precision {s['precision']:.3f}  "
            f"recall {s['recall']:.3f}"
        )

    a = np.vstack([model.embed_sync([p[0] for p in pairs[i : i + 32]]) for i in range(0, len(pairs), 32)])
    b = np.vstack([model.embed_sync([p[1] for p in pairs[i : i + 32]]) for i in range(0, len(pairs), 32)])
    cosine = (a * b).sum(axis=1)
    guard = np.array([same_meaning(x, y) for x, y, _ in pairs])
    print("sweep over the same vectors (all pairs):")
    for threshold in (0.8, 0.85, 0.9, 0.95, 0.98):
        alone = score(cosine >= threshold, labels)
        both = score((cosine >= threshold) & guard, labels)
        results["sweep"].append({"threshold": threshold, "cosine": alone, "cosine+guard": both})  # type: ignore[attr-defined]
        print(
            f"  {threshold:.2f}  cosine alone: precision {alone['precision']:.3f} recall {alone['recall']:.3f}"
            f"  |  with guard: hits {both['hits']:3} precision {both['precision']:.3f} recall {both['recall']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(f"goal: precision >= {GOAL_PRECISION:.2f} on every part: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
