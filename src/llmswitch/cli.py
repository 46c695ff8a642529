"""The ``llmswitch`` command: a thin shell over the Python API (every option also from the environment).

llmswitch serve [--config FILE] [--host 0.0.0.0] [--port 4000] [--workers N] [--demo]
llmswitch config check FILE
llmswitch providers
"""

from __future__ import annotations

import argparse
import os
import sys


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmswitch", description="One OpenAI-shaped API to every LLM provider.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default=_env("LLMSWITCH_CONFIG"), help="config file [LLMSWITCH_CONFIG]")
    serve.add_argument("--host", default=_env("LLMSWITCH_HOST", "0.0.0.0"), help="[LLMSWITCH_HOST] (0.0.0.0)")
    serve.add_argument(
        "--port", type=int, default=int(_env("LLMSWITCH_PORT", "4000") or 4000), help="[LLMSWITCH_PORT] (4000)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=int(_env("LLMSWITCH_WORKERS", "1") or 1),
        help="processes [LLMSWITCH_WORKERS] (1)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        default=_env("LLMSWITCH_DEMO", "") in ("1", "true"),
        help="serve demo models from a built-in fake upstream, offline [LLMSWITCH_DEMO]",
    )
    serve.add_argument("--log-level", default=_env("LLMSWITCH_LOG_LEVEL", "info"), help="[LLMSWITCH_LOG_LEVEL] (info)")
    serve.add_argument(
        "--graceful-seconds",
        type=float,
        default=float(_env("LLMSWITCH_GRACEFUL_SECONDS", "30") or 30),
        help="on SIGTERM, how long in-flight requests may finish [LLMSWITCH_GRACEFUL_SECONDS] (30)",
    )
    from llmswitch.server import serve_edge  # limits, timeouts, TLS: --head-timeout, --ssl-certfile, ...

    serve_edge.add_arguments(serve)

    config = sub.add_parser("config", help="configuration tools")
    csub = config.add_subparsers(dest="config_command")
    check = csub.add_parser("check", help="validate a config file (LiteLLM or native form)")
    check.add_argument("file")

    sub.add_parser("providers", help="list the providers llmswitch knows")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from llmswitch import __version__

        print(__version__)
        return 0
    if args.command == "providers":
        from llmswitch.providers import known_providers

        print("\n".join(known_providers()))
        return 0
    if args.command == "config" and args.config_command == "check":
        return _config_check(args.file)
    if args.command == "serve":
        return _serve(args)
    parser.print_help()
    return 0


def _config_check(path: str) -> int:
    from llmswitch.config import check_config

    cfg, problems, warnings = check_config(path)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems or cfg is None:
        print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    groups = sorted({d.model_name for d in cfg.deployments})
    print(f"{path}: ok ({cfg.form} form, {len(cfg.deployments)} deployments, model groups: {', '.join(groups)})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from llmswitch.server import serve_edge
    from llmswitch.server.serve import run

    try:
        edge = serve_edge.settings(args)
    except ValueError as exc:
        print(f"llmswitch: not starting: {exc}", file=sys.stderr)
        return 2

    if args.config and not args.demo:
        # refuse to start on an invalid config, with the same message `config check` gives
        from llmswitch.config import check_config

        cfg, problems, _ = check_config(args.config)
        if problems or cfg is None:
            for p in problems:
                print(f"error: {p}", file=sys.stderr)
            print(f"llmswitch: not starting: {args.config} has {len(problems)} problem(s)", file=sys.stderr)
            return 2
    if args.demo:
        print(
            f"llmswitch demo: models demo-openai, demo-anthropic, demo-gemini on http://{args.host}:{args.port} "
            "(master key sk-demo-master)",
            file=sys.stderr,
        )
    run(
        config_path=args.config,
        host=args.host,
        port=args.port,
        workers=args.workers,
        demo=args.demo,
        log_level=args.log_level,
        graceful_seconds=args.graceful_seconds,
        **edge,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
