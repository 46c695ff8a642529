"""``llmswitch fake-upstream``: the fake OpenAI / Anthropic / Gemini API as a process, on a fixed port.

    llmswitch fake-upstream --port 4010 --latency 0.2 --fail-every 5

serves until SIGTERM or SIGINT, after printing one line with its base URLs; a gateway config points at
it like at any provider (``examples/fake-upstream.yaml``). Every option also comes from the
environment (``LLMSWITCH_FAKE_PORT`` …), so the config and the process can read the same variable.
Nothing is scripted: each request gets the fake's default answer (an echo, a tool call when tools are
sent, JSON for a response format), after the faults asked for here.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys

from llmswitch.testing._recorded import RecordedRequest
from llmswitch.testing._reply import Reply
from llmswitch.testing._unscripted import fill_reply
from llmswitch.testing._upstream import FakeUpstream

DEFAULT_PORT = 4010


def _env(name: str, default: str) -> str:
    # a string default goes through the option's type like a command-line value: a bad one is a usage error
    return os.environ.get(f"LLMSWITCH_FAKE_{name}", default)


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="[LLMSWITCH_FAKE_HOST] (127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=_env("PORT", str(DEFAULT_PORT)), help=f"[LLMSWITCH_FAKE_PORT] ({DEFAULT_PORT})"
    )
    p.add_argument(
        "--latency",
        type=float,
        default=_env("LATENCY", "0"),
        help="seconds before each answer [LLMSWITCH_FAKE_LATENCY]",
    )
    p.add_argument(
        "--ttft",
        type=float,
        default=_env("TTFT", "0"),
        help="seconds before a stream's first byte [LLMSWITCH_FAKE_TTFT]",
    )
    p.add_argument(
        "--chunk-delay",
        type=float,
        default=_env("CHUNK_DELAY", "0"),
        help="seconds between stream chunks [LLMSWITCH_FAKE_CHUNK_DELAY]",
    )
    p.add_argument(
        "--fail-every",
        type=int,
        default=_env("FAIL_EVERY", "0"),
        help="answer every Nth request with --fail-status (0: never) [LLMSWITCH_FAKE_FAIL_EVERY]",
    )
    p.add_argument(
        "--fail-status",
        type=int,
        default=_env("FAIL_STATUS", "503"),
        help="the status of those failures, in the caller's error format [LLMSWITCH_FAKE_FAIL_STATUS] (503)",
    )
    p.add_argument(
        "--retry-after",
        type=float,
        default=os.environ.get("LLMSWITCH_FAKE_RETRY_AFTER"),
        help="seconds the failures ask the client to wait (Retry-After) [LLMSWITCH_FAKE_RETRY_AFTER]",
    )
    return p


def build(args: argparse.Namespace) -> FakeUpstream:
    """The fake upstream the options describe (not started)."""
    for name in ("latency", "ttft", "chunk_delay", "retry_after"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ValueError(f"--{name.replace('_', '-')} must not be negative")
    if args.fail_every < 0 or not 400 <= args.fail_status <= 599:
        raise ValueError("--fail-every must be 0 or more, --fail-status an HTTP error status (400-599)")
    default = Reply(latency=args.latency, ttft=args.ttft, chunk_delay=args.chunk_delay)
    up = FakeUpstream(default=default, host=args.host, port=args.port)
    if args.fail_every:
        failure = Reply(status=args.fail_status, retry_after=args.retry_after, latency=args.latency)
        counter = itertools.count(1)
        every = args.fail_every

        def respond(rec: RecordedRequest) -> Reply:
            return failure if next(counter) % every == 0 else fill_reply(default, rec.chat)

        up.responder = respond
    return up


async def serve(up: FakeUpstream) -> None:
    """Serve until SIGTERM or SIGINT, after printing one line with the base URLs."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with up:
        print(
            f"llmswitch fake-upstream on {up.url}: OpenAI {up.openai_base}, Anthropic {up.anthropic_base}, "
            f"Gemini {up.gemini_base}",
            flush=True,
        )
        await stop.wait()


def main(argv: list[str], prog: str = "llmswitch fake-upstream") -> int:
    """Run ``llmswitch fake-upstream`` with ``argv`` (its options only); the exit status."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    try:
        up = build(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(serve(up))
    except OSError as exc:
        print(f"{prog}: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
