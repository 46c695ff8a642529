"""Gateway configuration: LiteLLM's proxy ``config.yaml`` unchanged, or llmswitch's shorter native form.

    >>> from llmswitch.config import load_config
    >>> cfg = load_config("config.yaml")  # doctest: +SKIP
    >>> [(d.model_name, d.provider, d.model) for d in cfg.deployments]  # doctest: +SKIP
    [('gpt-4o', 'openai', 'gpt-4o'), ('gpt-4o', 'azure', 'my-deployment')]
    >>> for warning in cfg.warnings:  # doctest: +SKIP
    ...     print(warning)
    config.yaml:21: litellm_settings.callbacks: not supported yet, ignored

Every problem names the file, line and key (``config.yaml:14: model_list[2].litellm_params.rpm:
expected an integer, got 'fast'``); :func:`load_config` raises :class:`ConfigFileError` listing all of
them, :func:`check_config` returns them (``llmswitch config check``), :func:`config_from_env` builds a
config from provider keys in the environment (``llmswitch serve`` without a file).
See docs/config.md for both forms.

Nothing here is imported by ``import llmswitch``; the gateway imports it when it starts.
"""

from __future__ import annotations

from llmswitch.config.from_env import config_from_env
from llmswitch.config.loading import ConfigCheck, check_config, load_config, parse_config
from llmswitch.config.model import (
    ANY_PROVIDER,
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    Deployment,
    GatewayConfig,
    RouterSettings,
    RoutingStrategy,
    ServerSettings,
    TelemetrySettings,
)
from llmswitch.config.problems import ConfigFileError, Problem

__all__ = [
    "ANY_PROVIDER",
    "DEFAULT_MAX_REQUEST_BODY_SIZE",
    "ConfigCheck",
    "ConfigFileError",
    "Deployment",
    "GatewayConfig",
    "Problem",
    "RouterSettings",
    "RoutingStrategy",
    "ServerSettings",
    "TelemetrySettings",
    "check_config",
    "config_from_env",
    "load_config",
    "parse_config",
]
