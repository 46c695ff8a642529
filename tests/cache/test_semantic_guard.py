"""The rule a semantic hit must pass besides cosine similarity (cache/semantic/guard.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from llmswitch.cache.semantic.guard import same_meaning, word_bag, words

# (cached query, new query): the same question, worded as users reword without changing it
SAME = [
    ("What is the capital of France?", "what's the capital of france"),
    ("What is the capital of France?", "What is the capital of France"),
    ("How do I reverse a list in Python?", "how do i reverse a list in python ?"),
    ("Explain the theory of relativity", "Please explain the theory of relativity."),
    ("flights from Paris to NYC", "flights to NYC from Paris"),
    ("In 1999, the company moved to Boston.", "The company moved to Boston in 1999."),
    ("Summarize the article about climate change", "summarize the articles about climate change"),
    ("Is the café open on Sundays?", "is the cafe open on sundays"),
    ("I don't know how to swim", "I do not know how to swim"),
    ("Why can't I log in?", "why cannot i log in"),
    ("Name three rivers in Africa", "name 3 rivers in africa"),
]

# (cached query, new query): nearly the same words, another question
DIFFERENT = [
    ("flights from Paris to NYC", "flights from NYC to Paris"),
    ("the dog bit the man", "the man bit the dog"),
    ("Convert 15 miles to kilometers", "Convert 51 miles to kilometers"),
    ("Convert 15 miles to kilometers", "Convert 15 kilometers to miles"),
    ("Is it safe to take ibuprofen with alcohol?", "Is it not safe to take ibuprofen with alcohol?"),
    ("Why is Rust faster than Python?", "Why is Python faster than Rust?"),
    ("Who succeeded Henry VIII as king of England?", "Who preceded Henry VIII as king of England?"),
    ("Most of these hotels were built along Oak Street", "Most of these homes were built along Oak Street"),
    ("After the death of John Smith, Ali Khan came to power", "After the death of Ali Khan, John Smith came to power"),
    ("divide 10 by 2", "divide 2 by 10"),
    ("What is 3 minus 7?", "What is 7 minus 3?"),
    ("Translate 'good morning' into French", "Translate 'good morning' into German"),
    ("List the files changed in the last commit", "List the files not changed in the last commit"),
    ("the", "a"),
    ("I don't like cold coffee", "I like cold coffee"),
    ("Name three rivers in Africa", "Name 4 rivers in Africa"),
]


@pytest.mark.parametrize(("cached", "query"), SAME)
def test_rewordings_that_keep_the_question_pass(cached: str, query: str) -> None:
    assert same_meaning(cached, query)
    assert same_meaning(query, cached)


@pytest.mark.parametrize(("cached", "query"), SAME + DIFFERENT)
def test_queries_that_may_match_share_their_word_bag(cached: str, query: str) -> None:
    # the index rules a lookup out by its word bag before embedding it: that must never lose a match
    assert word_bag(cached) == word_bag(query) or not same_meaning(cached, query)


@pytest.mark.parametrize(("cached", "query"), DIFFERENT)
def test_swaps_substitutions_and_negations_do_not_pass(cached: str, query: str) -> None:
    assert not same_meaning(cached, query)
    assert not same_meaning(query, cached)


def test_words_drop_articles_be_do_fillers_and_punctuation_and_fold_plurals() -> None:
    assert words("Please, what ARE the classes of the Files?") == ["what", "class", "of", "file"]
    assert words("What's 2+2?") == ["what", "2", "2"]
    assert words("We won't, they'll, I can't: twelve") == ["we", "will", "not", "they", "will", "i", "can", "not", "12"]


PAWS = Path(__file__).resolve().parents[3] / "shared" / "data" / "paraphrase" / "paws_wiki_dev_2000.tsv"


@pytest.mark.skipif(not PAWS.exists(), reason="../shared/data/paraphrase is not beside the checkout")
def test_adversarial_paraphrase_pairs_rarely_pass() -> None:
    # PAWS pairs share their words; the rule alone (cosine aside) keeps precision >= 0.99 on them
    with PAWS.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    passed = [int(label) for s1, s2, label in rows if same_meaning(s1, s2)]
    assert all(word_bag(s1) == word_bag(s2) for s1, s2, _ in rows if same_meaning(s1, s2))
    positives = sum(int(label) for _, _, label in rows)
    assert len(passed) >= 30
    assert sum(passed) / len(passed) >= 0.99
    assert sum(passed) / positives >= 0.05


def test_long_queries_match_only_in_the_same_order_and_quickly() -> None:
    import time

    words_a = [f"w{i}" for i in range(2000)]
    moved = words_a[1000:] + words_a[:1000]
    started = time.monotonic()
    assert same_meaning(" ".join(words_a), " ".join(words_a).upper())
    assert not same_meaning(" ".join(["from", *words_a]), " ".join(["from", *moved]))
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("module", ["llmswitch.cache.semantic.guard", "llmswitch.cache.semantic.wordpiece"])
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
