"""Prometheus metrics of the gateway, counted on the hot path for a few microseconds a request.

The server and the router tell a :class:`Metrics` what happened through one call per site:

- :meth:`Metrics.begin` when a request is admitted (``Accounting.admit``), :meth:`Metrics.note_finish`
  at its end (``Accounting.finish``, with its spend record's values), :meth:`Metrics.note_end` when the
  app is done with it (closes what a refusal left open);
- :meth:`Metrics.note_attempt`, the router's ``on_attempt`` hook, for every call sent upstream;
- :meth:`Metrics.note_refusal` where a limit refuses a request;
- :func:`note_cache` (or :meth:`Metrics.note_cache`) where the response cache answers a lookup.

Everything else (breakers, deployment health, budgets, the spend journal, Redis and the database) is
read from the gateway's state when a scrape comes and every few seconds (``metrics_collect.py``).

Each update adds to a float in a list of slots (``metrics_store.py``); the slots of one request's series
(its model group, deployment, key and team) are found with one dict lookup and kept in a
:class:`_Series`, so a request costs a handful of ``values[i] += x``. Label values are capped
(:class:`Capped`): model names from wildcard routes, deployments, key aliases and teams past their cap
are counted under ``"other"``; no request ids are ever labels.

    >>> m = Metrics()
    >>> note_cache("gpt-4o", hit=True, saved_usd=0.002, metrics=m)
    >>> b"llmswitch_cache_lookups_total" in m.render()
    True
"""

from __future__ import annotations

import contextvars
import os
import time
from bisect import bisect_left
from typing import Any

from llmswitch.telemetry.metrics_families import BY_NAME, WIDTHS
from llmswitch.telemetry.metrics_store import ENV_DIR, Slots

OTHER = "other"
# distinct values a label may take beyond those the config names (its model groups, its deployments)
DEFAULT_CAPS = {"model_group": 200, "deployment": 500, "key_alias": 2000, "team": 500}
_TOKEN_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning")
_OPERATION = {"chat": "chat", "embeddings": "embeddings"}

# the request in progress in this task (its request.state), for the attempt hook to add its upstream time
# ("_metrics_upstream") and the group of its last attempt ("_metrics_group") to
_STATE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("llmswitch_metrics_state", default=None)

# the gateway's Metrics, for code that has no gateway at hand (note_cache); the last one built wins
_current: Metrics | None = None


class Capped:
    """A label's values, at most ``cap`` of them besides those allowed up front; the rest read ``"other"``.

    >>> c = Capped(1, allowed=("gpt-4o",))
    >>> c("gpt-4o"), c("a"), c("b"), c("a")
    ('gpt-4o', 'a', 'other', 'a')
    """

    __slots__ = ("_seen", "cap", "extra")

    def __init__(self, cap: int, allowed: tuple[str, ...] = ()) -> None:
        self._seen = dict.fromkeys(allowed, True)
        self.cap = cap
        self.extra = 0

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if self.extra >= self.cap:
            return OTHER
        self.extra += 1
        self._seen[value] = True
        return value


class _Series:
    """The slots one kind of request writes: its group, deployment, key, team, status and error class."""

    __slots__ = ("rec", "served", "slots")

    # requests, duration histogram, tokens (5 in a row), input and output token histograms, spend, TTFT
    # histogram, overhead histogram
    slots: tuple[int, int, int, int, int, int, int, int]

    def __init__(self, served: Any, rec: Any) -> None:
        self.served = served
        self.rec = rec


class _AttemptSeries:
    __slots__ = ("slots",)

    # attempts (this outcome and error class), the upstream duration histogram, retries
    slots: tuple[int, int, int]


