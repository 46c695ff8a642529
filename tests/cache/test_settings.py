"""Cache settings in LiteLLM's config form, the native form and the SDK: one reader, positioned errors."""

from __future__ import annotations

import pytest

from llmswitch.cache.settings import CacheSettingError, settings_from_params
from llmswitch.config import parse_config

LITELLM = """\
model_list:
  - model_name: g
    litellm_params: {model: openai/gpt-4o-mini}
litellm_settings:
  cache: True
  cache_params:
    type: redis
    host: localhost
    port: 6379
    password: os.environ/RPW
    namespace: prod
    ttl: 600
    supported_call_types: ["acompletion"]
    mode: default_off
"""


def test_the_seed_config_reads_unchanged() -> None:
    cfg, problems, warnings = parse_config(LITELLM, "c.yaml", env={"RPW": "p@ss"})
    assert problems == [] and warnings == [] and cfg is not None
    s = cfg.cache
    assert (s.type, s.backend, s.ttl, s.namespace, s.mode) == ("redis", "redis", 600.0, "prod", "default_off")
    assert s.redis_url == "redis://:p%40ss@localhost:6379/0"
    assert "p@ss" not in repr(cfg)


def test_cache_params_without_cache_true_is_a_warning_and_no_cache() -> None:
    text = LITELLM.replace("  cache: True\n", "")
    cfg, problems, warnings = parse_config(text, "c.yaml", env={"RPW": "x"})
    assert problems == [] and cfg is not None and cfg.cache is None
    assert any("cache_params" in str(w) and "cache: true" in str(w) for w in warnings)


def test_a_bad_value_is_an_error_at_its_key() -> None:
    text = LITELLM.replace("ttl: 600", "ttl: soon")
    _, problems, _ = parse_config(text, "c.yaml", env={"RPW": "x"})
    assert [str(p) for p in problems] == [
        "c.yaml:12: litellm_settings.cache_params.ttl: expected a non-negative number, got 'soon'"
    ]


def test_native_form() -> None:
    for text, backend in (
        ("models: {g: openai/gpt-4o}\ncache: true\n", "memory"),
        ("models: {g: openai/gpt-4o}\ncache: redis://localhost:6379/3\n", "redis"),
        ("models: {g: openai/gpt-4o}\ncache: {type: disk, disk_cache_dir: /tmp/x, ttl: 5}\n", "sqlite"),
    ):
        cfg, problems, _ = parse_config(text, "n.yaml", env={})
        assert problems == [] and cfg is not None, problems
        assert cfg.cache.backend == backend


def test_cluster_and_sentinel_as_litellm_takes_them() -> None:
    s = settings_from_params({"type": "redis", "redis_startup_nodes": [{"host": "10.0.0.1", "port": 7001}]})
    assert s.redis_cluster_nodes == (("10.0.0.1", 7001),) and s.backend == "redis"
    s = settings_from_params(
        {"type": "redis", "sentinel_nodes": [["s1", 26379]], "service_name": "main", "sentinel_password": "x"}
    )
    assert s.sentinel_nodes == (("s1", 26379),) and s.sentinel_service == "main"


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"type": "s3"}, "type"),
        ({"type": "memcached"}, "type"),
        ({"type": "redis"}, "host"),
        ({"mode": "sometimes"}, "mode"),
        ({"max_temperature": -1}, "max_temperature"),
        ({"redis_startup_nodes": [{"port": 1}]}, "redis_startup_nodes"),
    ],
)
def test_unusable_settings_name_their_key(params: dict[str, object], key: str) -> None:
    with pytest.raises(CacheSettingError) as info:
        settings_from_params(params, env={})
    assert info.value.key == key
