"""The ``llmswitch`` command: a thin shell over the Python API."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmswitch", description="One OpenAI-shaped API to every LLM provider.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("providers", help="list the providers llmswitch knows")
    args = parser.parse_args(argv)
    if args.version:
        from llmswitch import __version__

        print(__version__)
        return 0
    if args.command == "providers":
        from llmswitch.providers import known_providers

        print("\n".join(known_providers()))
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
