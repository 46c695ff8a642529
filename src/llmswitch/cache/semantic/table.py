"""The in-process vector table: unit vectors per scope in numpy matrices, bounded, with expiry.

Every backend searches one of these: the memory backend fills it directly, the Redis backend from
the shared log every process follows (``redis_log.py``). Entries are evicted oldest first, both when
the table is full and when they expire; with one TTL for the whole cache, insertion order is expiry
order, so both evictions take from the front of one ordered dict.

Search. A full matrix-vector product reads every vector: 100k rows of 384 floats are 150 MB, about
20-40 ms on this machine. So each row also keeps a 256-bit SimHash (signs of a fixed random
projection; two unit vectors at angle θ differ in each bit with probability θ/π). A search counts
differing bits over 32 bytes a row (~0.5 ms for 100k rows), keeps the rows that could be above the
threshold (their expected distance plus five standard deviations), and computes the exact cosine
for those alone. Small scopes skip the prefilter. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = ["Candidate", "VectorTable"]

Vector = npt.NDArray[np.float32]

_BITS = 256
_WORDS = _BITS // 64
# below this many rows the exact product is as fast as the prefilter
_EXACT_ROWS = 2048
# the prefilter never hands more rows than this to the exact step
_MAX_PREFILTERED = 512


@lru_cache(maxsize=8)
def _projection(dim: int) -> Vector:
    # fixed seed: every process derives the same codes (not required, but keeps runs comparable)
    matrix: Vector = np.random.default_rng(0x5E3A).standard_normal((dim, _BITS)).astype(np.float32)
    return matrix


def _code(vector: Vector) -> npt.NDArray[np.uint64]:
    bits = np.packbits((vector @ _projection(len(vector))) > 0)
    code: npt.NDArray[np.uint64] = bits.view(np.uint64)
    return code


@lru_cache(maxsize=64)
def _max_distance(threshold: float) -> int:
    """Differing bits a row at cosine >= threshold stays under, but for odds below 1e-6."""
    p = math.acos(max(-1.0, min(1.0, threshold))) / math.pi
    return math.ceil(_BITS * p + 5 * math.sqrt(_BITS * p * (1 - p)))


@dataclass(frozen=True, slots=True)
class Candidate:
    similarity: float
    query: str
    entry_key: str


@dataclass(slots=True)
class _Scope:
    dim: int
    vectors: Vector
    codes: npt.NDArray[np.uint64]  # _WORDS x capacity: one contiguous array per 64 bits
    ids: list[int] = field(default_factory=list)  # row -> entry id
    count: int = 0

    @classmethod
    def empty(cls, dim: int) -> _Scope:
        return cls(dim, np.zeros((16, dim), dtype=np.float32), np.zeros((_WORDS, 16), dtype=np.uint64))

    def _resize(self, capacity: int) -> None:
        vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        vectors[: self.count] = self.vectors[: self.count]
        codes = np.zeros((_WORDS, capacity), dtype=np.uint64)
        codes[:, : self.count] = self.codes[:, : self.count]
        self.vectors, self.codes = vectors, codes

    def append(self, entry_id: int, vector: Vector) -> int:
        if self.count == len(self.vectors):
            self._resize(2 * self.count)
        row = self.count
        self.vectors[row] = vector
        self.codes[:, row] = _code(vector)
        self.ids.append(entry_id)
        self.count += 1
        return row

    def remove(self, row: int) -> int | None:
        """Drop ``row`` by moving the last row into it; the id of the moved entry, if any."""
        last = self.count - 1
        moved: int | None = None
        if row != last:
            self.vectors[row] = self.vectors[last]
            self.codes[:, row] = self.codes[:, last]
            self.ids[row] = self.ids[last]
            moved = self.ids[row]
        self.ids.pop()
        self.count -= 1
        if self.count * 4 < len(self.vectors) and len(self.vectors) > 64:
            self._resize(max(16, 2 * self.count))
        return moved

    def candidate_rows(self, vector: Vector, threshold: float) -> npt.NDArray[np.intp]:
        """Rows that may be at or above ``threshold`` (all rows of a small scope)."""
        if self.count <= _EXACT_ROWS:
            return np.arange(self.count)
        query = _code(vector)
        # at most 64 bits differ per word: four words overflow uint8, so count in uint16
        distance = np.bitwise_count(self.codes[0, : self.count] ^ query[0]).astype(np.uint16)
        for word in range(1, _WORDS):
            distance += np.bitwise_count(self.codes[word, : self.count] ^ query[word])
        rows = np.flatnonzero(distance <= _max_distance(threshold))
        if len(rows) > _MAX_PREFILTERED:
            rows = rows[np.argpartition(distance[rows], _MAX_PREFILTERED)[:_MAX_PREFILTERED]]
        return rows


@dataclass(slots=True)
class _Entry:
    scope: str
    query: str
    entry_key: str
    expires_at: float
    row: int
    bag: str


class VectorTable:
    """Unit vectors by scope; at most ``max_entries`` in all, each living until its expiry.

    ``bag_of`` maps a query to a key that every query able to match it shares (the guard's
    ``word_bag``); the table counts them per scope so ``has_bag`` can rule a lookup out at once.
    Thread-safe: the Redis follower adds from its own thread while the event loop searches.
    """

    def __init__(self, max_entries: int, bag_of: Callable[[str], str] = lambda query: "") -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._bag_of = bag_of
        self._bags: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._scopes: dict[str, _Scope] = {}
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._by_query: dict[tuple[str, str], int] = {}
        self._next_id = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def has_bag(self, scope: str, bag: str) -> bool:
        """Whether some entry of ``scope`` has this ``bag_of`` key (expired ones included)."""
        with self._lock:
            return (scope, bag) in self._bags

    def rows(self, scope: str) -> int:
        with self._lock:
            table = self._scopes.get(scope)
            return 0 if table is None else table.count

    def add(self, scope: str, query: str, entry_key: str, vector: Vector, expires_at: float) -> None:
        bag = self._bag_of(query)  # outside the lock: it tokenizes
        with self._lock:
            old = self._by_query.get((scope, query))
            if old is not None:
                self._remove(old)
            table = self._scopes.get(scope)
            if table is not None and table.dim != len(vector):
                # the embedding model changed under a live table: the old vectors cannot be compared
                for entry_id in list(table.ids):
                    self._remove(entry_id)
                table = None
            if table is None:
                table = self._scopes[scope] = _Scope.empty(len(vector))
            entry_id = self._next_id
            self._next_id += 1
            row = table.append(entry_id, vector)
            self._entries[entry_id] = _Entry(scope, query, entry_key, expires_at, row, bag)
            self._by_query[(scope, query)] = entry_id
            self._bags[(scope, bag)] += 1
            while len(self._entries) > self.max_entries:
                self._remove(next(iter(self._entries)))

    def expire(self, now: float) -> None:
        """Drop entries whose time has come (the oldest first; stops at the first live one)."""
        with self._lock:
            while self._entries:
                entry_id, entry = next(iter(self._entries.items()))
                if entry.expires_at > now:
                    return
                self._remove(entry_id)

    def search(self, scope: str, vector: Vector, threshold: float, limit: int, now: float) -> list[Candidate]:
        """Up to ``limit`` live entries of ``scope`` at or above ``threshold``, the most similar first."""
        with self._lock:
            table = self._scopes.get(scope)
            if table is None or table.count == 0 or table.dim != len(vector):
                return []
            rows = table.candidate_rows(vector, threshold)
            sims = table.vectors[rows] @ vector
            keep = sims >= threshold
            rows, sims = rows[keep], sims[keep]
            if len(rows) > limit:
                best = np.argpartition(-sims, limit)[:limit]
                rows, sims = rows[best], sims[best]
            found: list[Candidate] = []
            for row, similarity in zip(rows.tolist(), sims.tolist(), strict=True):
                entry = self._entries[table.ids[row]]
                if entry.expires_at > now:
                    found.append(Candidate(similarity, entry.query, entry.entry_key))
            found.sort(key=lambda c: -c.similarity)
            return found

    def clear(self) -> None:
        with self._lock:
            self._scopes.clear()
            self._entries.clear()
            self._by_query.clear()
            self._bags.clear()

    def _remove(self, entry_id: int) -> None:
        entry = self._entries.pop(entry_id)
        del self._by_query[(entry.scope, entry.query)]
        self._bags[(entry.scope, entry.bag)] -= 1
        if not self._bags[(entry.scope, entry.bag)]:
            del self._bags[(entry.scope, entry.bag)]
        table = self._scopes[entry.scope]
        moved = table.remove(entry.row)
        if moved is not None:
            self._entries[moved].row = entry.row
        if table.count == 0:
            del self._scopes[entry.scope]
