"""A gateway config from the environment alone, for ``llmswitch serve`` without a file.

Each provider whose key is set gets a pass-through wildcard deployment (``OPENAI_API_KEY`` ->
``openai/*``), so clients ask for ``openai/gpt-4o`` or ``anthropic/claude-sonnet-4-5`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from llmswitch.config.model import Deployment, GatewayConfig, RouterSettings, ServerSettings, frozen_mapping
from llmswitch.config.problems import Problem
from llmswitch.config.reading import Invalid, to_int

# provider -> (variables holding its key, first set wins; variable its endpoint must come from, if required)
_KEYED_PROVIDERS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "openai": (("OPENAI_API_KEY",), None),
    "anthropic": (("ANTHROPIC_API_KEY",), None),
    "gemini": (("GEMINI_API_KEY", "GOOGLE_API_KEY"), None),
    "azure": (("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"), "AZURE_API_BASE"),
}


def config_from_env(env: Mapping[str, str] | None = None) -> GatewayConfig:
    """Deployments for every provider with a key in the environment; server settings from it too.

    Master key from ``LLMSWITCH_MASTER_KEY`` (or ``LITELLM_MASTER_KEY``), database from ``DATABASE_URL``,
    Redis from ``REDIS_URL`` or ``REDIS_HOST``/``REDIS_PORT``/``REDIS_PASSWORD``.

    >>> cfg = config_from_env({"OPENAI_API_KEY": "sk-test", "LLMSWITCH_MASTER_KEY": "sk-master"})
    >>> [(d.model_name, d.provider, d.model) for d in cfg.deployments], cfg.server.master_key
    ([('openai/*', 'openai', '*')], 'sk-master')
    """
    from llmswitch.providers.presets import PRESETS

    env = os.environ if env is None else env
    deployments: list[Deployment] = []
    for provider, (key_vars, base_var) in _KEYED_PROVIDERS.items():
        key = next((env[v] for v in key_vars if env.get(v)), None)
        base = env.get(base_var) if base_var else None
        if key and (base_var is None or base):
            deployments.append(_wildcard(provider, key, base))
    for row in PRESETS.values():
        key = next((env[v] for v in row.api_key_env if env.get(v)), None)
        base = next((env[v] for v in row.api_base_env if env.get(v)), None)
        # Keyless presets (ollama, vllm) only when the user said where they run.
        if key or (not row.requires_api_key and base):
            deployments.append(_wildcard(row.name, key, base))
    server = ServerSettings(
        master_key=env.get("LLMSWITCH_MASTER_KEY") or env.get("LITELLM_MASTER_KEY") or None,
        database_url=env.get("DATABASE_URL") or None,
    )
    warnings: list[Problem] = []
    router = RouterSettings(
        redis_url=env.get("REDIS_URL") or None,
        redis_host=env.get("REDIS_HOST") or None,
        redis_port=_port(env.get("REDIS_PORT"), warnings),
        redis_password=env.get("REDIS_PASSWORD") or None,
    )
    return GatewayConfig(tuple(deployments), router, server, tuple(warnings), None, "env")


def _wildcard(provider: str, api_key: str | None, api_base: str | None) -> Deployment:
    dep_id = f"env-{provider}"
    return Deployment(
        id=dep_id,
        model_name=f"{provider}/*",
        provider=provider,
        model="*",
        api_key=api_key,
        api_base=api_base,
        model_info=frozen_mapping({"id": dep_id}),
        source="environment",
    )


def _port(value: str | None, warnings: list[Problem]) -> int | None:
    if not value:
        return None
    try:
        return to_int(value)
    except Invalid as exc:
        warnings.append(Problem(f"{exc}; Redis port left unset", "environment", key="REDIS_PORT", severity="warning"))
        return None
