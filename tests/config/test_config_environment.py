"""Environment: LiteLLM's environment_variables, os.environ/ references, and config_from_env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmswitch.config import config_from_env, load_config, parse_config


def test_environment_variables_are_set_before_references_are_read() -> None:
    env: dict[str, str] = {"ALREADY": "old"}
    config, problems, _ = parse_config(
        """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/MY_KEY
router_settings:
  redis_port: os.environ/REDIS_PORT
environment_variables:
  MY_KEY: sk-from-file
  REDIS_PORT: 6380
  ALREADY: new
  FLAG: true
""",
        "config.yaml",
        env=env,
    )
    assert problems == [] and config is not None
    assert config.deployments[0].api_key == "sk-from-file"
    assert config.router.redis_port == 6380
    # Written into the environment as text, overriding what was there, as LiteLLM does.
    assert env == {"ALREADY": "new", "MY_KEY": "sk-from-file", "REDIS_PORT": "6380", "FLAG": "true"}


def test_load_config_reads_and_writes_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_TEST_KEY", "sk-process")
    monkeypatch.delenv("LLMSWITCH_TEST_WRITTEN", raising=False)  # restored after the test
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n  - model_name: a\n"
        "    litellm_params: {model: openai/x, api_key: os.environ/LLMSWITCH_TEST_KEY}\n"
        "environment_variables: {LLMSWITCH_TEST_WRITTEN: yes-please}\n"
    )
    cfg = load_config(path)
    assert cfg.deployments[0].api_key == "sk-process"
    assert os.environ["LLMSWITCH_TEST_WRITTEN"] == "yes-please"
    assert cfg.source == str(path)


def test_config_from_env_gives_a_wildcard_per_provider_with_a_key() -> None:
    cfg = config_from_env(
        {
            "OPENAI_API_KEY": "sk-o",
            "ANTHROPIC_API_KEY": "sk-a",
            "GOOGLE_API_KEY": "g",
            "GROQ_API_KEY": "gq",
            "AZURE_API_KEY": "az",  # no AZURE_API_BASE: Azure cannot be reached, so no deployment
            "LITELLM_MASTER_KEY": "sk-litellm-master",
            "DATABASE_URL": "postgresql://db/x",
            "REDIS_HOST": "cache",
            "REDIS_PORT": "6379",
        }
    )
    assert [(d.model_name, d.provider, d.model, d.api_key) for d in cfg.deployments] == [
        ("openai/*", "openai", "*", "sk-o"),
        ("anthropic/*", "anthropic", "*", "sk-a"),
        ("gemini/*", "gemini", "*", "g"),
        ("groq/*", "groq", "*", "gq"),
    ]
    assert cfg.server.master_key == "sk-litellm-master" and cfg.server.database_url == "postgresql://db/x"
    assert (cfg.router.redis_host, cfg.router.redis_port) == ("cache", 6379)
    assert cfg.form == "env" and cfg.warnings == ()
    [(dep, model)] = cfg.deployments_for("anthropic/claude-sonnet-4-5")
    assert (dep.provider, model) == ("anthropic", "claude-sonnet-4-5")


def test_config_from_env_prefers_llmswitch_names_and_needs_a_base_for_keyless_servers() -> None:
    cfg = config_from_env(
        {
            "GEMINI_API_KEY": "gem",
            "GOOGLE_API_KEY": "goo",
            "AZURE_API_KEY": "az",
            "AZURE_API_BASE": "https://x.openai.azure.com",
            "OLLAMA_API_BASE": "http://localhost:11434/v1",
            "LLMSWITCH_MASTER_KEY": "sk-ours",
            "LITELLM_MASTER_KEY": "sk-theirs",
            "REDIS_PORT": "not-a-port",
        }
    )
    assert [(d.model_name, d.api_key, d.api_base) for d in cfg.deployments] == [
        ("gemini/*", "gem", None),
        ("azure/*", "az", "https://x.openai.azure.com"),
        ("ollama/*", None, "http://localhost:11434/v1"),
    ]
    assert cfg.server.master_key == "sk-ours"
    assert [str(w) for w in cfg.warnings] == [
        "environment: REDIS_PORT: expected an integer, got 'not-a-port'; Redis port left unset"
    ]


def test_config_from_env_with_nothing_set() -> None:
    cfg = config_from_env({})
    assert cfg.deployments == () and cfg.server.master_key is None


def test_import_llmswitch_does_not_import_config() -> None:
    code = "import sys, llmswitch; print('llmswitch.config' in sys.modules, 'yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
