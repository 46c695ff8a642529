"""Load a config file in either form: detect the form, read it, and collect every problem at once.

>>> result = check_config("config.yaml")            # doctest: +SKIP
>>> for problem in result.problems + result.warnings:  # doctest: +SKIP
...     print(problem)
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import NamedTuple

from llmswitch.config import litellm_keys
from llmswitch.config.guardrails import read_guardrails
from llmswitch.config.litellm_form import read_litellm
from llmswitch.config.model import GatewayConfig
from llmswitch.config.native_form import TOP_LEVEL as NATIVE_TOP_LEVEL
from llmswitch.config.native_form import read_native
from llmswitch.config.positioned_yaml import YAMLSyntaxError, load_positioned
from llmswitch.config.problems import ConfigFileError, Problem, format_key_path
from llmswitch.config.reading import Context, Form, Section, describe

LITELLM_TOP_LEVEL = (
    "model_list", "litellm_settings", "router_settings", "general_settings", "environment_variables", "credential_list",
    "guardrails",
    *sorted(litellm_keys.TOP_LEVEL),
)  # fmt: skip


class ConfigCheck(NamedTuple):
    """What ``llmswitch config check`` reports: the config (``None`` if any problem), problems, warnings."""

    config: GatewayConfig | None
    problems: list[Problem]
    warnings: list[Problem]


def load_config(path: str | os.PathLike[str], *, env: MutableMapping[str, str] | None = None) -> GatewayConfig:
    """Load a gateway config file, LiteLLM's ``config.yaml`` or the native form (detected from its keys).

    ``env`` is where ``os.environ/NAME`` and ``${NAME}`` are read, and where LiteLLM's
    ``environment_variables`` are written first (as LiteLLM does); it defaults to ``os.environ``.
    Raises :class:`ConfigFileError` listing every problem; warnings are on ``GatewayConfig.warnings``.

    >>> cfg = load_config("config.yaml")  # doctest: +SKIP
    >>> [d.model_name for d in cfg.deployments]  # doctest: +SKIP
    ['gpt-4o', 'gpt-4o', 'claude']
    """
    result = check_config(path, env=env)
    if result.config is None:
        raise ConfigFileError(result.problems, result.warnings)
    return result.config


def check_config(path: str | os.PathLike[str], *, env: MutableMapping[str, str] | None = None) -> ConfigCheck:
    """Like :func:`load_config`, but returns the problems instead of raising (for ``llmswitch config check``).

    >>> config, problems, warnings = check_config("config.yaml")  # doctest: +SKIP
    >>> print("\\n".join(map(str, problems)) or "ok")  # doctest: +SKIP
    config.yaml:14: model_list[2].litellm_params.rpm: expected an integer, got 'fast'
    """
    file = os.fspath(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        return ConfigCheck(None, [Problem(f"cannot read the file: {exc.strerror or exc}", file)], [])
    except UnicodeDecodeError as exc:
        return ConfigCheck(None, [Problem(f"not UTF-8 text: {exc.reason} at byte {exc.start}", file)], [])
    return parse_config(text, file, env=env)


def parse_config(text: str, file: str = "<config>", *, env: MutableMapping[str, str] | None = None) -> ConfigCheck:
    """:func:`check_config` for text already in memory; ``file`` is the name problems are reported under."""
    try:
        doc = load_positioned(text)
    except YAMLSyntaxError as exc:
        return ConfigCheck(None, [Problem(exc.message, file, exc.line, exc.column)], [])
    ctx = Context(file, doc.marks, os.environ if env is None else env, "litellm")
    for path, (line, column), message in doc.problems:
        ctx.errors.append(Problem(message, file, line, column, format_key_path(path)))
    form = _detect_form(ctx, doc.data)
    config = None
    if form is not None:
        ctx.form = form
        root = Section(ctx, (), doc.data)
        guardrails = read_guardrails(ctx, root) if form == "litellm" else ()
        deployments, router, server = (read_litellm if form == "litellm" else read_native)(ctx, root)
        if not deployments and not ctx.errors:
            ctx.warn((), "no deployments: every request will be answered 404 (model not found)")
        config = GatewayConfig(
            tuple(deployments),
            router,
            server,
            tuple(_in_file_order(ctx.warnings)),
            file,
            form,
            guardrails,
            cache=ctx.cache,
        )
    problems = _in_file_order(ctx.errors)
    return ConfigCheck(None if problems else config, problems, _in_file_order(ctx.warnings))


def _detect_form(ctx: Context, data: object) -> Form | None:
    """``model_list`` and LiteLLM's sections mean LiteLLM; ``models``/``router``/``server``/``redis`` native."""
    if data is None:
        ctx.error((), "the file is empty: expected 'model_list:' (LiteLLM form) or 'models:' (native form)")
        return None
    if not isinstance(data, dict):
        ctx.error((), f"expected a mapping at the top of the file, got {describe(data)}")
        return None
    litellm = [k for k in data if k in LITELLM_TOP_LEVEL]
    native = [k for k in data if k in NATIVE_TOP_LEVEL]
    if litellm and native:
        first_line = (ctx.marks.key_at((litellm[0],)) or ("?",))[0]
        ctx.error(
            (native[0],),
            f"native-form key in a LiteLLM-form file ({litellm[0]!r} at line {first_line}); "
            "write one form per file: 'model_list' with LiteLLM's sections, or 'models' with router/server",
            at_key=True,
        )
        return None
    if native:
        return "native"
    if litellm:
        return "litellm"
    ctx.error((), "no known top-level key: expected 'model_list:' (LiteLLM form) or 'models:' (native form)")
    return None


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))
