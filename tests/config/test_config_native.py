"""The native form: shorter to write, normalized to the same model as LiteLLM's."""

from __future__ import annotations

from llmswitch.config import DEFAULT_MAX_REQUEST_BODY_SIZE, GatewayConfig, parse_config

ENV = {"OPENAI_API_KEY": "sk-openai", "AZURE_API_KEY": "az-key", "LLMSWITCH_MASTER_KEY": "sk-master"}

LITELLM = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
      rpm: 100
      temperature: 0.2
    model_info:
      max_tokens: 4096
      priority: 1
  - model_name: gpt-4o
    litellm_params:
      model: azure/my-deployment
      api_base: https://x.openai.azure.com
      api_key: os.environ/AZURE_API_KEY
      api_version: "2024-06-01"
      weight: 2
  - model_name: claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
    model_info:
      id: claude-main
  - model_name: "openai/*"
    litellm_params:
      model: "openai/*"
      api_key: os.environ/OPENAI_API_KEY
router_settings:
  routing_strategy: least-busy
  num_retries: 2
  timeout: 30
  fallbacks: [{"gpt-4o": ["claude"]}]
  retry_policy: {RateLimitErrorRetries: 5, AuthenticationErrorRetries: 0}
  model_group_alias: {gpt4: gpt-4o}
  redis_host: localhost
  redis_port: 6379
general_settings:
  master_key: os.environ/LLMSWITCH_MASTER_KEY
  database_url: postgresql://db/llm
  max_request_size_mb: 8
"""

NATIVE = """\
models:
  gpt-4o:                          # the group clients ask for
    - provider: openai
      model: gpt-4o
      api_key: ${OPENAI_API_KEY}
      rpm: 100
      priority: 1
      info: {max_tokens: 4096}
      params: {temperature: 0.2}
    - model: azure/my-deployment   # provider/model in one string
      api_base: https://x.openai.azure.com
      api_key: ${AZURE_API_KEY}
      api_version: "2024-06-01"
      weight: 2
  claude:
    model: anthropic/claude-sonnet-4-5
    id: claude-main
  "openai/*":
    api_key: ${OPENAI_API_KEY}
router:
  strategy: least-busy
  num_retries: 2
  timeout: 30
  fallbacks: {gpt-4o: [claude]}
  retry_policy: {rate_limit: 5, authentication: 0}
  aliases: {gpt4: gpt-4o}
redis: {host: localhost, port: 6379}
server:
  master_key: ${LLMSWITCH_MASTER_KEY}
  database: postgresql://db/llm
  max_body_mb: 8
"""


def load(text: str, env: dict[str, str] | None = None) -> GatewayConfig:
    config, problems, _ = parse_config(text, "config.yaml", env=dict(ENV if env is None else env))
    assert problems == [], [str(p) for p in problems]
    assert config is not None
    return config


def test_the_same_setup_written_both_ways_is_equal() -> None:
    litellm, native = load(LITELLM), load(NATIVE)
    assert (litellm.form, native.form) == ("litellm", "native")
    assert native.deployments == litellm.deployments
    assert [d.id for d in native.deployments] == [d.id for d in litellm.deployments]
    assert native.router == litellm.router
    assert native.server == litellm.server
    assert native == litellm
    assert native.warnings == litellm.warnings == ()


def test_normalized_values() -> None:
    cfg = load(NATIVE)
    openai, azure, claude, wildcard = cfg.deployments
    assert (openai.provider, openai.model, openai.api_key, openai.priority) == ("openai", "gpt-4o", "sk-openai", 1)
    assert dict(openai.model_info) == {"max_tokens": 4096, "id": openai.id, "priority": 1}
    assert (azure.provider, azure.model, azure.weight) == ("azure", "my-deployment", 2.0)
    assert claude.id == "claude-main"
    assert (wildcard.model_name, wildcard.provider, wildcard.model) == ("openai/*", "openai", "*")
    assert dict(cfg.router.retry_policy) == {"RateLimitErrorRetries": 5, "AuthenticationErrorRetries": 0}
    assert dict(cfg.router.fallbacks) == {"gpt-4o": ("claude",)}
    assert cfg.server.max_request_body_size == 8 * 1024 * 1024


def test_shorthands() -> None:
    cfg = load("""\
models:
  fast: groq/llama-3.1-8b-instant        # one deployment, as its model string
  gpt-4o-mini:                           # the group name is the model when the provider is given
    provider: openai
  "anthropic/*":                         # a wildcard group with nothing else to say
  local:
    - ollama/llama3.2
    - {model: hosted_vllm/llama, api_base: "http://gpu:8000/v1"}