class Metrics:
    """The metrics of one gateway process. ``directory``: the workers' shared directory (see
    ``metrics_store.py``), else ``LLMSWITCH_METRICS_DIR``, else memory only."""

    def __init__(self, directory: str | None = None, *, caps: dict[str, int] | None = None) -> None:
        global _current
        self.slots = Slots(directory if directory is not None else os.environ.get(ENV_DIR) or None)
        self.values = self.slots.values
        caps = {**DEFAULT_CAPS, **(caps or {})}
        self.caps = {name: Capped(n) for name, n in caps.items()}
        self.aliases: dict[str, str] = {}
        self._series: dict[tuple[str, int, int, str, int, str], _Series] = {}
        self._attempts: dict[tuple[str, str, str, str, str, bool], _AttemptSeries] = {}
        slot = self.slots.slot
        self.in_flight = slot("llmswitch_requests_in_flight", ())
        self.streams_in_flight = slot("llmswitch_streams_in_flight", ())
        self.values[slot("llmswitch_workers", ())] = 1.0
        self.recorded = 0  # requests ended with a spend record (the journal's backlog is these less those shipped)
        _current = self

    def know(self, model_groups: tuple[str, ...], deployments: tuple[str, ...], aliases: dict[str, str]) -> None:
        """The config's own names: always labels of their own, whatever the caps."""
        self.caps["model_group"] = Capped(self.caps["model_group"].cap, model_groups)
        self.caps["deployment"] = Capped(self.caps["deployment"].cap, deployments)
        self.aliases = aliases

    # ------------------------------------------------------------ the request's life

    def begin(self, state: dict[str, Any], stream: bool) -> None:
        """A request is being admitted (``Accounting.admit``); ``state`` is its ``request.state``."""
        _STATE.set(state)
        state["_metrics"] = 2 if stream else 1  # open: 1, a stream: 2, closed: 0
        v = self.values
        v[self.in_flight] += 1
        if stream:
            v[self.streams_in_flight] += 1

    def note_end(self, state: dict[str, Any]) -> None:
        """The app is done with the request: close it if :meth:`note_finish` did not (a refusal, an outage)."""
        if state.get("_metrics"):
            self._close(state)

    def _close(self, state: dict[str, Any]) -> None:
        v = self.values
        v[self.in_flight] -= 1
        if state["_metrics"] == 2:
            v[self.streams_in_flight] -= 1
        state["_metrics"] = 0

    def note_finish(
        self,
        state: dict[str, Any],
        status: int,
        route: Any,
        served: Any,
        usage: Any,
        cost: float | None,
        error: BaseException | None,
        started: float,
        call_type: str,
        *,
        _now: Any = time.perf_counter,
        _bisect: Any = bisect_left,
    ) -> None:
        """A request's end, with its spend record's values (``Accounting.finish``)."""
        elapsed = _now() - started
        if usage is not None or error is not None:
            self.recorded += 1
        rec = getattr(state.get("principal"), "record", None)
        group = state.get("model") or ""
        err = "" if error is None else type(error).__name__
        key = (group, id(served), id(rec), call_type, status, err)
        s = self._series.get(key)
        if s is None or s.served is not served or s.rec is not rec:
            s = self._new_series(key, served, rec, state.get("principal"))
        request, duration, tokens, tok_in, tok_out, spend, ttft, overhead = s.slots
        v = self.values
        v[request] += 1
        v[duration + _bisect(_DURATION, elapsed)] += 1
        v[duration + 15] += elapsed
        if usage is not None:
            n = usage.input_tokens
            v[tokens] += n
            v[tok_in + _bisect(_TOKENS, n)] += 1
            v[tok_in + 15] += n
            n = usage.output_tokens
            v[tokens + 1] += n
            v[tok_out + _bisect(_TOKENS, n)] += 1
            v[tok_out + 15] += n
            if usage.cache_read_tokens:
                v[tokens + 2] += usage.cache_read_tokens
            if usage.cache_write_tokens:
                v[tokens + 3] += usage.cache_write_tokens
            if usage.reasoning_tokens:
                v[tokens + 4] += usage.reasoning_tokens
        if cost:
            v[spend] += cost
        ttft_ms = state.get("ttft_ms")
        if ttft_ms is not None:
            x = ttft_ms / 1000
            v[ttft + _bisect(_TTFT, x)] += 1
            v[ttft + 17] += x
        if state.get("_metrics"):
            self._close(state)
        if route is not None:
            upstream = state.get("_metrics_upstream")
            if upstream and route.attempts == 1:
                x = elapsed - upstream
                v[overhead + _bisect(_OVERHEAD, x)] += 1
                v[overhead + 13] += x
            if route.group != route.requested:
                primary = self.aliases.get(route.requested, route.requested)
                if route.group != primary:
                    self._fallback(primary, route.group, "success")
        else:
            last = state.get("_metrics_group")
            if last is not None and last != self.aliases.get(group, group):
                self._fallback(self.aliases.get(group, group), last, "failure")

    def _fallback(self, group: str, fallback: str, outcome: str) -> None:
        cap = self.caps["model_group"]
        self.values[self.slots.slot("llmswitch_fallbacks", (cap(group), cap(fallback), outcome))] += 1

    def _new_series(self, key: tuple[str, int, int, str, int, str], served: Any, rec: Any, principal: Any) -> _Series:
        if len(self._series) > 50_000:
            self._series.clear()  # key records change (a new one per update): keep the live ones only
        group, _, _, call_type, status, err = key
        caps = self.caps
        s = _Series(served, rec)
        g = caps["model_group"](group)
        dep = caps["deployment"](str(getattr(served, "id", None) or ""))
        provider = str(getattr(served, "provider", None) or "")
        model = caps["deployment"](str(getattr(served, "model", None) or "")) if served is not None else ""
        alias = ""
        team = ""
        if rec is not None:
            alias = caps["key_alias"](str(getattr(rec, "key_alias", None) or getattr(rec, "key_name", None) or ""))
            team = caps["team"](str(getattr(rec, "team_id", None) or ""))
        elif getattr(principal, "is_master", False) and getattr(principal, "key_hash", ""):
            alias = "master"  # (a gateway without a master key authenticates nobody: no alias)
        labels = (g, dep, provider, alias, team)
        op = _OPERATION.get(call_type, call_type)
        server = (op, provider, g, model)
        slot = self.slots.slot
        client = (op, provider, model, g, dep)
        # the five token kinds in consecutive slots (one series each), so note_finish adds an offset
        tokens = self.slots.run("llmswitch_tokens", [(*labels, kind) for kind in _TOKEN_TYPES])
        s.slots = (
            slot("llmswitch_requests", (*labels, str(status), err)),
            slot("gen_ai_server_request_duration_seconds", (*server, err), 16),
            tokens,
            slot("gen_ai_client_token_usage", (*client, "input"), 16),
            slot("gen_ai_client_token_usage", (*client, "output"), 16),
            slot("llmswitch_spend_usd", labels),
            slot("gen_ai_server_time_to_first_token_seconds", server, 18),
            slot("llmswitch_gateway_overhead_seconds", (g,), 14),
        )
        self._series[key] = s
        return s

    # ------------------------------------------------------------ upstream attempts

    def note_attempt(self, a: Any, *, _bisect: Any = bisect_left) -> None:
        """The router's ``on_attempt`` hook: one call sent upstream (see ``llmswitch.router.attempts``)."""
        err = a.error or ""
        key = (a.group, a.deployment, a.model, a.outcome, err, a.probe)
        s = self._attempts.get(key)
        if s is None:
            s = self._new_attempt_series(a, key)
        attempt, duration, retries = s.slots
        v = self.values
        v[attempt] += 1
        elapsed = a.elapsed
        v[duration + _bisect(_DURATION, elapsed)] += 1
        v[duration + 15] += elapsed
        if a.probe:
            return
        state = _STATE.get()
        if state is not None:
            state["_metrics_upstream"] = state.get("_metrics_upstream", 0.0) + elapsed
            if a.number > 1 and state.get("_metrics_group") == a.group:
                v[retries] += 1
            state["_metrics_group"] = a.group

    def _new_attempt_series(self, a: Any, key: tuple[str, str, str, str, str, bool]) -> _AttemptSeries:
        if len(self._attempts) > 50_000:
            self._attempts.clear()
        caps = self.caps
        s = _AttemptSeries()
        g = "" if a.probe else caps["model_group"](a.group)
        dep = caps["deployment"](a.deployment)
        provider = str(a.provider)
        labels = (g, dep, provider)
        err = key[4]
        client = ("chat", provider, caps["deployment"](a.model), g, dep)
        s.slots = (
            self.slots.slot("llmswitch_upstream_attempts", (*labels, a.outcome, err)),
            self.slots.slot("gen_ai_client_operation_duration_seconds", (*client, err), 16),
            self.slots.slot("llmswitch_retries", labels),
        )
        self._attempts[key] = s
        return s

    # ------------------------------------------------------------ limits, cache

    def note_refusal(self, kind: str, subject: str, principal: Any) -> None:
        """A limit refused the request (``kind``: rpm_limit, tpm_limit, max_parallel_requests, max_budget;
        ``subject``: ``key:<hash>``, ``user:<id>``, ``team:<id>``, or a key's per-model limit)."""
        rec = getattr(principal, "record", None)
        caps = self.caps
        alias = caps["key_alias"](str(getattr(rec, "key_alias", None) or getattr(rec, "key_name", None) or ""))
        team = caps["team"](str(getattr(rec, "team_id", None) or ""))
        who = subject.partition(":")[0]
        if who not in ("key", "user", "team"):
            who = "key_model"
        limit = _LIMIT_NAMES.get(kind, kind)
        self.values[self.slots.slot("llmswitch_limit_refusals", (limit, who, alias, team))] += 1

    def note_cache(self, model_group: str, *, hit: bool, saved_usd: float = 0.0, cache: str = "exact") -> None:
        """A response cache lookup: ``hit`` or not; on a hit, what the answer would have cost upstream."""
        g = self.caps["model_group"](model_group)
        v = self.values
        v[self.slots.slot("llmswitch_cache_lookups", (g, cache, "hit" if hit else "miss"))] += 1
        if hit and saved_usd:
            v[self.slots.slot("llmswitch_cache_saved_usd", (g, cache))] += saved_usd

    def note_auto_route(self, model_group: str, decision: Any) -> None:
        """An ``auto`` group's decision (llmswitch.router.auto.decision.Decision) for one request."""
        g = self.caps["model_group"](model_group)
        self.values[self.slots.slot("llmswitch_auto_route_decisions", (g, decision.tier, decision.source))] += 1

    # ------------------------------------------------------------ gauges and scrape

    def set_gauge(self, family: str, labels: tuple[str, ...], value: float) -> None:
        self.values[self.slots.slot(family, labels)] = value

    def set_total(self, family: str, labels: tuple[str, ...], value: float) -> None:
        """A counter whose running total is kept elsewhere (a breaker's openings): written as it stands."""
        self.values[self.slots.slot(family, labels)] = value

    def render(self, *, openmetrics: bool = False) -> bytes:
        """Every worker's series, combined, in the Prometheus text format (or OpenMetrics)."""
        from llmswitch.telemetry import metrics_render, metrics_store

        snaps = [metrics_store.own_snapshot(self.slots, WIDTHS)]
        if self.slots.directory is not None:
            snaps += metrics_store.other_snapshots(self.slots.directory, self.slots.path)
        return metrics_render.render(snaps, BY_NAME, openmetrics=openmetrics)

    def flush(self) -> None:
        """Make this worker's values visible to the others' scrapes (see ``metrics_store.py``)."""
        self.slots.flush()

    def close(self) -> None:
        global _current
        if _current is self:
            _current = None
        self.slots.close()


