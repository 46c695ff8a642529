"""Network settings in a LiteLLM config: ``litellm_settings.ssl_verify`` / ``ssl_certificate`` (process-wide)
and ``litellm_params.outbound_proxy`` / ``ssl_verify`` / ``ssl_certificate`` (per deployment)."""

from __future__ import annotations

import pytest

from llmswitch.config import parse_config
from llmswitch.errors import ConfigError
from llmswitch.network import Network
from llmswitch.router.deployments import Spec

CONFIG = """\
model_list:
  - model_name: m
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-1
      outbound_proxy: http://user:pw@proxy.internal:3128
      ssl_verify: /etc/ssl/corp-ca.pem
      ssl_certificate: /etc/ssl/client.pem
      temperature: 0.2
litellm_settings:
  ssl_verify: "False"
  ssl_certificate: /etc/ssl/gateway-client.pem
"""


def test_network_settings_are_read_without_warnings_and_reach_the_deployment() -> None:
    config, problems, warnings = parse_config(CONFIG, "config.yaml", env={})
    assert problems == [] and warnings == [] and config is not None
    assert (config.router.ssl_verify, config.router.ssl_certificate) == (False, "/etc/ssl/gateway-client.pem")
    spec = Spec({"model_name": "m", "litellm_params": dict(config.deployments[0].params, model="openai/gpt-4o")}, 0)
    assert spec.endpoint_args["network"] == Network(
        "http://user:pw@proxy.internal:3128", "/etc/ssl/corp-ca.pem", "/etc/ssl/client.pem"
    )
    assert spec.fields["params"] == {"temperature": 0.2}  # not sent to the provider as body fields


def test_ssl_verify_of_another_type_is_a_positioned_error() -> None:
    _, problems, _ = parse_config("litellm_settings:\n  ssl_verify: 3\n", "config.yaml", env={})
    assert [str(p) for p in problems] == [
        "config.yaml:2: litellm_settings.ssl_verify: expected true, false or the path of a CA bundle, got 3"
    ]


def test_a_deployment_proxy_this_client_cannot_use_is_refused_when_the_router_is_built() -> None:
    row = {"model_name": "m", "litellm_params": {"model": "openai/x", "outbound_proxy": "socks5://p:1080"}}
    with pytest.raises(ConfigError, match=r"deployment 'm': outbound_proxy: .*only http:// proxies are"):
        Spec(row, 0)
