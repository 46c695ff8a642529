"""Which entries a Redis cache holds, known in every gateway process: a miss without a round trip.

Most lookups of a cache are misses, and on Redis each one waits for a ``GET`` that finds nothing before
the request goes upstream. The key directory keeps, in each process, the set of entry keys Redis holds
with their expiries, so a key it does not list is a miss at once.

How the processes agree:

- a store is one write of three pipelined commands: ``SET`` the entry, ``ZADD`` its key to a sorted set
  of live keys scored by expiry (``<prefix>keys``), and ``XADD`` it to a stream (``<prefix>keys:log``,
  trimmed to about ``_LOG_LENGTH`` entries) that only tells the other processes;
- each process loads the sorted set's live keys on start, then follows the stream from the entry that
  was last before the load (a key added meanwhile is read twice, which is harmless), in a thread of its
  own with the synchronous Redis client (as the semantic index's log does);
- the directory answers "absent" only while it is *authoritative*: loaded, following without error
  since, and holding no more than ``capacity`` keys. Otherwise every lookup asks Redis, as without it.

What it can get wrong, and what that costs: a key stored by another process and not yet read from the
stream (within about 20 ms: it is read in batches), or by a process with the directory off, is taken for a miss: the
request goes upstream, as two identical requests at once do anyway. A key it lists that Redis no longer
has (evicted, deleted, flushed) is a ``GET`` that finds nothing: an ordinary miss. It never serves an
answer that is not in Redis. The sorted set must not be evicted (it is written on every store, so an
LRU policy keeps it; see docs/caching.md).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

__all__ = ["KeyDirectory"]

log = logging.getLogger("llmswitch.cache")

# the follower's XREAD waits this long for new keys, so it notices a stop within it
_BLOCK_MS = 500
_BATCH = 1000
# the stream only carries news between processes that follow it; the sorted set is the record
_LOG_LENGTH = 100_000
# after news, the follower waits this long before reading again, so a busy gateway's stores are read
# in batches (one read per wait, not one per store); another process's new key is a miss meanwhile
_GATHER_S = 0.02
# how often the follower drops expired keys (here and from the sorted set), and retries after an overflow
_SWEEP_S = 30.0


class KeyDirectory:
    """The live entry keys of one Redis cache (its ``prefix``), followed in a thread (module docstring)."""

    def __init__(self, url: str, prefix: str, *, capacity: int, timeout: float = 0.5) -> None:
        import redis

        self.set_key = prefix + "keys"
        self.log_key = prefix + "keys:log"
        self.capacity = capacity
        self._known: dict[str, float] = {}  # entry key -> expiry (unix seconds)
        self._authoritative = False
        self._reader: Any = redis.Redis.from_url(
            url, socket_timeout=timeout + _BLOCK_MS / 1000, socket_connect_timeout=timeout
        )
        self._last_id = "0-0"
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loaded = threading.Event()
        self._next_sweep = 0.0

    # ------------------------------------------------------------------ the event loop's side

    def absent(self, key: str) -> bool:
        """True when Redis certainly holds no entry ``key`` (the lookup may skip the round trip)."""
        if not self._authoritative:
            return False
        expires = self._known.get(key)
        return expires is None or expires <= time.time()

    def note(self, key: str, expires_at: float) -> None:
        """This process stored ``key`` (the follower will read it from the stream too)."""
        self._known[key] = expires_at

    def forget_all(self) -> None:
        """The cache was flushed: this process lists nothing (others find out by missing in Redis)."""
        self._known = {}

    def store_commands(self, key: str, expires_at: float) -> list[tuple[bytes, ...]]:
        """The commands that list ``key`` (to be pipelined after the entry's ``SET``)."""
        ms = str(int(expires_at * 1000)).encode()
        k = key.encode()
        return [
            (b"ZADD", self.set_key.encode(), ms, k),
            (b"XADD", self.log_key.encode(), b"MAXLEN", b"~", str(_LOG_LENGTH).encode(), b"*", b"k", k, b"x", ms),
        ]

    @property
    def authoritative(self) -> bool:
        return self._authoritative

    def start(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._follow, name="llmswitch-cache-keys", daemon=True)
            self._thread.start()

    def wait_loaded(self, timeout: float) -> bool:
        return self._loaded.wait(timeout)

    def close(self) -> None:
        """Stop following (the thread ends within one blocked read)."""
        self._stop.set()
        self._authoritative = False
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(_BLOCK_MS / 1000 + 1.0)

    # ------------------------------------------------------------------ the follower's thread

    def _load(self) -> bool:
        """Every live key from the sorted set; False (not authoritative) when there are too many."""
        r = self._reader
        now_ms = int(time.time() * 1000)
        r.zremrangebyscore(self.set_key, "-inf", now_ms)
        last = r.xrevrange(self.log_key, "+", "-", count=1)
        self._last_id = last[0][0].decode() if last else "0-0"
        live = int(r.zcard(self.set_key))
        if live > self.capacity:
            log.warning(
                "the Redis cache holds %d entries, more than its key directory keeps (key_directory_size %d): "
                "every lookup asks Redis until it holds fewer",
                live,
                self.capacity,
            )
            self._known = {}
            return False
        known: dict[str, float] = {}
        offset = 0
        while True:
            rows = r.zrange(self.set_key, now_ms, "+inf", byscore=True, offset=offset, num=_BATCH, withscores=True)
            for member, score in rows:
                known[member.decode()] = score / 1000
            if len(rows) < _BATCH:
                break
            offset += len(rows)
        # keys this process stored while loading are in the stream after _last_id too; keep them meanwhile
        for key, expires in list(self._known.items()):
            known.setdefault(key, expires)
        self._known = known
        return True

    def _apply(self, batch: list[tuple[bytes, dict[bytes, bytes]]]) -> bool:
        """Take the keys of ``batch``; False when the directory then holds more than it may."""
        known = self._known
        for entry_id, fields in batch:
            self._last_id = entry_id.decode()
            try:
                known[fields[b"k"].decode()] = int(fields[b"x"]) / 1000
            except (KeyError, ValueError, UnicodeDecodeError):
                log.warning("cache key directory: skipped a malformed entry %s", self._last_id)
        if len(known) > self.capacity:
            self._sweep()
            return len(self._known) <= self.capacity
        return True

    def _sweep(self) -> None:
        now = time.time()
        self._known = {k: e for k, e in self._known.items() if e > now}

    def _missed_news(self, after: str) -> bool:
        """Whether the stream lost entries newer than ``after`` before this process read them."""
        info = self._reader.xinfo_stream(self.log_key)
        deleted = info.get("max-deleted-entry-id")
        if isinstance(deleted, bytes):
            deleted = deleted.decode()
        if not isinstance(deleted, str):  # a Redis before 7.0 does not say: assume the worst
            return True
        return _id_tuple(deleted) > _id_tuple(after)

    def _follow(self) -> None:
        backoff = 0.25
        loaded = False
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if not loaded:
                    loaded = self._load()
                    self._authoritative = loaded
                    self._loaded.set()
                    self._next_sweep = now + _SWEEP_S
                    if not loaded:
                        self._stop.wait(_SWEEP_S)
                        continue
                elif now >= self._next_sweep:
                    self._sweep()
                    self._reader.zremrangebyscore(self.set_key, "-inf", int(time.time() * 1000))
                    self._next_sweep = now + _SWEEP_S
                before = self._last_id
                reply = self._reader.xread({self.log_key: before}, count=_BATCH, block=_BLOCK_MS)
                for _stream, batch in reply or ():
                    if not self._apply(batch):
                        log.warning(
                            "the Redis cache holds more entries than its key directory keeps (key_directory_size "
                            "%d): every lookup asks Redis until it holds fewer",
                            self.capacity,
                        )
                        self._authoritative = loaded = False
                        self._known = {}
                    elif len(batch) >= _BATCH and self._missed_news(before):
                        log.warning("cache key directory: fell behind the stream; reloading")
                        self._authoritative = loaded = False
                if reply:
                    self._stop.wait(_GATHER_S)
                backoff = 0.25
            except Exception as exc:  # Redis away or failing: ask Redis on every lookup until reloaded
                self._authoritative = loaded = False
                if self._stop.is_set():
                    break
                log.warning("cache key directory: following Redis failed (%s: %s); retrying", type(exc).__name__, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        with contextlib.suppress(Exception):
            self._reader.close()


def _id_tuple(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