router:
  fallbacks: {fast: local}
""")
    assert [(d.model_name, d.provider, d.model) for d in cfg.deployments] == [
        ("fast", "groq", "llama-3.1-8b-instant"),
        ("gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("anthropic/*", "anthropic", "*"),
        ("local", "ollama", "llama3.2"),
        ("local", "hosted_vllm", "llama"),
    ]
    assert dict(cfg.router.fallbacks) == {"fast": ("local",)}


def test_interpolation() -> None:
    env = {"HOST": "gpu-1", "EMPTY": "", "KEY": "k"}
    cfg = load(
        """\
models:
  a:
    model: openai/x
    api_base: "http://${HOST}:${PORT:-8000}/v1"
    api_key: ${KEY}
    params: {note: "costs $$5 ${EMPTY:-nothing}", user: "${HOST}"}
""",
        env,
    )
    (dep,) = cfg.deployments
    assert dep.api_base == "http://gpu-1:8000/v1"
    assert dict(dep.params) == {"note": "costs $5 nothing", "user": "gpu-1"}


def test_os_environ_references_work_in_the_native_form_too() -> None:
    (dep,) = load("models:\n  a: {model: openai/x, api_key: os.environ/KEY}\n", {"KEY": "k"}).deployments
    assert dep.api_key == "k"


def test_dollar_braces_are_literal_in_the_litellm_form() -> None:
    # LiteLLM passes such text through; so do we, or the same file would mean two things.
    cfg = load(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_key: '${KEY}'}\n", {"KEY": "k"}
    )
    assert cfg.deployments[0].api_key == "${KEY}"


def test_missing_variable_in_optional_field_warns() -> None:
    config, problems, warnings = parse_config(
        "models:\n  a: {model: openai/x, api_base: '${NO_BASE}'}\n", "config.yaml", env={}
    )
    assert problems == [] and config is not None and config.deployments[0].api_base is None
    assert [str(w) for w in warnings] == [
        "config.yaml:2: models.a.api_base: environment variable NO_BASE not set; left unset"
    ]


def test_server_and_redis() -> None:
    cfg = load("""\
models: {a: openai/gpt-4o}
redis: redis://cache:6379/2
server:
  host: 0.0.0.0
  port: 8080
  workers: 4
  store: /var/lib/llmswitch/store.db
  request_timeout: 120
""")
    assert cfg.router.redis_url == "redis://cache:6379/2"
    s = cfg.server
    assert (s.host, s.port, s.workers, s.store_path, s.request_timeout) == (
        "0.0.0.0",
        8080,
        4,
        "/var/lib/llmswitch/store.db",
        120.0,
    )
    assert s.max_request_body_size == DEFAULT_MAX_REQUEST_BODY_SIZE == 32 * 1024 * 1024
    assert s.master_key is None and s.database_url is None


def test_unknown_native_keys_warn_with_suggestions() -> None:
    config, problems, warnings = parse_config(
        "models:\n  a: {model: openai/x, api_bse: http://x}\nrouter: {stratgy: least-busy}\nservre: {}\n",
        "config.yaml",
        env={},
    )
    assert problems == [] and config is not None
    assert [str(w) for w in warnings] == [
        "config.yaml:2: models.a.api_bse: unknown key, ignored; did you mean 'api_base'?",
        "config.yaml:3: router.stratgy: unknown key, ignored; did you mean 'strategy'?",
        "config.yaml:4: servre: unknown key, ignored; did you mean 'server'?",
    ]


def test_secrets_stay_out_of_repr() -> None:
    text = repr(load(NATIVE))
    for secret in ("sk-openai", "az-key", "sk-master", "postgresql://db/llm"):
        assert secret not in text


def test_blank_values_count_as_unset() -> None:
    cfg = load("models:\n  a: {model: openai/x, api_base: '${BASE:-}'}\nserver: {database: '${DATABASE_URL:-}'}\n", {})
    assert cfg.deployments[0].api_base is None and cfg.server.database_url is None


def test_request_timeout_is_the_router_timeout_under_litellms_name() -> None:
    cfg = load(
        "model_list:\n  - {model_name: a, litellm_params: {model: openai/x}}\nlitellm_settings: {request_timeout: 12}\n"
    )
    assert cfg.router.timeout == cfg.router.request_timeout == 12.0


def test_store_path_is_an_llmswitch_extension_of_general_settings() -> None:
    cfg = load("model_list: []\ngeneral_settings: {store_path: /tmp/x.db}\n")
    assert cfg.server.store_path == "/tmp/x.db"
