"""Which store and Redis a config makes the gateway open (the pre-flight as a process: test_startup.py)."""

from __future__ import annotations

import pytest

from llmswitch.config import parse_config
from llmswitch.server.preflight import DEFAULT_STORE_URL, Backends, backends_of

MODELS = "model_list:\n  - model_name: m\n    litellm_params: {model: openai/gpt-4o-mini, api_key: sk-x}\n"


def needs(text: str, env: dict[str, str]) -> Backends:
    check = parse_config(MODELS + text, env=dict(env))
    assert check.config is not None, check.problems
    return backends_of(check.config, env=env)


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        # without a master key nothing is opened, whatever is configured
        ("general_settings: {database_url: 'postgresql://db/x'}\n", {"REDIS_URL": "redis://r"}, Backends(None, None)),
        ("general_settings: {master_key: sk-m}\n", {}, Backends(DEFAULT_STORE_URL, None)),
        ("general_settings: {master_key: sk-m, store_path: /tmp/k.db}\n", {}, Backends("/tmp/k.db", None)),
        (
            "general_settings: {master_key: sk-m, database_url: 'postgresql://db/x', store_path: k.db}\n",
            {},
            Backends("postgresql://db/x", None),
        ),
        (
            "general_settings: {master_key: sk-m}\n",
            {"REDIS_HOST": "r"},
            Backends(DEFAULT_STORE_URL, "redis://r:6379/0"),
        ),
        (
            "general_settings: {master_key: sk-m}\nrouter_settings: {redis_host: cfg, redis_port: 6380}\n",
            {"REDIS_URL": "redis://env"},
            Backends(DEFAULT_STORE_URL, "redis://cfg:6380/0"),
        ),
    ],
)
def test_backends_of(text: str, env: dict[str, str], expected: Backends) -> None:
    assert needs(text, env) == expected
