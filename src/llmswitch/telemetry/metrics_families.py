"""The gateway's metric families: name, type, labels, help, buckets, and how workers' values combine.

Names follow Prometheus conventions (base units, ``_total`` on counters, ``_seconds``) and, where the
OpenTelemetry GenAI semantic conventions define a metric, its name as an OpenTelemetry Prometheus
exporter writes it (``gen_ai.server.request.duration`` in seconds -> ``gen_ai_server_request_duration_seconds``)
with its attributes as labels (``gen_ai.provider.name`` -> ``gen_ai_provider_name``). docs/observability.md
lists them all, with the LiteLLM names each replaces.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]
# how one scrape combines the workers' values of a gauge (counters and histograms add up)
Combine = Literal["sum", "max", "min"]

# gen_ai.server.request.duration / gen_ai.client.operation.duration: the semantic conventions' advice
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
# gen_ai.server.time_to_first_token
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# gen_ai.client.token.usage
TOKEN_BUCKETS = (
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
)  # fmt: skip
# what the gateway adds to a request: sub-millisecond to a few hundred milliseconds
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Family:
    __slots__ = ("buckets", "combine", "help", "kind", "labels", "name", "width")

    def __init__(
        self,
        name: str,
        kind: Kind,
        labels: tuple[str, ...],
        help: str,
        *,
        buckets: tuple[float, ...] = (),
        combine: Combine = "sum",
    ) -> None:
        self.name = name
        self.kind = kind
        self.labels = labels
        self.help = help
        self.buckets = buckets
        self.combine = combine
        # a histogram's slots: one per bucket, +Inf, then the sum (the count is the buckets' total)
        self.width = len(buckets) + 2 if kind == "histogram" else 1


WHO = ("model_group", "deployment", "provider", "key_alias", "team")
GENAI_SERVER = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model")
GENAI_CLIENT = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "model_group", "deployment")

FAMILIES: tuple[Family, ...] = (
    # ---- requests (at the end of each admitted request, and each refusal)
    Family(
        "llmswitch_requests",
        "counter",
        (*WHO, "status_code", "error_type"),
        "Requests admitted and ended, by status and error class (limit refusals: llmswitch_limit_refusals_total).",
    ),
    Family(
        "gen_ai_server_request_duration_seconds",
        "histogram",
        (*GENAI_SERVER, "error_type"),
        "Time from admission to the last byte of the answer (GenAI semconv gen_ai.server.request.duration).",
        buckets=DURATION_BUCKETS,
    ),
    Family(
        "gen_ai_server_time_to_first_token_seconds",
        "histogram",
        GENAI_SERVER,
        "Streams: time to the first token relayed (GenAI semconv gen_ai.server.time_to_first_token).",
        buckets=TTFT_BUCKETS,
    ),
    Family(
        "llmswitch_gateway_overhead_seconds",
        "histogram",
        ("model_group",),
        "Requests answered by their first attempt: request duration less the upstream call's, what the gateway adds.",
        buckets=OVERHEAD_BUCKETS,
    ),
    Family(
        "llmswitch_tokens",
        "counter",
        (*WHO, "token_type"),
        "Tokens by kind: input, output, cache_read, cache_write (each part of input), reasoning (part of output).",
    ),
    Family(
        "gen_ai_client_token_usage",
        "histogram",
        (*GENAI_CLIENT, "gen_ai_token_type"),
        "Tokens per answered request, input and output (GenAI semconv gen_ai.client.token.usage).",
        buckets=TOKEN_BUCKETS,
    ),
    Family("llmswitch_spend_usd", "counter", WHO, "Cost of the requests answered, in US dollars."),
    # ---- upstream attempts (the router's on_attempt hook)
    Family(
        "gen_ai_client_operation_duration_seconds",
        "histogram",
        (*GENAI_CLIENT, "error_type"),
        "Each call to a provider, to its answer or, for a stream, its end (GenAI semconv gen_ai.client.operation.duration).",
        buckets=DURATION_BUCKETS,
    ),
    Family(
        "llmswitch_upstream_attempts",
        "counter",
        ("model_group", "deployment", "provider", "outcome", "error_type"),
        'Calls sent to providers: outcome ok, error, timeout or cancelled. Health-check probes have model_group "".',
    ),
    Family(
        "llmswitch_retries",
        "counter",
        ("model_group", "deployment", "provider"),
        "Attempts after a request's first within its model group (a retry or a failover to another deployment).",
    ),
    Family(
        "llmswitch_fallbacks",
        "counter",
        ("model_group", "fallback_group", "outcome"),
        "Requests that went to a fallback model group, by whether the fallback answered (success) or not (failure).",
    ),
    # ---- limits
    Family(
        "llmswitch_limit_refusals",
        "counter",
        ("limit", "subject", "key_alias", "team"),
        "Requests refused by a limit: limit rpm, tpm, parallel or budget; subject key, user, team or key_model.",
    ),
    Family(
        "llmswitch_budget_remaining_usd",
        "gauge",
        ("subject", "name"),
        "What is left of a key's or team's budget this period (the limiter's view; min over workers).",
        combine="min",
    ),
    Family(
        "llmswitch_budget_max_usd",
        "gauge",
        ("subject", "name"),
        "A key's or team's budget (max_budget) for its period.",
        combine="max",
    ),
    Family(
        "llmswitch_budget_spent_usd",
        "gauge",
        ("subject", "name"),
        "A key's or team's spend this period, reservations in flight included (max over workers).",
        combine="max",
    ),
    Family(
        "llmswitch_limit_configured",
        "gauge",
        ("subject", "name", "limit"),
        "A key's or team's rate limits as configured: limit rpm, tpm or parallel (max_parallel_requests).",
        combine="max",
    ),
    # ---- cache (fed through note_cache)
    Family(
        "llmswitch_cache_lookups",
        "counter",
        ("model_group", "cache", "result"),
        "Response cache lookups: result hit or miss; cache exact or semantic.",
    ),
    Family(
        "llmswitch_cache_saved_usd",
        "counter",
        ("model_group", "cache"),
        "What the answers served from the cache would have cost upstream, in US dollars.",
    ),
    # ---- the auto complexity router (fed through note_auto_route)
    Family(
        "llmswitch_auto_route_decisions",
        "counter",
        ("model_group", "tier", "source"),
        "Requests an auto group routed: tier weak or strong (the one that answered); source classifier, "
        "override or cascade (escalated after the weak answer failed a check).",
    ),
    # ---- live state (read at scrape, and every few seconds in each worker)
    Family("llmswitch_requests_in_flight", "gauge", (), "Admitted requests not finished yet (streams included)."),
    Family("llmswitch_streams_in_flight", "gauge", (), "Admitted streaming requests not finished yet."),
    Family(
        "llmswitch_upstream_in_flight",
        "gauge",
        ("model_group", "deployment", "provider"),
        "Calls to a deployment in progress (streams until they end).",
    ),
    Family(
        "llmswitch_breaker_state",
        "gauge",
        ("model_group", "deployment", "provider"),
        "A deployment's circuit breaker: 0 closed, 1 half-open, 2 open (the worst over workers).",
        combine="max",
    ),
    Family(
        "llmswitch_breaker_opened",
        "counter",
        ("model_group", "deployment", "provider"),
        "Times a deployment's circuit breaker opened.",
    ),
    Family(
        "llmswitch_breaker_transitions",
        "counter",
        ("model_group", "deployment", "provider", "to"),
        "A deployment's circuit breaker changing state: to open, to half_open (a probe may go), to closed.",
    ),
    Family(
        "llmswitch_deployment_healthy",
        "gauge",
        ("model_group", "deployment", "provider"),
        "1 when the deployment takes calls (breaker not open, not cooling down after a 429), else 0 (min over workers).",
        combine="min",
    ),
    Family(
        "llmswitch_spend_journal_backlog_records",
        "gauge",
        (),
        "Spend records journaled and not yet in the database.",
    ),
    Family(
        "llmswitch_spend_shipper_lag_seconds",
        "gauge",
        (),
        "About how long spend records have waited for the database: since the shipper last had all in hand (0 when none wait).",
        combine="max",
    ),
    Family(
        "llmswitch_redis_up",
        "gauge",
        (),
        "1 when the shared limits backend (Redis) answers, 0 while degraded.",
        combine="min",
    ),
    Family(
        "llmswitch_limiter_allowances",
        "counter",
        (),
        "Allowances (blocks of a key's limits) this gateway took from Redis.",
    ),
    Family(
        "llmswitch_limiter_allowance_admissions",
        "counter",
        (),
        "Requests admitted from allowances, in memory, rather than in Redis one by one.",
    ),
    Family(
        "llmswitch_database_up",
        "gauge",
        (),
        "1 when the database (the store) answers, 0 while it fails.",
        combine="min",
    ),
    Family("llmswitch_workers", "gauge", (), "Worker processes serving (each counts 1)."),
)

BY_NAME = {f.name: f for f in FAMILIES}
WIDTHS = {f.name: f.width for f in FAMILIES}
