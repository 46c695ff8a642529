"""Deployments as the router holds them: where to call, how to rank them, and what happened to them lately.

A :class:`Target` is one deployment of a model group, built once from a config
:class:`~llmswitch.config.Deployment`, a LiteLLM ``model_list`` row or a flat dict, and then mutated in
place by the router as calls go out and come back (in-flight count, latency averages, breaker, rest
after a 429, last error). Nothing here is rebuilt per request.

    >>> t = build_targets([{"model_name": "main", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k",
    ...     "rpm": 60}, "model_info": {"priority": 1, "max_input_tokens": 128000}}])[0]
    >>> (t.group, t.provider.name, t.model, t.tier, t.rpm, t.max_input_tokens)
    ('main', 'openai', 'gpt-4o', 1, 60, 128000)
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from llmswitch.errors import APIError, AuthenticationError, ConfigError
from llmswitch.network import network_from_params
from llmswitch.providers import resolve_model
from llmswitch.providers.base import Endpoint, Provider
from llmswitch.providers.params import passthrough_blockers
from llmswitch.router.breaker import Breaker

# how much one new sample moves a latency average: recent enough to follow a slowing upstream,
# smooth enough that one slow answer does not send all traffic elsewhere
EWMA_ALPHA = 0.3
# how many recent latencies the median (what an attempt usually takes) is drawn from
RECENT = 16

BreakerFactory = Callable[[], Breaker]


class Target:
    """A deployment ready to call, with its live state. ``id`` is stable across restarts (config ids)."""

    __slots__ = (
        "_recent",
        "_recent_ttft",
        "_seen",
        "_seen_ttft",
        "additional_drop_params",
        "breaker",
        "cost",
        "drop_params",
        "endpoint",
        "endpoint_error",
        "failures",
        "group",
        "id",
        "in_flight",
        "last_error",
        "last_error_at",
        "latency",
        "max_input_tokens",
        "model",
        "model_info",
        "params",
        "passthrough_blockers",
        "provider",
        "rest_until",
        "rpm",
        "solo",
        "stream_timeout",
        "successes",
        "tier",
        "timeout",
        "tpm",
        "ttft",
        "weight",
    )

    def __init__(
        self,
        *,
        id: str,
        group: str,
        provider: Provider,
        model: str,
        endpoint: Endpoint | None,
        endpoint_error: APIError | None = None,
        weight: float = 1.0,
        tier: int = 0,
        timeout: float | None = None,
        stream_timeout: float | None = None,
        params: Mapping[str, Any] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        model_info: Mapping[str, Any] | None = None,
        breaker: Breaker | None = None,
        drop_params: bool = False,
        additional_drop_params: Sequence[str] = (),
    ) -> None:
        self.id = id
        self.group = group
        self.provider = provider
        self.model = model
        self.endpoint = endpoint
        self.endpoint_error = endpoint_error
        self.weight = weight
        self.tier = tier
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.params: dict[str, Any] = dict(params or {})
        # LiteLLM's drop_params / additional_drop_params (llmswitch.providers.params), and the body keys
        # that make an OpenAI body take the full path to be checked (computed once, not per request)
        self.drop_params = drop_params
        self.additional_drop_params = tuple(additional_drop_params)
        self.passthrough_blockers = passthrough_blockers(
            provider.policy or provider.name, frozenset(self.additional_drop_params)
        )
        self.rpm = rpm
        self.tpm = tpm
        self.model_info: Mapping[str, Any] = model_info or {}
        mit = self.model_info.get("max_input_tokens")
        self.max_input_tokens: int | None = mit if isinstance(mit, int) and mit > 0 else None
        self.cost: tuple[float, float] | None = None
        self.breaker = breaker or Breaker()
        # the only deployment able to serve its group: cooling it down would only turn its errors into
        # ours, so it stays available (as LiteLLM does)
        self.solo = False
        self.in_flight = 0
        self.latency: float | None = None
        self.ttft: float | None = None
        # the last RECENT samples of each, for a median that one slow answer does not move
        self._recent: list[float] = []
        self._recent_ttft: list[float] = []
        self._seen = self._seen_ttft = 0
        self.rest_until = 0.0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.successes = 0
        self.failures = 0

    def note_latency(self, seconds: float, *, first_token: bool) -> None:
        if first_token:
            self.ttft = seconds if self.ttft is None else self.ttft + EWMA_ALPHA * (seconds - self.ttft)
            recent, n = self._recent_ttft, self._seen_ttft
            self._seen_ttft = n + 1
        else:
            self.latency = seconds if self.latency is None else self.latency + EWMA_ALPHA * (seconds - self.latency)
            recent, n = self._recent, self._seen
            self._seen = n + 1
        if n < RECENT:
            recent.append(seconds)
        else:
            recent[n % RECENT] = seconds

    def usual_latency(self, *, first_token: bool) -> float | None:
        """The median of the recent answers' latencies (time to first token for streams); ``None`` before any.

        Read only when deciding whether a retry still has time (not per request), so sorting is fine."""
        recent = self._recent_ttft if first_token else self._recent
        if not recent:
            return None
        return sorted(recent)[len(recent) // 2]

    def __repr__(self) -> str:
        return f"<Target {self.id} {self.group} -> {self.provider.name}/{self.model} tier={self.tier}>"


# ---------------------------------------------------------------- rows -> targets


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _env(value: Any) -> Any:
    """LiteLLM's ``os.environ/NAME`` references in rows given to the SDK Router directly."""
    if isinstance(value, str) and value.startswith("os.environ/"):
        return os.environ.get(value[len("os.environ/") :])
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _litellm_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A LiteLLM ``model_list`` row flattened to the deployment fields the router reads."""
    lp = dict(row.get("litellm_params") or {})
    info = dict(row.get("model_info") or {})
    model = str(lp.pop("model"))
    prov, _, rest = model.partition("/")
    # LiteLLM also takes custom prices in litellm_params
    for key in ("input_cost_per_token", "output_cost_per_token", "max_input_tokens"):
        if key in lp:
            info.setdefault(key, lp.pop(key))
    out = {
        "model_name": row["model_name"],
        "provider": lp.pop("custom_llm_provider", None) or (prov if rest else None),
        "model": rest if rest else model,
        "api_base": _env(lp.pop("api_base", None)),
        "api_key": _env(lp.pop("api_key", None)),
        "api_version": _env(lp.pop("api_version", None)),
        "timeout": lp.pop("timeout", None),
        "stream_timeout": lp.pop("stream_timeout", None),
        "weight": lp.pop("weight", None),
        "order": lp.pop("order", None),
        "priority": info.get("priority"),
        "rpm": lp.pop("rpm", info.get("rpm")),
        "tpm": lp.pop("tpm", info.get("tpm")),
        "id": info.get("id"),
        "model_info": info,
    }
    lp.pop("max_retries", None)
    out["params"] = lp
    return out


_NOT_BODY = ("max_retries", "use_in_pass_through", "litellm_credential_name", "base_model", "mock_response")


class Spec:
    """What a deployment row says, before its provider is resolved (a wildcard resolves per request)."""

    __slots__ = ("endpoint_args", "fields", "group", "id", "model", "organization", "provider")

    def __init__(self, row: Any, index: int) -> None:
        if isinstance(row, Mapping) and "litellm_params" in row:
            row = _litellm_row(row)
        self.group = str(_get(row, "model_name"))
        self.provider: str | None = _get(row, "provider")
        self.model = str(_get(row, "model"))
        self.id = str(_get(row, "id") or f"{self.group}#{index}")
        self.endpoint_args: dict[str, Any] = {
            "api_base": _env(_get(row, "api_base")),
            "api_key": _env(_get(row, "api_key")),
            "api_version": _env(_get(row, "api_version")),
        }
        params = dict(_get(row, "params") or _get(row, "extra") or {})
        # LiteLLM params that are HTTP headers or client settings, not fields of the request body
        headers = dict(params.pop("extra_headers", None) or {})
        headers.update(params.pop("headers", None) or {})
        self.endpoint_args["extra_headers"] = headers or None
        # how the upstream is reached (proxy, CA bundle, client certificate): client settings, not body fields
        self.endpoint_args["network"] = network_from_params(params, f"deployment {self.group!r}")
        self.organization: str | None = params.pop("organization", None)
        for key in _NOT_BODY:
            params.pop(key, None)
        # how to treat parameters the provider cannot take: the router's business, not the body's
        drop, more = params.pop("drop_params", None), params.pop("additional_drop_params", None)
        order, priority = _get(row, "order"), _get(row, "priority")
        info = _get(row, "model_info") or {}
        if priority is None and isinstance(info, Mapping):
            priority = info.get("priority")
        tier = order if order is not None else priority if priority is not None else 0
        timeout, stream_timeout = _number(_get(row, "timeout")), _number(_get(row, "stream_timeout"))
        rpm, tpm = _number(_get(row, "rpm")), _number(_get(row, "tpm"))
        self.fields: dict[str, Any] = {
            "weight": 1.0 if (weight := _number(_get(row, "weight"))) is None else weight,
            "tier": int(tier),
            "timeout": timeout,
            "stream_timeout": stream_timeout,
            "params": params,
            "rpm": int(rpm) if rpm else None,
            "tpm": int(tpm) if tpm else None,
            "model_info": dict(info) if isinstance(info, Mapping) else {},
            "drop_params": drop is True or (isinstance(drop, str) and drop.lower() == "true"),
            "additional_drop_params": tuple(str(k) for k in more) if isinstance(more, list | tuple) else (),
        }

    @property
    def is_wildcard(self) -> bool:
        return "*" in self.group

    def target(self, model: str, breaker: Breaker, *, group: str | None = None) -> Target:
        """The deployment for ``model`` (for a wildcard: the model its pattern captured)."""
        if self.provider in (None, "*"):
            provider, model = resolve_model(model)
        else:
            provider, model = resolve_model(model, self.provider)
        endpoint: Endpoint | None = None
        endpoint_error: APIError | None = None
        args = self.endpoint_args
        if self.organization and getattr(provider, "dialect", "openai_chat") == "openai_chat":
            args = {
                **args,
                "extra_headers": {"OpenAI-Organization": self.organization, **(args["extra_headers"] or {})},
            }
        fields = self.fields
        keys = getattr(provider, "settings_keys", None)
        if keys and not keys.isdisjoint(fields["params"]):
            # where and as whom to call (a cloud's project, region, credentials) are not body fields
            params = fields["params"]
            args = {**args, "settings": {k: _env(v) for k, v in params.items() if k in keys}}
            fields = {**fields, "params": {k: v for k, v in params.items() if k not in keys}}
            provider = provider.for_settings(args["settings"])
        try:
            endpoint = provider.endpoint(**args)
        except AuthenticationError as exc:
            # a missing key fails the calls that reach this deployment (which then fail over), not the
            # whole router: the other deployments may be fine
            endpoint_error = exc
        return Target(
            id=self.id if group is None else f"{self.id}:{model}",
            group=group or self.group,
            provider=provider,
            model=model,
            endpoint=endpoint,
            endpoint_error=endpoint_error,
            breaker=breaker,
            **fields,
        )


def build_targets(rows: Iterable[Any], breaker: BreakerFactory = Breaker) -> list[Target]:
    """Targets for the non-wildcard rows (a quick way to build deployments in tests and examples)."""
    return [s.target(s.model, breaker()) for i, row in enumerate(rows) if not (s := Spec(row, i)).is_wildcard]


# ---------------------------------------------------------------- wildcards


def fill_stars(template: str, captures: Sequence[str]) -> str:
    parts = template.split("*")
    out = parts[0]
    for i, part in enumerate(parts[1:]):
        out += (captures[i] if i < len(captures) else "") + part
    return out


def wildcard_pattern(name: str) -> re.Pattern[str]:
    return re.compile("(.+?)".join(re.escape(part) for part in name.split("*")) + r"\Z")


class Wildcards:
    """``*`` groups: the most specific pattern (most literal characters) that matches a name serves it,
    with every deployment written under that pattern.

    Each name asked for gets its own deployments (and with them breaker, latency and usage state). They
    are kept for the names used most recently, up to ``max_names``: a client cycling through endless
    model names cannot grow the router without bound. ``on_evict`` hears of the deployments dropped, so
    state kept elsewhere by their ids (rpm/tpm counts) goes with them."""

    MAX_RESOLVED = 10_000

    def __init__(
        self,
        breaker: BreakerFactory,
        *,
        max_names: int = MAX_RESOLVED,
        on_evict: Callable[[str, list[Target]], None] | None = None,
    ) -> None:
        self._breaker = breaker
        self._patterns: list[tuple[str, re.Pattern[str], list[Spec]]] = []
        self._resolved: OrderedDict[str, list[Target]] = OrderedDict()
        self.max_names = max(max_names, 1)
        self._on_evict = on_evict

    def add(self, spec: Spec) -> None:
        for name, _, specs in self._patterns:
            if name == spec.group:
                specs.append(spec)
                return
        self._patterns.append((spec.group, wildcard_pattern(spec.group), [spec]))
        self._patterns.sort(key=lambda p: -len(p[0].replace("*", "")))

    @property
    def specs(self) -> list[Spec]:
        return [s for _, _, specs in self._patterns for s in specs]

    def resolve(self, group: str, on_new: Callable[[list[Target]], None]) -> list[Target]:
        cached = self._resolved.get(group)
        if cached is not None:
            self._resolved.move_to_end(group)  # least recently used goes first
            return cached
        for _, pattern, specs in self._patterns:
            m = pattern.match(group)
            if m is None:
                continue
            targets: list[Target] = []
            for spec in specs:
                model = fill_stars(spec.model, m.groups())
                prov = spec.provider
                if prov not in (None, "*") and model.startswith(f"{prov}/"):
                    model = model[len(prov) + 1 :]
                try:
                    targets.append(spec.target(model, self._breaker(), group=group))
                except (ConfigError, APIError):
                    continue
            if not targets:
                continue
            on_new(targets)
            self._resolved[group] = targets
            while len(self._resolved) > self.max_names:
                name, dropped = self._resolved.popitem(last=False)
                if self._on_evict is not None:
                    self._on_evict(name, dropped)
            return targets
        return []

    def resolved(self) -> list[Target]:
        return [t for ts in self._resolved.values() for t in ts]

    def __len__(self) -> int:
        """How many requested names have deployments kept."""
        return len(self._resolved)
