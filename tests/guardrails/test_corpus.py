"""The detectors against a corpus of realistic prompts (tests/guardrails/corpus/): personal data and
secrets in several formats each, and clean prompts full of near misses (dates, versions, prices, ids,
hashes, talk *about* passwords and tokens). The figures are reported in docs/guardrails.md; run
``pytest tests/guardrails/test_corpus.py -s`` to print them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmswitch.guardrails.base import Finding
from llmswitch.guardrails.pii import detect
from llmswitch.guardrails.secrets import detect_secrets_in, plugins_available

CORPUS = Path(__file__).with_name("corpus")


def load(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (CORPUS / name).read_text().splitlines() if line.strip()]


def scan(text: str, plugins: bool) -> list[Finding]:
    found = detect(text)
    more = detect_secrets_in(text, plugins=plugins)
    return [f for f in found if not any(f.start < s.end and s.start < f.end for s in more)] + more


def score(plugins: bool) -> dict[str, Any]:
    """Recall by kind (a value counts as caught when a finding covers it whole), and false positives:
    findings in clean prompts, and findings in labelled prompts that cover no labelled value."""
    caught: dict[str, list[int]] = {}
    stray = 0
    for name in ("personal.jsonl", "secrets.jsonl"):
        for item in load(name):
            text = item["text"]
            found = scan(text, plugins)
            spans = []
            for kind, value in item["values"]:
                start = text.index(value)
                spans.append((start, start + len(value)))
                hit = any(f.start <= start and start + len(value) <= f.end for f in found)
                caught.setdefault(kind, [0, 0])
                caught[kind][0] += hit
                caught[kind][1] += 1
            stray += sum(1 for f in found if not any(f.start < e and s < f.end for s, e in spans))
    clean = load("clean.jsonl")
    flagged = [item["text"] for item in clean if scan(item["text"], plugins)]
    hits = sum(c[0] for c in caught.values())
    total = sum(c[1] for c in caught.values())
    return {
        "recall": hits / total,
        "values": total,
        "by_kind": {k: f"{c[0]}/{c[1]}" for k, c in sorted(caught.items())},
        "clean_prompts": len(clean),
        "clean_flagged": flagged,
        "stray_findings": stray,
    }


@pytest.mark.parametrize(
    "plugins",
    [
        False,
        pytest.param(True, marks=pytest.mark.skipif(not plugins_available(), reason="detect-secrets not installed")),
    ],
    ids=["builtin", "with-detect-secrets"],
)
def test_corpus_recall_and_false_positives(plugins: bool) -> None:
    s = score(plugins)
    print(json.dumps(s, indent=2))
    assert s["values"] >= 90
    assert s["recall"] >= 0.97, s["by_kind"]
    assert len(s["clean_flagged"]) <= 1, s["clean_flagged"]
    assert s["stray_findings"] <= 2


def test_the_corpus_is_what_it_says() -> None:
    # every labelled value is in its prompt; clean prompts carry no labels
    for name in ("personal.jsonl", "secrets.jsonl"):
        for item in load(name):
            assert item["values"] and all(v in item["text"] for _, v in item["values"])
    assert all("values" not in item for item in load("clean.jsonl"))


def test_held_out_corpus() -> None:
    """A second corpus written after the detectors and never tuned against: its figures (reported in
    docs/guardrails.md with its misses) are the honest estimate; this only guards against regressions."""
    hits = total = 0
    for item in load("holdout.jsonl"):
        found = scan(item["text"], plugins_available())
        for _, value in item["values"]:
            start = item["text"].index(value)
            total += 1
            hits += any(f.start <= start and start + len(value) <= f.end for f in found)
    clean = load("holdout_clean.jsonl")
    flagged = sum(1 for item in clean if scan(item["text"], plugins_available()))
    print(f"held out: recall {hits}/{total}, clean prompts flagged {flagged}/{len(clean)}")
    assert (total, len(clean)) == (23, 15)
    assert hits >= 19 and flagged <= 1
