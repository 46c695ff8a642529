"""Real LiteLLM configs from LiteLLM's documentation (tests/config/litellm_docs/) load unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmswitch.config import check_config, load_config, parse_config

DOCS = Path(__file__).parent / "litellm_docs"
SAMPLES = sorted(DOCS.glob("*.yaml"))
BENCH = Path(__file__).resolve().parents[3] / "shared" / "bench" / "config.yaml"

# Fake values for every variable the samples read with os.environ/.
ENV = {
    name: f"value-of-{name.lower()}"
    for name in (
        "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY", "AZURE_API_KEY", "AZURE_API_BASE",
        "AZURE_NORTH_AMERICA_API_KEY", "AZURE_API_KEY_EU", "AZURE_API_KEY_CA", "REDIS_HOST", "REDIS_PASSWORD",
        "HUGGINGFACE_API_KEY",
    )
} | {"REDIS_PORT": "6379"}  # fmt: skip


def test_there_are_samples() -> None:
    assert len(SAMPLES) >= 15


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_loads_without_problems(sample: Path) -> None:
    config, problems, warnings = check_config(sample, env=dict(ENV))
    assert problems == []
    assert config is not None
    assert sample.read_text().startswith("# Source: https://docs.litellm.ai/")
    for warning in warnings:
        assert warning.line is not None and warning.file == str(sample) and warning.severity == "warning"


def load(name: str) -> object:
    return load_config(DOCS / name, env=dict(ENV))


def test_model_specific_params_are_passed_to_the_provider() -> None:
    cfg = load_config(DOCS / "configs_model_specific_params.yaml", env={})
    team1, team2, gpt4o, mistral = cfg.deployments
    assert (team1.provider, team1.model, team1.api_version) == ("azure", "chatgpt-v-2", "2023-05-15")
    assert dict(team1.params) == {"azure_ad_token": "eyJ0eXAiOiJ", "seed": 12, "max_tokens": 20}
    assert team2.api_key == "sk-123" and dict(team2.params) == {"temperature": 0.2}
    assert dict(gpt4o.params) == {
        "extra_headers": {"AI-Resource Group": "ishaan-resource"},
        "organization": "org-ikDc4ex8NB",
        "temperature": 0.2,
    }
    assert (mistral.provider, mistral.model, mistral.api_base) == ("ollama", "mistral", "your_ollama_api_base")
    assert cfg.warnings == ()


def test_unquoted_date_like_api_version_stays_the_text_written() -> None:
    (dep,) = load_config(DOCS / "configs_embeddings_azure.yaml", env={}).deployments
    assert dep.api_version == "2023-07-01-preview"


def test_bare_openai_model_names_resolve_to_openai() -> None:
    cfg = load_config(DOCS / "configs_embeddings_openai.yaml", env={})
    assert [(d.provider, d.model, d.api_key) for d in cfg.deployments] == [
        ("openai", "text-embedding-ada-002", "your-api-key-1"),
        ("openai", "text-embedding-ada-002", "your-api-key-2"),
    ]
    assert cfg.deployments[0].id != cfg.deployments[1].id  # different keys are different upstream quotas


def test_load_balancing_router_settings() -> None:
    cfg = load_config(DOCS / "load_balancing_quick_start.yaml", env={})
    assert [d.rpm for d in cfg.deployments] == [6, 6, 1440]
    r = cfg.router
    assert (r.routing_strategy, r.num_retries, r.timeout) == ("simple-shuffle", 2, 30.0)
    assert dict(r.model_group_alias) == {"gpt-4": "gpt-3.5-turbo"}
    assert (r.redis_host, r.redis_password, r.redis_port) == ("<your redis host>", "<your redis password>", 1992)
    assert [d.model for d, _ in cfg.deployments_for("gpt-4")] == [
        "<your-deployment-name>",
        "gpt-turbo-small-ca",
        "gpt-turbo-large",
    ]


def test_hidden_alias() -> None:
    cfg = load_config(DOCS / "load_balancing_hidden_alias.yaml", env={})
    assert dict(cfg.router.model_group_alias) == {"GPT-3.5-turbo": "gpt-3.5-turbo"}
    assert cfg.router.hidden_aliases == frozenset({"GPT-3.5-turbo"})


def test_fallback_to_a_deployment_id() -> None:
    cfg = load_config(DOCS / "reliability_fallback_to_model_id.yaml", env=dict(ENV))
    assert dict(cfg.router.fallbacks) == {"gpt-4": ("my-specific-model-id",)}
    assert cfg.deployments[0].id == "my-specific-model-id"
    assert cfg.deployments[1].api_base == "value-of-azure_api_base"
    assert cfg.deployments[2].provider == "anthropic"
    assert cfg.warnings == ()  # the fallback names a deployment id, which is a valid target


def test_wildcard_routing_sample() -> None:
    cfg = load_config(DOCS / "wildcard_routing.yaml", env=dict(ENV))
    assert [(d.model_name, d.provider, d.model) for d in cfg.deployments] == [
        ("anthropic/*", "anthropic", "*"),
        ("groq/*", "groq", "*"),
        ("fo::*:static::*", "openai", "fo::*:static::*"),
    ]
    [(dep, model)] = cfg.deployments_for("groq/llama3-8b-8192")
    assert (dep.provider, model, dep.api_key) == ("groq", "llama3-8b-8192", "value-of-groq_api_key")
    [(dep, model)] = cfg.deployments_for("fo::hi::static::hi")
    assert (dep.provider, model) == ("openai", "fo::hi::static::hi")


def test_wildcard_fallbacks_target_a_wildcard_match() -> None:
    cfg = load_config(DOCS / "reliability_wildcard_fallbacks.yaml", env=dict(ENV))
    assert dict(cfg.router.fallbacks) == {"gpt-4o": ("azure/gpt-4o",)}
    assert cfg.warnings == ()
    [(dep, model)] = cfg.deployments_for("azure/gpt-4o")
    assert (dep.provider, model) == ("azure", "gpt-4o")


def test_catch_all_wildcard() -> None:
    cfg = load_config(DOCS / "caching_redis_cluster.yaml", env={})
    (dep,) = cfg.deployments
    assert (dep.model_name, dep.provider, dep.model) == ("*", "*", "*")
    assert [m for _, m in cfg.deployments_for("anthropic/claude-sonnet-4-5")] == ["anthropic/claude-sonnet-4-5"]


def test_credentials_fill_the_deployment() -> None:
    (dep,) = load_config(DOCS / "configs_credentials.yaml", env=dict(ENV)).deployments
    assert (dep.api_key, dep.api_base, dep.api_version) == (
        "value-of-azure_api_key",
        "value-of-azure_api_base",
        "2023-05-15",
    )
    assert "litellm_credential_name" not in dep.params


def test_model_info_is_kept_and_environment_references_inside_are_read() -> None:
    (dep,) = load_config(DOCS / "configs_custom_tokenizer.yaml", env=dict(ENV)).deployments
    assert (dep.provider, dep.model) == ("deepseek", "deepseek-chat")
    assert dep.model_info["access_groups"] == ["restricted-models"]
    assert dep.model_info["custom_tokenizer"]["auth_token"] == "value-of-huggingface_api_key"
    assert dep.model_info["id"] == dep.id


def test_litellm_settings_and_router_settings_merge_router_wins() -> None:
    cfg = load_config(DOCS / "reliability_retries_timeouts_cooldowns.yaml", env={})
    r = cfg.router
    assert (r.num_retries, r.timeout, r.allowed_fails) == (2, 30.0, 3)
    assert dict(r.context_window_fallbacks) == {"zephyr-beta": ("gpt-3.5-turbo-16k",), "gpt-4o": ("gpt-3.5-turbo-16k",)}
    assert [str(w).split(": ", 1)[1] for w in cfg.warnings][:2] == [
        "litellm_settings.num_retries: overridden by router_settings.num_retries, as LiteLLM does",
        "litellm_settings.request_timeout: overridden by router_settings.timeout, as LiteLLM does",
    ]


def test_prod_sample_server_settings_and_warnings() -> None:
    cfg = load_config(DOCS / "prod_best_practices.yaml", env={})
    assert cfg.server.master_key == "sk-1234" and cfg.server.database_pool_limit == 10
    assert cfg.router.timeout == 600.0
    assert [w.key for w in cfg.warnings] == [
        "general_settings.proxy_batch_write_at",
        "general_settings.disable_spend_logs",
        "general_settings.disable_error_logs",
        "general_settings.allow_requests_on_db_unavailable",
        "litellm_settings.set_verbose",
        "litellm_settings.json_logs",
    ]
    assert {w.message for w in cfg.warnings} == {"not supported yet, ignored"}


def test_prod_sample_alerting_is_read() -> None:
    cfg = load_config(DOCS / "prod_best_practices.yaml", env={})
    assert cfg.server.telemetry.alerting == ("slack",)


def test_redis_from_environment_references() -> None:
    cfg = load_config(DOCS / "prod_redis.yaml", env=dict(ENV))
    r = cfg.router
    assert (r.routing_strategy, r.redis_host, r.redis_port) == ("usage-based-routing-v2", "value-of-redis_host", 6379)
    assert cfg.deployments == ()


def test_unsupported_providers_are_positioned_errors_and_nothing_else() -> None:
    cases = {
        "configs_load_balancing.yaml": [6, 12, 17],  # the three huggingface/ deployments
    }
    for name, lines in cases.items():
        path = DOCS / "unsupported_providers" / name
        config, problems, _ = check_config(path, env=dict(ENV))
        assert config is None
        assert [p.line for p in problems] == lines
        assert all(p.key.endswith("litellm_params.model") and "unknown provider" in p.message for p in problems)


def test_the_quick_start_s_bedrock_deployments_keep_their_region_out_of_the_body() -> None:
    cfg = load_config(DOCS / "configs_quick_start.yaml", env=dict(ENV))
    rows = [d for d in cfg.deployments if d.model_name == "anthropic-claude"]
    assert len(rows) == 1 and (rows[0].provider, rows[0].model) == ("bedrock", "anthropic.claude-instant-v1")
    from llmswitch.router.router import Router

    router = Router.from_config(cfg)
    [target] = router.deployments("anthropic-claude")
    assert target.provider.name == "bedrock" and "aws_region_name" not in target.params
    assert target.endpoint is not None and target.endpoint.api_base == "https://bedrock-runtime.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("name", "line", "text"),
    [
        ("routing_retry_policy.yaml", 10, "YAML does not allow tabs for indentation"),
        ("reliability_content_policy.yaml", 4, "YAML does not allow tabs for indentation"),
        ("configs_multiple_organizations.yaml", 3, 'write "*" for a wildcard'),
    ],
)
def test_published_samples_that_are_not_yaml_say_where_and_why(name: str, line: int, text: str) -> None:
    config, problems, _ = check_config(DOCS / "invalid_yaml" / name, env={})
    assert config is None
    [problem] = problems
    assert problem.line == line and text in problem.message


def test_bench_config_loads_cleanly() -> None:
    if not BENCH.exists():
        pytest.skip(f"{BENCH} is not beside this checkout")
    cfg = load_config(BENCH, env={})
    assert [(d.model_name, d.provider, d.model) for d in cfg.deployments] == [
        ("bench", "openai", "gpt-4o-mini"),
        ("bench-stream", "openai", "gpt-4o-mini"),
    ]
    assert cfg.server.master_key is not None and cfg.warnings == ()


def test_a_list_of_organizations_is_one_deployment_each() -> None:
    # The "Multiple OpenAI Organizations" sample, with its `*` quoted so that it is YAML.
    text = (DOCS / "invalid_yaml" / "configs_multiple_organizations.yaml").read_text()
    text = "model_list:\n" + text.replace("model_name: *", 'model_name: "*"').replace(
        "model: openai/*", 'model: "openai/*"'
    )
    config, problems, _ = parse_config(text, "config.yaml", env=dict(ENV))
    assert problems == [] and config is not None
    assert [(d.model_name, d.provider, d.model, d.params["organization"]) for d in config.deployments] == [
        ("*", "openai", "*", "org-1"),
        ("*", "openai", "*", "org-2"),
        ("*", "openai", "*", "org-3"),
    ]
    assert len({d.id for d in config.deployments}) == 3
