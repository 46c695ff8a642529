"""The normalized gateway configuration: what the gateway and the router consume, whichever form was written.

All values are immutable: frozen dataclasses, tuples, and read-only mappings. Secrets (``api_key``,
``master_key``, ``database_url``, ``redis_password``, ``redis_url``) are left out of ``repr`` so a
logged config never shows them.

Wildcards
---------
A deployment whose ``model_name`` contains ``*`` is a pattern (LiteLLM's pass-through wildcards).
``openai/*`` with ``model="*"`` serves any ``openai/<id>`` request as model ``<id>``; ``*`` with
``provider="*"`` serves any model string, resolved per request with ``llmswitch.providers.resolve_model``.
The gateway matches a requested name in this order (:meth:`GatewayConfig.deployments_for`):

1. ``router.model_group_alias`` renames the request;
2. an exact ``model_name`` match wins;
3. otherwise the most specific matching pattern (the most literal characters) wins, and each ``*``
   captured from the request fills the matching ``*`` in ``Deployment.model``, in order.

    >>> d = Deployment(id="x", model_name="anthropic/*", provider="anthropic", model="*")
    >>> d.model_for("anthropic/claude-sonnet-4-5")
    'claude-sonnet-4-5'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal, get_args

from llmswitch.config.problems import Problem
from llmswitch.guardrails.build import GuardrailSpec

DEFAULT_MAX_REQUEST_BODY_SIZE = 32 * 1024 * 1024
"""The largest request Anthropic's API takes; a gateway that accepts more only forwards failures."""

RoutingStrategy = Literal[
    "simple-shuffle",
    "least-busy",
    "usage-based-routing",
    "usage-based-routing-v2",
    "latency-based-routing",
    "cost-based-routing",
]
ROUTING_STRATEGIES: tuple[str, ...] = get_args(RoutingStrategy)

ANY_PROVIDER = "*"
"""``Deployment.provider`` of a ``model: "*"`` deployment: the provider is read from each request's model."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY  # a shared read-only mapping; dataclasses refuse it as a plain default (unhashable)


def frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only copy (nested values stay plain JSON-like lists and dicts, as providers send them)."""
    return MappingProxyType(dict(value)) if value else _EMPTY


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile("(.+?)".join(re.escape(part) for part in name.split("*")) + r"\Z")


@dataclass(frozen=True)
class Deployment:
    """One upstream a model group can be served by (a ``model_list`` entry, or one native ``models`` item).

    >>> Deployment(id="a1", model_name="gpt-4o", provider="openai", model="gpt-4o", rpm=100).rpm
    100
    """

    id: str
    """``model_info.id`` if given, else a stable hash of what identifies the upstream (group, provider, model,
    api_base, api_version, the key's hash, params): the same across restarts and across both config forms."""
    model_name: str
    """The group clients ask for; may be a ``*`` pattern."""
    provider: str
    """Canonical provider name (``openai``, ``azure``, ``groq``...), or ``"*"`` (see :data:`ANY_PROVIDER`)."""
    model: str
    """The provider's model id (``gpt-4o``, an Azure deployment name); may hold ``*`` filled from the request."""
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    timeout: float | None = None
    stream_timeout: float | None = None
    max_retries: int | None = None
    weight: float | None = None
    order: int | None = None
    priority: int | None = None
    model_info: Mapping[str, Any] = field(default_factory=_empty)
    """Free-form metadata: max_tokens, max_input_tokens, input_cost_per_token, output_cost_per_token, mode, ..."""
    params: Mapping[str, Any] = field(default_factory=_empty)
    """Every other ``litellm_params`` entry (temperature, extra_headers, organization, ...), for the provider."""
    source: str = field(default="", compare=False)
    """``file:line`` the deployment was written at, for messages at run time."""

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def is_wildcard(self) -> bool:
        return "*" in self.model_name

    @cached_property
    def _name_pattern(self) -> re.Pattern[str]:
        return _pattern(self.model_name)

    def model_for(self, requested: str) -> str | None:
        """The model id to send upstream when a client asks for ``requested``; ``None`` if not served here.

        For ``provider == "*"`` the result is a full model string for ``resolve_model``.
        """
        if not self.is_wildcard:
            return self.model if requested == self.model_name else None
        match = self._name_pattern.match(requested)
        if match is None:
            return None
        captures = iter(match.groups())
        model = re.sub(r"\*", lambda _: next(captures, ""), self.model)
        if self.provider != ANY_PROVIDER and model.startswith(self.provider + "/"):
            model = model[len(self.provider) + 1 :]  # `*` caught "openai/gpt-4o" for an openai deployment
        return model


