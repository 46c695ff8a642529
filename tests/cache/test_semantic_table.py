"""The in-process vector table: per-scope search, oldest-first eviction, expiry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmswitch.cache.semantic.table import VectorTable


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_search_returns_scope_entries_above_threshold_most_similar_first() -> None:
    table = VectorTable(10)
    table.add("s", "q1", "k1", unit(1, 0, 0), math.inf)
    table.add("s", "q2", "k2", unit(1, 1, 0), math.inf)
    table.add("s", "q3", "k3", unit(0, 0, 1), math.inf)
    table.add("other", "q4", "k4", unit(1, 0, 0), math.inf)
    found = table.search("s", unit(1, 0.1, 0), threshold=0.5, limit=5, now=0)
    assert [c.entry_key for c in found] == ["k1", "k2"]
    assert found[0].similarity > found[1].similarity
    assert [c.entry_key for c in table.search("s", unit(1, 0.1, 0), 0.5, limit=1, now=0)] == ["k1"]
    assert table.search("nobody", unit(1, 0, 0), 0.0, 5, 0) == []


def test_the_oldest_entry_goes_first_when_full_and_rows_stay_consistent() -> None:
    table = VectorTable(3)
    for i in range(5):
        table.add("s", f"q{i}", f"k{i}", unit(1, i, 0), math.inf)
    assert len(table) == 3
    keys = {c.entry_key for c in table.search("s", unit(1, 0, 0), -1.0, 10, 0)}
    assert keys == {"k2", "k3", "k4"}
    # every remaining row still maps to its own query and vector
    for c in table.search("s", unit(1, 3, 0), 0.9999, 10, 0):
        assert (c.query, c.entry_key) == ("q3", "k3")


def test_expired_entries_are_neither_found_nor_kept() -> None:
    table = VectorTable(10)
    table.add("s", "old", "k-old", unit(1, 0), expires_at=100)
    table.add("s", "new", "k-new", unit(1, 0.01), expires_at=200)
    assert {c.entry_key for c in table.search("s", unit(1, 0), 0.9, 10, now=150)} == {"k-new"}
    table.expire(150)
    assert len(table) == 1
    table.expire(200)
    assert len(table) == 0
    assert table.rows("s") == 0


def test_adding_a_query_again_replaces_its_entry() -> None:
    table = VectorTable(10)
    table.add("s", "q", "k1", unit(1, 0), math.inf)
    table.add("s", "q", "k2", unit(1, 0), math.inf)
    assert len(table) == 1
    assert [c.entry_key for c in table.search("s", unit(1, 0), 0.9, 10, 0)] == ["k2"]


def test_vectors_of_another_dimension_replace_the_scope() -> None:
    table = VectorTable(10)
    table.add("s", "a", "k1", unit(1, 0), math.inf)
    table.add("s", "b", "k2", unit(1, 0, 0), math.inf)
    assert len(table) == 1
    assert table.search("s", unit(1, 0), 0.0, 10, 0) == []
    assert [c.entry_key for c in table.search("s", unit(1, 0, 0), 0.0, 10, 0)] == ["k2"]


def test_many_adds_and_removals_keep_search_exact() -> None:
    rng = np.random.default_rng(7)
    table = VectorTable(500)
    vectors = {}
    for i in range(2000):
        v = rng.standard_normal(16).astype(np.float32)
        v /= np.linalg.norm(v)
        vectors[f"q{i}"] = v
        table.add(f"s{i % 3}", f"q{i}", f"k{i}", v, math.inf)
    assert len(table) == 500
    for i in range(1500, 2000, 37):
        (best,) = table.search(f"s{i % 3}", vectors[f"q{i}"], 0.999, 1, 0)
        assert best.entry_key == f"k{i}"


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError):
        VectorTable(0)


@pytest.mark.parametrize("threshold", [0.8, 0.9, 0.97])
def test_the_prefilter_of_large_scopes_finds_what_an_exact_scan_finds(threshold: float) -> None:
    rng = np.random.default_rng(11)
    dim, rows = 384, 6000
    base = rng.standard_normal((rows, dim)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    table = VectorTable(rows)
    for i, v in enumerate(base):
        table.add("s", f"q{i}", f"k{i}", v, math.inf)
    for i in range(0, rows, 250):
        # queries near stored rows, at cosines spread around the threshold
        noise = rng.standard_normal(dim).astype(np.float32)
        noise -= (noise @ base[i]) * base[i]
        noise /= np.linalg.norm(noise)
        angle = rng.uniform(0.0, 0.7)
        query = (np.cos(angle) * base[i] + np.sin(angle) * noise).astype(np.float32)
        exact = base @ query
        expected = {f"k{j}" for j in np.flatnonzero(exact >= threshold)}
        found = {c.entry_key for c in table.search("s", query, threshold, limit=50, now=0)}
        assert found == expected


def test_word_bags_are_counted_per_scope_through_replacement_eviction_and_expiry() -> None:
    table = VectorTable(2, bag_of=lambda query: " ".join(sorted(query.split())))
    table.add("s", "paris to nyc", "k1", unit(1, 0), expires_at=100)
    table.add("s", "nyc to paris", "k2", unit(1, 0.1), expires_at=200)
    assert table.has_bag("s", "nyc paris to")
    assert not table.has_bag("other", "nyc paris to")
    table.add("s", "paris to nyc", "k3", unit(1, 0), expires_at=300)  # replaces k1
    table.expire(250)  # k2 goes; k3 keeps the bag alive
    assert table.has_bag("s", "nyc paris to")
    table.add("s", "rome", "k4", unit(0, 1), expires_at=400)
    table.add("s", "oslo", "k5", unit(0, 1), expires_at=500)  # evicts k3, the oldest
    assert not table.has_bag("s", "nyc paris to")
    assert table.has_bag("s", "rome") and table.has_bag("s", "oslo")
