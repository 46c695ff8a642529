"""A deployment's provider parameters (``litellm_params`` beyond its fields, or the native form's ``params``).

They are passed to the provider as written, as LiteLLM does, so a misspelled completion setting would
otherwise change nothing and say nothing. Every key outside LiteLLM's documented set gets a positioned
warning, with a did-you-mean when it looks like a typo of a known one:

    >>> from llmswitch.config.positioned_yaml import Marks
    >>> from llmswitch.config.reading import Context
    >>> ctx = Context("config.yaml", Marks(), {}, "litellm")
    >>> warn_unknown_param(ctx, ("model_list", 0, "litellm_params", "temprature"), "temprature")
    >>> str(ctx.warnings[0])
    "config.yaml: model_list[0].litellm_params.temprature: unknown key, passed to the provider as is; did you mean 'temperature'?"
"""

from __future__ import annotations

from collections.abc import Collection

from llmswitch.config.litellm_keys import DEPLOYMENT_PARAMS
from llmswitch.config.problems import KeyPath
from llmswitch.config.reading import Context, suggest


def warn_unknown_param(ctx: Context, path: KeyPath, key: str, fields: Collection[str] = ()) -> None:
    """Warn (at the key's line) unless ``key`` is a known provider parameter; ``fields`` are the
    deployment's own keys, offered as did-you-mean candidates too (``api_bse`` -> ``api_base``)."""
    if key in DEPLOYMENT_PARAMS:
        return
    hint = suggest(key, DEPLOYMENT_PARAMS | set(fields))
    ctx.warn(path, f"unknown key, passed to the provider as is{hint}", at_key=True)