@dataclass(frozen=True)
class RouterSettings:
    """How requests are spread over deployments and what happens when one fails.

    ``None`` means "not set": the router applies its own default. Fallback maps are group -> groups in order.
    """

    routing_strategy: RoutingStrategy = "simple-shuffle"
    num_retries: int | None = None
    timeout: float | None = None
    """Per attempt, seconds (LiteLLM ``router_settings.timeout`` / ``litellm_settings.request_timeout``)."""
    stream_timeout: float | None = None
    allowed_fails: int | None = None
    cooldown_time: float | None = None
    disable_cooldowns: bool = False
    retry_after: float | None = None
    min_attempt_time: float | None = None
    """llmswitch: no retry or fallback starts with less of the deadline left (seconds; default 1)."""
    max_fallbacks: int | None = None
    enable_pre_call_checks: bool = False
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    context_window_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    content_policy_fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    default_fallbacks: tuple[str, ...] = ()
    retry_policy: Mapping[str, int] = field(default_factory=_empty)
    """LiteLLM names: BadRequestErrorRetries, AuthenticationErrorRetries, TimeoutErrorRetries,
    RateLimitErrorRetries, ContentPolicyViolationErrorRetries, InternalServerErrorRetries."""
    allowed_fails_policy: Mapping[str, int] = field(default_factory=_empty)
    """LiteLLM names: BadRequestErrorAllowedFails, ..., InternalServerErrorAllowedFails."""
    model_group_alias: Mapping[str, str] = field(default_factory=_empty)
    hidden_aliases: frozenset[str] = frozenset()
    """Aliases that route but are not listed on /v1/models."""
    drop_params: bool = False
    """Drop (and report) parameters a deployment cannot take instead of refusing the request
    (``litellm_settings.drop_params``; per deployment in ``litellm_params``)."""
    redis_host: str | None = None
    redis_port: int | None = None
    redis_password: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    redis_db: int | None = None
    ssl_verify: bool | str | None = None
    """LiteLLM ``litellm_settings.ssl_verify``: false, or a CA bundle path, for every upstream."""
    ssl_certificate: str | None = None
    """LiteLLM ``litellm_settings.ssl_certificate``: a client certificate (PEM, key included)."""

    @property
    def request_timeout(self) -> float | None:
        """``timeout`` under LiteLLM's ``litellm_settings`` name."""
        return self.timeout


@dataclass(frozen=True)
class TelemetrySettings:
    """Callbacks and alerting (LiteLLM's ``litellm_settings`` callback lists and ``general_settings``
    alerting keys); see docs/observability.md."""

    success_callback: tuple[str, ...] = ()
    failure_callback: tuple[str, ...] = ()
    callbacks: tuple[str, ...] = ()
    turn_off_message_logging: bool | None = None
    """True: no message content in any export; False: content in spans and callbacks' payloads; unset:
    content only with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``."""
    alerting: tuple[str, ...] = ()
    alert_types: tuple[str, ...] | None = None
    alerting_args: Mapping[str, Any] = field(default_factory=_empty)
    alert_to_webhook_url: Mapping[str, str] = field(default_factory=_empty)

    @property
    def any(self) -> bool:
        return bool(self.success_callback or self.failure_callback or self.callbacks or self.alerting)


