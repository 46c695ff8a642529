"""Latency each guardrail adds to one request, against the goal: p50 < 1 ms for the regex/checksum ones
on a 2 KB prompt.

In-process, no network: each guardrail's check runs N times on the same 2 KB prompt (prose with an
e-mail address, a phone number, a card number and an AWS key in it, so masking work is included), and
the sanitizer on a 2 KB HTML answer. Also timed: the whole pre_call of examples/guardrails.yaml's
guardrails (masking personal data and secrets of a decoded request in place), a streamed answer's
per-event cost through the look-back window, and the per-request cost when no guardrail is configured.

    .venv/bin/python bench/guardrails_latency.py [--n 2000] [--json out.json]

Prints p50 and p99 µs per check; exits 0 when every regex/checksum guardrail's p50 is under 1 ms.
A benchmark, not a test: CI does not run it.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from llmswitch import ir
from llmswitch.guardrails import from_config
from llmswitch.guardrails.base import Context
from llmswitch.guardrails.build import GuardrailSpec, build_guardrail
from llmswitch.guardrails.run import StreamGuard
from llmswitch.guardrails.secrets import plugins_available

PROSE = (
    "We are migrating the billing service to the new cluster next week and need a short plan for the "
    "cut-over: which steps come first, how long the read-only window lasts, and what we tell customers. "
    "The current setup runs three replicas behind the load balancer with a nightly batch that reconciles "
    "invoices against the payment provider's reports. "
)
PROMPT = (
    PROSE * 3
    + "Contact the on-call engineer at dana.whitfield@example.com or +1 (415) 555-0132. "
    + "A customer disputes a charge on card 4111 1111 1111 1111. "
    + "The old deploy script still has AKIAIOSFODNN7EXAMPLE in it. "
    + PROSE * 3
)[:2048]
ANSWER_HTML = (
    "<p>Here is the plan:</p><ol><li><b>Freeze</b> writes</li><li>Copy data</li></ol>"
    '<a href="https://example.com/runbook">runbook</a><img src=x onerror="alert(1)"><script>x()</script>'
    + "<p>"
    + PROSE * 5
    + "</p>"
)[:2048]

REGEX_GUARDRAILS: dict[str, GuardrailSpec] = {
    "personal data (presidio)": GuardrailSpec("pii", "presidio", ("pre_call",)),
    "personal data + secrets, builtin": GuardrailSpec(
        "pii-s", "presidio", ("pre_call",), params={"secrets": "mask", "secrets_detector": "builtin"}
    ),
    "secrets, builtin (hide-secrets)": GuardrailSpec(
        "s", "hide-secrets", ("pre_call",), params={"detector": "builtin"}
    ),
    "banned keywords + regexes": GuardrailSpec(
        "w",
        "litellm_content_filter",
        ("pre_call",),
        params={
            "blocked_words": ["project falcon", "internal only", "confidential draft"],
            "patterns": [{"pattern": r"\bEMP-\d{5}\b", "name": "employee id", "action": "MASK"}],
        },
    ),
    "length limit": GuardrailSpec("l", "length", ("pre_call",), params={"max_input_tokens": 4000}),
}
OTHER_GUARDRAILS: dict[str, GuardrailSpec] = {
    "secrets with detect-secrets plugins": GuardrailSpec(
        "sd", "hide-secrets", ("pre_call",), params={"detector": "detect-secrets"}
    ),
    "HTML sanitizer (nh3), 2 KB answer": GuardrailSpec("h", "html_sanitizer", ("post_call",)),
}


def timed(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    for _ in range(min(200, n)):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


def request() -> ir.Request:
    return ir.Request(model="m", messages=[ir.Message(role="user", content=[ir.TextPart(PROMPT)])])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    results: dict[str, dict[str, float]] = {}
    print(f"load average {os.getloadavg()}, prompt {len(PROMPT)} characters, n={args.n}")

    def report(name: str, p50: float, p99: float) -> None:
        results[name] = {"p50_us": round(p50, 1), "p99_us": round(p99, 1)}
        print(f"  {name:<44} p50 {p50:8.1f} µs   p99 {p99:8.1f} µs")

    ok = True
    print("regex/checksum guardrails (goal: p50 < 1000 µs)")
    for name, spec in REGEX_GUARDRAILS.items():
        g = build_guardrail(spec)
        ctx = Context(phase="input")
        p50, p99 = timed(lambda g=g, ctx=ctx: g.check_now([PROMPT], ctx), args.n)
        report(name, p50, p99)
        ok &= p50 < 1000
    print("others")
    for name, spec in OTHER_GUARDRAILS.items():
        if "detect-secrets" in name and not plugins_available():
            print(f"  {name:<44} skipped: detect-secrets not installed")
            continue
        g = build_guardrail(spec)
        text = ANSWER_HTML if spec.guardrail == "html_sanitizer" else PROMPT
        ctx = Context(phase="output" if spec.guardrail == "html_sanitizer" else "input")
        p50, p99 = timed(lambda g=g, text=text, ctx=ctx: g.check_now([text], ctx), args.n)
        report(name, p50, p99)

    print("whole runs")
    example = from_config(
        [
            {
                "guardrail_name": "mask",
                "litellm_params": {"guardrail": "presidio", "mode": "pre_call", "default_on": True, "secrets": "mask"},
            },
            {
                "guardrail_name": "html",
                "litellm_params": {"guardrail": "html_sanitizer", "mode": "post_call", "default_on": True},
            },
        ]
    )
    base = request()

    def pre_call() -> None:
        run = example.start()
        assert run is not None
        asyncio.run(run.pre_call(copy.deepcopy(base)))

    loop_cost = timed(lambda: asyncio.run(asyncio.sleep(0)), args.n)[0]
    copy_cost = timed(lambda: copy.deepcopy(base), args.n)[0]
    p50, p99 = timed(pre_call, args.n)
    report("examples/guardrails.yaml pre_call (net)", p50 - loop_cost - copy_cost, p99 - loop_cost - copy_cost)

    pieces = [PROMPT[i : i + 16] for i in range(0, len(PROMPT), 16)]

    def stream() -> None:
        run = example.start()
        assert run is not None
        guard = StreamGuard(run)
        for piece in pieces:
            guard.feed(ir.StreamEvent(text=piece))
        guard.feed(ir.StreamEvent(finish_reason="stop"))

    p50, p99 = timed(stream, max(args.n // 10, 50))
    report(f"stream of {len(pieces)} events, whole answer", p50, p99)
    results["stream per event"] = {"p50_us": round(p50 / len(pieces), 1)}
    print(f"  {'... per event':<44} p50 {p50 / len(pieces):8.1f} µs")

    none = from_config([{"guardrail_name": "opt-in", "litellm_params": {"guardrail": "presidio"}}])
    p50, p99 = timed(lambda: none.start(), args.n)
    report("configured but none applies (start)", p50, p99)
    gw_guardrails = None
    p50, p99 = timed(lambda: gw_guardrails is not None, args.n)
    report("none configured (the gateway's test)", p50, p99)
    print("goal met" if ok else "goal NOT met")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load": os.getloadavg(), "results": results, "goal_met": ok}, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
