"""An ``auto`` group's ``litellm_params.router`` settings, checked where they are written.

    - model_name: auto
      litellm_params:
        model: auto
        router: {weak: weak, strong: strong, strong_share: 1.5}

    config.yaml:5: model_list[2].litellm_params.router.strong_share: must be between 0 and 1, got 1.5

The settings themselves are :mod:`llmswitch.router.auto.settings`'s; this module only places errors.
"""

from __future__ import annotations

import re
from typing import Any

from llmswitch.config.reading import Section
from llmswitch.errors import ConfigError

_WHERE = re.compile(r"^(router(?:\.[A-Za-z_]+)*)(?::|\s)\s*(.*)$", re.DOTALL)


def is_auto_model(model: str) -> bool:
    """Whether a deployment's ``model`` makes its group an ``auto`` group (``auto`` or ``auto/...``)."""
    return model == "auto" or model.startswith("auto/")


def read_auto_router(params: Section) -> Any:
    """The ``router`` mapping of an auto group's ``litellm_params`` (environment references resolved),
    or ``None``; a setting it cannot use is reported at its line."""
    from llmswitch.router.auto.settings import parse_settings

    if not params.has("router"):
        return None
    path = (*params.path, "router")
    value = params.ctx.resolve_env_deep(params.raw("router"), path)
    try:
        parse_settings(value)
    except ConfigError as exc:
        message = str(exc)
        m = _WHERE.match(message)
        if m is None:
            params.ctx.error(path, message)
        else:
            keys = m.group(1).split(".")[1:]
            where = (*path, *keys)
            # the deepest written key: an unknown rule's name is a key, a bad value is at its value
            params.ctx.error(where, m.group(2) if keys else message)
    return value
