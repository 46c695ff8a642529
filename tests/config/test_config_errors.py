"""Broken configs: each problem names the file, the line and the key, and all of them are reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmswitch.config import ConfigFileError, check_config, load_config, parse_config
from llmswitch.errors import ConfigError

OK_ENV = {"OPENAI_API_KEY": "sk-test"}

BROKEN = [
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      rpm: fast
""",
        "config.yaml:5: model_list[0].litellm_params.rpm: expected an integer, got 'fast'",
        id="wrong-type",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      api_key: sk-1
""",
        "config.yaml:3: model_list[0].litellm_params: missing 'model'",
        id="missing-model",
    ),
    pytest.param(
        """\
model_list:
  - litellm_params:
      model: openai/gpt-4o
""",
        "config.yaml:2: model_list[0]: missing 'model_name'",
        id="missing-model-name",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
""",
        "config.yaml:2: model_list[0]: missing 'litellm_params'",
        id="missing-litellm-params",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: opnai/gpt-4o
""",
        "config.yaml:4: model_list[0].litellm_params.model: unknown provider 'opnai' in model 'opnai/gpt-4o'; "
        "did you mean 'openai'?",
        id="unknown-provider",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: gpt-4o
      custom_llm_provider: sagemaker
""",
        "config.yaml:5: model_list[0].litellm_params.custom_llm_provider: unknown provider 'sagemaker'",
        id="unknown-custom-llm-provider",
    ),
    pytest.param(
        """\
model_list:
  - model_name: mine
    litellm_params:
      model: my-own-model
""",
        "config.yaml:4: model_list[0].litellm_params.model: cannot tell the provider of model 'my-own-model': "
        "write it as 'provider/model'",
        id="bare-unknown-model",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-1
      api_key: sk-2
""",
        "config.yaml:6: model_list[0].litellm_params.api_key: duplicate key 'api_key' (first at line 5)",
        id="duplicate-key",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/NOT_SET_ANYWHERE
""",
        "config.yaml:5: model_list[0].litellm_params.api_key: environment variable NOT_SET_ANYWHERE not set",
        id="missing-env-var",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
general_settings:
  master_key: os.environ/NO_MASTER_KEY
""",
        "config.yaml:5: general_settings.master_key: environment variable NO_MASTER_KEY not set",
        id="missing-master-key-env-var",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
general_settings:
  master_key: ""
""",
        "config.yaml:5: general_settings.master_key: an empty master key would let anyone in; remove the line to run "
        "without one",
        id="empty-master-key",
    ),
    pytest.param(
        """\
models:
  gpt-4o:
    model: ""
""",
        "config.yaml:3: models.gpt-4o.model: 'model' must not be empty",
        id="native-empty-model",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
models:
  gpt-4o: openai/gpt-4o
""",
        "config.yaml:4: models: native-form key in a LiteLLM-form file ('model_list' at line 1); write one form "
        "per file: 'model_list' with LiteLLM's sections, or 'models' with router/server",
        id="both-forms",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
litellm_settings:
  fallbacks: {gpt-4o: [claude]}
""",
        "config.yaml:5: litellm_settings.fallbacks: expected a list of {group: [fallback groups]} mappings, "
        "got a mapping",
        id="fallbacks-not-a-list",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
router_settings:
  fallbacks: [{gpt-4o: claude}]
""",
        "config.yaml:5: router_settings.fallbacks[0].gpt-4o: expected a list of model groups, got 'claude'",
        id="fallback-targets-not-a-list",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
router_settings:
  fallbacks: [gpt-4o]
""",
        "config.yaml:5: router_settings.fallbacks[0]: expected a mapping {group: [fallback groups]}, got 'gpt-4o'",
        id="fallbacks-list-of-names",
    ),
    pytest.param(
        """\
models:
  gpt-4o: openai/gpt-4o
router:
  fallbacks: [{gpt-4o: [claude]}]
""",
        "config.yaml:4: router.fallbacks: expected a mapping of group -> fallback groups, got a list "
        "(the native form writes {group: [fallback groups]})",
        id="native-fallbacks-in-litellm-shape",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, weight: 0}
