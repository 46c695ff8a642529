"""The ``llmswitch`` command: a thin shell over the Python API (every option also from the environment).

llmswitch serve [--config FILE] [--host HOST] [--port 4000] [--workers N] [--demo]
llmswitch --config FILE --port 4000 [--num_workers N] ...   (LiteLLM's proxy command line: as serve)
llmswitch config check FILE
llmswitch migrate [--config FILE | --database-url URL]
llmswitch providers
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from llmswitch.cli_litellm import LiteLLMArgsError, is_litellm_style, serve_args


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmswitch", description="One OpenAI-shaped API to every LLM provider.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", default=_env("LLMSWITCH_CONFIG"), help="config file [LLMSWITCH_CONFIG]")
    serve.add_argument(
        "--host",
        default=_env("LLMSWITCH_HOST"),
        help="[LLMSWITCH_HOST] (0.0.0.0 with a master key; without one 127.0.0.1, unless given)",
    )
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

    migrate = sub.add_parser("migrate", help="apply the store's pending migrations, apart from start-up")
    target = migrate.add_mutually_exclusive_group()
    target.add_argument("--config", default=_env("LLMSWITCH_CONFIG"), help="its store [LLMSWITCH_CONFIG]")
    target.add_argument("--database-url", help="this store (default: the config's, else DATABASE_URL)")
    migrate.add_argument("--log-level", default=_env("LLMSWITCH_LOG_LEVEL", "info"), help="[LLMSWITCH_LOG_LEVEL]")

    sub.add_parser("providers", help="list the providers llmswitch knows")
    # its options (and --help) belong to llmswitch.testing, imported only when it runs: no prefix character
    # here, so every argument reaches that parser as it was given
    fake = sub.add_parser(
        "fake-upstream", help="serve the fake OpenAI/Anthropic/Gemini API on a port", add_help=False, prefix_chars="\0"
    )
    fake.add_argument("fake_argv", nargs=argparse.REMAINDER)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    ignored: list[str] = []
    if is_litellm_style(argv):
        try:
            litellm = serve_args(argv)
        except LiteLLMArgsError as exc:
            print(f"llmswitch: {exc}", file=sys.stderr)
            return 2
        argv = ["--version"] if litellm.version else ["serve", *litellm.argv]
        ignored = litellm.ignored
    args = parser.parse_args(argv)
    if args.version:
        from llmswitch import __version__

        print(__version__)
        return 0
    if args.command == "providers":
        from llmswitch.providers import known_providers

        print("\n".join(known_providers()))
        return 0
    if args.command == "fake-upstream":
        from llmswitch.testing._cli import main as fake_upstream

        return fake_upstream(args.fake_argv)
    if args.command == "config" and args.config_command == "check":
        return _config_check(args.file)
    if args.command == "serve":
        return _serve(args, ignored)
    if args.command == "migrate":
        from llmswitch.server.preflight import migrate_command
        from llmswitch.server.serve import log_to_stderr

        log_to_stderr(args.log_level)
        return migrate_command(args.config, args.database_url)
    parser.print_help()
    return 0


def _config_check(path: str) -> int:
    from llmswitch.config import check_config

    cfg, problems, warnings = check_config(path)
    missing: list[str] = []
    if cfg is not None:
        from llmswitch.cache.preflight import missing_for_cache
        from llmswitch.server.preflight import backends_of, missing_extras

        # serve would refuse to start: an error here too
        missing = missing_extras(backends_of(cfg)) + missing_for_cache(cfg)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for p in [*problems, *missing]:
        print(f"error: {p}", file=sys.stderr)
    if problems or missing or cfg is None:
        print(f"{path}: {len(problems) + len(missing)} problem(s)", file=sys.stderr)
        return 1
    groups = sorted({d.model_name for d in cfg.deployments})
    print(f"{path}: ok ({cfg.form} form, {len(cfg.deployments)} deployments, model groups: {', '.join(groups)})")
    return 0


def _serve(args: argparse.Namespace, ignored: list[str]) -> int:
    from llmswitch.server import serve_edge
    from llmswitch.server.serve import log_to_stderr, run

    log_to_stderr(args.log_level)  # JSON lines from the first: every line of the gateway's log parses
    say = logging.getLogger("llmswitch.cli")
    if ignored:
        say.warning("ignoring LiteLLM option(s) that have no meaning here: %s", ", ".join(ignored))

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
        say.info(
            "llmswitch demo: models demo-openai, demo-anthropic, demo-gemini on http://%s:%d (master key sk-demo-master)",
            args.host or "0.0.0.0",
            args.port,
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