def note_cache(
    model_group: str, *, hit: bool, saved_usd: float = 0.0, cache: str = "exact", metrics: Metrics | None = None
) -> None:
    """For the response cache: count a lookup (``hit`` or a miss) and, on a hit, the cost it saved.

    Call it once per lookup; ``cache`` names the kind (``"exact"``, ``"semantic"``). Without ``metrics``
    it counts in the gateway of this process (nothing when metrics are off).
    """
    m = metrics if metrics is not None else _current
    if m is not None:
        m.note_cache(model_group, hit=hit, saved_usd=saved_usd, cache=cache)


_LIMIT_NAMES = {"rpm_limit": "rpm", "tpm_limit": "tpm", "max_parallel_requests": "parallel", "max_budget": "budget"}
_DURATION = BY_NAME["gen_ai_server_request_duration_seconds"].buckets
_TTFT = BY_NAME["gen_ai_server_time_to_first_token_seconds"].buckets
_TOKENS = BY_NAME["gen_ai_client_token_usage"].buckets
_OVERHEAD = BY_NAME["llmswitch_gateway_overhead_seconds"].buckets
assert WIDTHS["gen_ai_server_request_duration_seconds"] == 16 == WIDTHS["gen_ai_client_operation_duration_seconds"]
assert WIDTHS["gen_ai_client_token_usage"] == 16
assert WIDTHS["gen_ai_server_time_to_first_token_seconds"] == 18
assert WIDTHS["llmswitch_gateway_overhead_seconds"] == 14