""",
        "config.yaml:3: model_list[0].litellm_params.weight: expected a positive number, got 0",
        id="zero-weight",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, tpm: -5}
""",
        "config.yaml:3: model_list[0].litellm_params.tpm: expected an integer at least 0, got -5",
        id="negative-tpm",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/*
""",
        "config.yaml:4: model_list[0].litellm_params.model: model 'openai/*' has more '*' than model_name 'gpt-4o'; "
        "each '*' in the model is filled from a '*' in the requested name",
        id="wildcard-model-without-wildcard-name",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
router_settings:
  routing_strategy: least-bsy
""",
        "config.yaml:5: router_settings.routing_strategy: unknown routing strategy 'least-bsy'; did you mean "
        "'least-busy'? (one of: simple-shuffle, least-busy, usage-based-routing, usage-based-routing-v2, "
        "latency-based-routing, cost-based-routing)",
        id="unknown-routing-strategy",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
router_settings:
  redis_port: sixty
""",
        "config.yaml:5: router_settings.redis_port: expected an integer, got 'sixty'",
        id="bad-redis-port",
    ),
    pytest.param(
        """\
model_list:
  model_name: gpt-4o
""",
        "config.yaml:2: model_list: expected a list of deployments, got a mapping",
        id="model-list-not-a-list",
    ),
    pytest.param(
        """\
model_list:
  - model_name: a
    litellm_params: {model: openai/gpt-4o}
    model_info: {id: same}
  - model_name: b
    litellm_params: {model: openai/gpt-4o-mini}
    model_info: {id: same}
""",
        "config.yaml:7: model_list[1].model_info.id: duplicate deployment id 'same' (first at line 2)",
        id="duplicate-deployment-id",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o
      litellm_credential_name: nope
""",
        "config.yaml:5: model_list[0].litellm_params.litellm_credential_name: no credential named 'nope' "
        "in credential_list",
        id="unknown-credential",
    ),
    pytest.param(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o
""",
        "config.yaml:4: invalid YAML: expected ',' or '}', but got '<stream end>' "
        "(while parsing a flow mapping at line 3)",
        id="yaml-syntax",
    ),
    pytest.param(
        "- just\n- a list\n",
        "config.yaml:1: expected a mapping at the top of the file, got a list",
        id="top-level-list",
    ),
    pytest.param(
        "",
        "config.yaml: the file is empty: expected 'model_list:' (LiteLLM form) or 'models:' (native form)",
        id="empty",
    ),
    pytest.param(
        "model: gpt-4o\n",
        "config.yaml:1: no known top-level key: expected 'model_list:' (LiteLLM form) or 'models:' (native form)",
        id="no-known-key",
    ),
    pytest.param(
        """\
models:
  gpt-4o:
    - provider: opeanai
      model: gpt-4o
""",
        "config.yaml:3: models.gpt-4o[0].provider: unknown provider 'opeanai'; did you mean 'openai'?",
        id="native-unknown-provider",
    ),
    pytest.param(
        """\
models:
  gpt-4o: [openai/gpt-4o, 7]
""",
        "config.yaml:2: models.gpt-4o[1]: expected a model string or a deployment mapping, got 7",
        id="native-bad-deployment",
    ),
    pytest.param(
        """\
models:
  gpt-4o:
    - model: openai/gpt-4o
      api_key: ${NOT_SET_ANYWHERE}
""",
        "config.yaml:4: models.gpt-4o[0].api_key: environment variable NOT_SET_ANYWHERE not set",
        id="native-missing-env-var",
    ),
    pytest.param(
        """\
models:
  gpt-4o: openai/gpt-4o
server:
  port: 99999
""",
        "config.yaml:4: server.port: expected an integer between 0 and 65535, got 99999",
        id="native-bad-port",
    ),
    pytest.param(
        """\
models:
  gpt-4o: openai/gpt-4o
server:
  master_key: ${LLMSWITCH_TEST_EMPTY:-}
""",
        "config.yaml:4: server.master_key: an empty master key would let anyone in; remove the line to run without one",
        id="native-empty-master-key",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN)
def test_broken_config_names_file_line_and_key(text: str, expected: str) -> None:
    config, problems, _ = parse_config(text, "config.yaml", env=dict(OK_ENV))
    assert config is None
    assert len(problems) == 1, [str(p) for p in problems]
    assert str(problems[0]).startswith(expected)


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        """\
model_list:
  - model_name: a
    litellm_params:
      model: openai/gpt-4o
      rpm: fast
  - model_name: b
    litellm_params:
      model: nowhere/x
router_settings:
  num_retries: many
"""
    )
    with pytest.raises(ConfigFileError) as info:
        load_config(path, env={})
    err = info.value
    assert isinstance(err, ConfigError)
    assert [(p.line, p.key) for p in err.problems] == [
        (5, "model_list[0].litellm_params.rpm"),
        (8, "model_list[1].litellm_params.model"),
        (10, "router_settings.num_retries"),
    ]
    lines = str(err).splitlines()
    assert lines[0] == f"{path}: 3 problems:"
    assert lines[1] == f"  {path}:5: model_list[0].litellm_params.rpm: expected an integer, got 'fast'"
    assert len(lines) == 4


def test_a_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    config, problems, warnings = check_config(tmp_path / "nope.yaml")
    assert config is None and warnings == []
    assert str(problems[0]) == f"{tmp_path / 'nope.yaml'}: cannot read the file: No such file or directory"


def test_secret_values_are_not_shown_in_type_errors() -> None:
    _, problems, _ = parse_config(
        "models:\n  a:\n    model: openai/gpt-4o\n    api_key: [sk-very-secret]\n", "config.yaml", env={}
    )
    assert str(problems[0]) == "config.yaml:4: models.a.api_key: expected a string, got a list"
    _, problems, _ = parse_config("models:\n  a: openai/gpt-4o\nredis: {port: sk-very-secret}\n", "c.yaml", env={})
    assert "sk-very-secret" in str(problems[0])  # not a secret field: the value helps
    _, problems, _ = parse_config("models:\n  a: openai/gpt-4o\nserver: {master_key: {k: v}}\n", "c.yaml", env={})
    assert str(problems[0]) == "c.yaml:3: server.master_key: expected a string, got a mapping"