@dataclass(frozen=True)
class ServerSettings:
    """The gateway process: auth, storage, limits on what it accepts, where it listens."""

    master_key: str | None = field(default=None, repr=False)
    database_url: str | None = field(default=None, repr=False)
    """PostgreSQL for several gateways; ``None`` means the embedded SQLite store at ``store_path``."""
    database_pool_limit: int | None = None
    database_connection_timeout: float | None = None
    store_path: str | None = None
    """SQLite file of the embedded store; ``None`` lets the gateway pick its default location."""
    max_request_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE
    """Bytes; larger bodies get a 413 before anything is read further."""
    request_timeout: float | None = None
    """Seconds for a whole client request, across all its attempts and fallbacks."""
    host: str | None = None
    port: int | None = None
    workers: int | None = None
    background_health_checks: bool = False
    """Probe every deployment in the background (LiteLLM's ``general_settings.background_health_checks``)."""
    health_check_interval: float | None = None
    """Seconds between those probes (default 300)."""
    require_shared_limits: bool = False
    """Refuse to start when other instances use the store and limits are per-process (no Redis)."""
    require_auth_for_metrics_endpoint: bool = False
    """``GET /metrics`` needs a key the gateway accepts (LiteLLM's setting; open by default, as there)."""
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    """Callbacks (traces, webhooks, custom loggers) and alerting."""


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs, normalized from a LiteLLM config.yaml, a native config, or the environment.

    >>> cfg = GatewayConfig(deployments=(Deployment(id="a", model_name="openai/*", provider="openai", model="*"),))
    >>> [(d.id, model) for d, model in cfg.deployments_for("openai/gpt-4o-mini")]
    [('a', 'gpt-4o-mini')]
    """

    deployments: tuple[Deployment, ...] = ()
    router: RouterSettings = field(default_factory=RouterSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    warnings: tuple[Problem, ...] = field(default=(), compare=False)
    """Positioned warnings (unsupported settings, unknown keys, unset optional variables), in file order."""
    source: str | None = field(default=None, compare=False)
    """The file it was loaded from; ``None`` when built from the environment."""
    form: Literal["litellm", "native", "env"] = field(default="litellm", compare=False)
    guardrails: tuple[GuardrailSpec, ...] = ()
    """LiteLLM's ``guardrails:`` entries, checked (see :mod:`llmswitch.guardrails`)."""
    cache: Any = None
    """The response cache (a :class:`llmswitch.cache.CacheSettings`), ``None`` when caching is off."""

    @cached_property
    def groups(self) -> Mapping[str, tuple[Deployment, ...]]:
        """Deployments by ``model_name``, in file order (wildcard patterns included, as written)."""
        out: dict[str, list[Deployment]] = {}
        for d in self.deployments:
            out.setdefault(d.model_name, []).append(d)
        return MappingProxyType({name: tuple(ds) for name, ds in out.items()})

    @cached_property
    def _patterns(self) -> tuple[str, ...]:
        # Most specific first: more literal characters means a narrower pattern ("openai/gpt-*" before "*").
        wild = [name for name in self.groups if "*" in name]
        return tuple(sorted(wild, key=lambda n: (-len(n.replace("*", "")), wild.index(n))))

    def deployments_for(self, requested: str) -> tuple[tuple[Deployment, str], ...]:
        """(deployment, model id to send) for every deployment that serves ``requested``, in file order."""
        name = self.router.model_group_alias.get(requested, requested)
        exact = self.groups.get(name)
        if exact is not None and "*" not in name:
            return tuple((d, d.model) for d in exact)
        for pattern in self._patterns:
            served = [(d, m) for d in self.groups[pattern] if (m := d.model_for(name)) is not None]
            if served:
                return tuple(served)
        return ()
