"""``llmswitch serve``'s edge options: the server's limits and timeouts, and TLS (docs/edge.md).

Each option has an ``LLMSWITCH_*`` variable; a flag wins over its variable, and either over the default of
``h1limits.ServerLimits``.

    llmswitch serve --head-timeout 10 --max-connections 2000 --ssl-certfile cert.pem --ssl-keyfile key.pem
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from llmswitch.server.h1limits import ServerLimits
from llmswitch.server.tls import TLSFiles

# (flag, ServerLimits field, type, what it bounds)
_LIMITS: list[tuple[str, str, type, str]] = [
    ("--max-connections", "max_connections", int, "open connections per worker; more are closed at once"),
    ("--max-headers", "max_headers", int, "header fields in a request head (431 past it)"),
    ("--max-head-bytes", "max_head_bytes", int, "bytes of a request head, and of a body's trailers (431)"),
    ("--head-timeout", "head_timeout", float, "seconds from a request's first byte to the end of its head (408)"),
    ("--body-timeout", "body_timeout", float, "seconds between request body bytes the app waits for (408)"),
    ("--write-timeout", "write_timeout", float, "seconds a client may leave a response unread before it is dropped"),
    ("--keep-alive-timeout", "keep_alive_timeout", float, "seconds an idle connection stays open"),
]
_TLS: list[tuple[str, str]] = [
    ("--ssl-certfile", "the certificate chain (PEM): serve HTTPS"),
    ("--ssl-keyfile", "its private key (PEM), unless it is in the certfile"),
    ("--ssl-keyfile-password", "the private key's password"),
    ("--ssl-ca-certs", "CA bundle: clients must present a certificate it signed (mutual TLS)"),
]


def _env_name(flag: str) -> str:
    return "LLMSWITCH_" + flag[2:].upper().replace("-", "_")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The edge options, in a group of ``parser``'s help."""
    defaults = ServerLimits()
    group = parser.add_argument_group("limits, timeouts and TLS (docs/edge.md)")
    for flag, field, kind, text in _LIMITS:
        env = _env_name(flag)
        # a string default goes through ``type`` too: a bad variable is reported like a bad flag
        group.add_argument(
            flag,
            type=kind,
            default=os.environ.get(env, getattr(defaults, field)),
            help=f"{text} [{env}] ({getattr(defaults, field)})",
        )
    for flag, text in _TLS:
        env = _env_name(flag)
        group.add_argument(flag, default=os.environ.get(env) or None, help=f"{text} [{env}]")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """``limits`` and ``tls`` for :func:`llmswitch.server.serve.run`; ValueError naming a bad value."""
    limits = ServerLimits(**{field: getattr(args, field) for _, field, _, _ in _LIMITS})
    tls = None
    if args.ssl_certfile:
        tls = TLSFiles(args.ssl_certfile, args.ssl_keyfile, args.ssl_keyfile_password, args.ssl_ca_certs)
    elif args.ssl_keyfile or args.ssl_ca_certs:
        raise ValueError("--ssl-keyfile and --ssl-ca-certs need --ssl-certfile")
    return {"limits": limits, "tls": tls}
