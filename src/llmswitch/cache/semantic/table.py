"""The in-process vector table: unit vectors per scope in numpy matrices, bounded, with expiry.

Every backend searches one of these: the memory backend fills it directly, the Redis backend from
the shared log every process follows (``redis_log.py``). Entries are evicted oldest first, both when
the table is full and when they expire; with one TTL for the whole cache, insertion order is expiry
order, so both evictions take from the front of one ordered dict.

Search is one matrix-vector product over the scope's rows (100k rows of 384 floats: about 2-4 ms
on this machine, docs/benchmarks.md).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["Candidate", "VectorTable"]

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Candidate:
    similarity: float
    query: str
    entry_key: str


@dataclass(slots=True)
class _Scope:
    dim: int
    vectors: Vector
    ids: list[int] = field(default_factory=list)  # row -> entry id
    count: int = 0

    def append(self, entry_id: int, vector: Vector) -> int:
        if self.count == len(self.vectors):
            grown = np.zeros((max(16, 2 * self.count), self.dim), dtype=np.float32)
            grown[: self.count] = self.vectors[: self.count]
            self.vectors = grown
        row = self.count
        self.vectors[row] = vector
        self.ids.append(entry_id)
        self.count += 1
        return row

    def remove(self, row: int) -> int | None:
        """Drop ``row`` by moving the last row into it; the id of the moved entry, if any."""
        last = self.count - 1
        moved: int | None = None
        if row != last:
            self.vectors[row] = self.vectors[last]
            self.ids[row] = self.ids[last]
            moved = self.ids[row]
        self.ids.pop()
        self.count -= 1
        if self.count * 4 < len(self.vectors) and len(self.vectors) > 64:
            self.vectors = self.vectors[: max(16, 2 * self.count)].copy()
        return moved


@dataclass(slots=True)
class _Entry:
    scope: str
    query: str
    entry_key: str
    expires_at: float
    row: int


class VectorTable:
    """Unit vectors by scope; at most ``max_entries`` in all, each living ``ttl`` seconds."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._scopes: dict[str, _Scope] = {}
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._by_query: dict[tuple[str, str], int] = {}
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, scope: str, query: str, entry_key: str, vector: Vector, expires_at: float) -> None:
        old = self._by_query.get((scope, query))
        if old is not None:
            self._remove(old)
        table = self._scopes.get(scope)
        if table is None:
            table = self._scopes[scope] = _Scope(len(vector), np.zeros((16, len(vector)), dtype=np.float32))
        elif table.dim != len(vector):
            # the embedding model changed under a live table: the old vectors cannot be compared
            for entry_id in list(table.ids):
                self._remove(entry_id)
            table = self._scopes[scope] = _Scope(len(vector), np.zeros((16, len(vector)), dtype=np.float32))
        entry_id = self._next_id
        self._next_id += 1
        row = table.append(entry_id, vector)
        self._entries[entry_id] = _Entry(scope, query, entry_key, expires_at, row)
        self._by_query[(scope, query)] = entry_id
        while len(self._entries) > self.max_entries:
            self._remove(next(iter(self._entries)))

    def expire(self, now: float) -> None:
        """Drop entries whose time has come (the oldest first; stops at the first live one)."""
        while self._entries:
            entry_id, entry = next(iter(self._entries.items()))
            if entry.expires_at > now:
                return
            self._remove(entry_id)

    def rows(self, scope: str) -> int:
        table = self._scopes.get(scope)
        return 0 if table is None else table.count

    def similarities(self, scope: str, vector: Vector) -> Vector | None:
        """Cosine similarity of ``vector`` to each row of ``scope`` (rows may move afterwards).

        Pure numpy over the matrix as it is now, so it may run in a worker thread while the event
        loop changes the table: ``pick`` re-checks whatever it takes from the result.
        """
        table = self._scopes.get(scope)
        if table is None or table.count == 0 or table.dim != len(vector):
            return None
        sims: Vector = table.vectors[: table.count] @ vector
        return sims

    def pick(
        self, scope: str, vector: Vector, sims: Vector, threshold: float, limit: int, now: float
    ) -> list[Candidate]:
        """Up to ``limit`` live entries at or above ``threshold``, the most similar first."""
        table = self._scopes.get(scope)
        if table is None or table.dim != len(vector):
            return []
        above = np.flatnonzero(sims[: table.count] >= threshold)
        if len(above) > limit:
            above = above[np.argpartition(sims[above], -limit)[-limit:]]
        found: list[Candidate] = []
        for row in above:
            # the similarity again, from the row as it is now (it may have moved since ``sims``)
            similarity = float(table.vectors[row] @ vector)
            entry = self._entries[table.ids[row]]
            if similarity >= threshold and entry.expires_at > now:
                found.append(Candidate(similarity, entry.query, entry.entry_key))
        found.sort(key=lambda c: -c.similarity)
        return found

    def search(self, scope: str, vector: Vector, threshold: float, limit: int, now: float) -> list[Candidate]:
        """``similarities`` then ``pick``, in the calling thread."""
        sims = self.similarities(scope, vector)
        return [] if sims is None else self.pick(scope, vector, sims, threshold, limit, now)

    def clear(self) -> None:
        self._scopes.clear()
        self._entries.clear()
        self._by_query.clear()

    def _remove(self, entry_id: int) -> None:
        entry = self._entries.pop(entry_id)
        del self._by_query[(entry.scope, entry.query)]
        table = self._scopes[entry.scope]
        moved = table.remove(entry.row)
        if moved is not None:
            self._entries[moved].row = entry.row
        if table.count == 0:
            del self._scopes[entry.scope]
