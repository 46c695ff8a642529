"""LiteLLM's proxy command line (``litellm --config config.yaml --port 4000``) as ``llmswitch serve`` arguments.

Container setups and scripts written for LiteLLM call ``llmswitch --config config.yaml --port 4000
--num_workers 4``; :func:`serve_args` turns such a command line into ours. Options with an equivalent
are mapped; the ones that only tune LiteLLM are reported back to be logged as ignored; the few that
would change what the process is for (a one-off health check or test) are refused, since serving
instead would be a surprise.

    >>> serve_args(["--config", "c.yaml", "--port", "4000", "--num_workers", "2", "--drop_params"])
    LiteLLMArgs(argv=['--config', 'c.yaml', '--port', '4000', '--workers', '2'], ignored=['--drop_params'], version=False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

# LiteLLM option -> ours (each takes a value)
_MAPPED = {
    "--config": "--config",
    "-c": "--config",
    "--host": "--host",
    "--port": "--port",
    "--num_workers": "--workers",
    # our own serve options, so `llmswitch --config c.yaml --workers 2` means the same as with `serve`
    "--workers": "--workers",
    "--log-level": "--log-level",
    "--graceful-seconds": "--graceful-seconds",
    "--ssl_keyfile_path": "--ssl-keyfile",
    "--ssl_certfile_path": "--ssl-certfile",
}
# LiteLLM flags (no value) -> our arguments
_FLAGS: dict[str, list[str]] = {
    "--debug": ["--log-level", "debug"],
    "--detailed_debug": ["--log-level", "debug"],
    "--demo": ["--demo"],
}
# LiteLLM flags with no value that llmswitch ignores: without this list the next option would be taken
# for their value
_IGNORED_FLAGS = frozenset(
    {
        "--drop_params",
        "--add_function_to_prompt",
        "--local",
        "--use_queue",
        "--run_gunicorn",
        "--run_hypercorn",
        "--save",
        "--test_async",
        "--use_prisma_migrate",
        "--use_prisma_db_push",
        "--iam_token_db_auth",
    }
)
_REFUSED = {
    "--ciphers": "the TLS listener uses Python's default TLS settings; choose ciphers in a TLS proxy in front",
    "--health": "there is no one-off health check command; GET /health on the running gateway",
    "--test": "there is no one-off test command; send a request to the running gateway",
    "--skip_server_startup": "to run the migrations alone, use `llmswitch migrate --config FILE`",
}


class LiteLLMArgsError(ValueError):
    """A LiteLLM option that llmswitch will not take (the message says why and what to do instead)."""


@dataclass
class LiteLLMArgs:
    argv: list[str] = field(default_factory=list)
    """Arguments for ``llmswitch serve``."""
    ignored: list[str] = field(default_factory=list)
    """The LiteLLM options given that have no meaning here (their values left out)."""
    version: bool = False
    """``--version``/``-v``: print the version instead."""


def is_litellm_style(argv: Sequence[str]) -> bool:
    """A command line that starts with an option other than our own top-level ones (help, version)."""
    return bool(argv) and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")


def serve_args(argv: Sequence[str]) -> LiteLLMArgs:
    """``llmswitch serve`` arguments for a LiteLLM proxy command line; :class:`LiteLLMArgsError` for an
    option refused (see the module's docstring) or a value missing."""
    out = LiteLLMArgs()
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        name, eq, inline = token.partition("=")
        if name in _REFUSED:
            raise LiteLLMArgsError(f"{name}: {_REFUSED[name]}")
        if name in ("--version", "-v"):
            out.version = True
        elif name in _MAPPED:
            if eq:
                value = inline
            elif i < len(argv):
                value = argv[i]
                i += 1
            else:
                raise LiteLLMArgsError(f"{name} needs a value")
            out.argv += [_MAPPED[name], value]
        elif name in _FLAGS:
            out.argv += _FLAGS[name]
        elif name.startswith("-"):
            out.ignored.append(name)
            # an unknown option's value, if it has one, goes with it
            if not eq and name not in _IGNORED_FLAGS and i < len(argv) and not argv[i].startswith("-"):
                i += 1
        else:
            raise LiteLLMArgsError(f"unexpected argument {token!r}")
    return out
