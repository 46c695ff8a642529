"""Response headers from a :class:`Decision`, in the form OpenAI's API sends them.

    >>> from llmswitch.limits import Window
    >>> rate_limit_headers(Decision(True, requests=Window(60, 59, 1.0), tokens=Window(150000, 149984, 0.0064)))
    {'x-ratelimit-limit-requests': '60', 'x-ratelimit-remaining-requests': '59', 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-limit-tokens': '150000', 'x-ratelimit-remaining-tokens': '149984', 'x-ratelimit-reset-tokens': '7ms'}

Reset times are durations written as OpenAI (and Go) write them: ``"20ms"``, ``"1.5s"``, ``"6m0s"``.
A refused request also gets ``retry-after`` (whole seconds, rounded up, as RFC 9110 wants) and
``retry-after-ms`` (which the openai SDKs prefer), both rounded up so a client that waits that long is
admitted.
"""

from __future__ import annotations

import math

from llmswitch.limits.results import Decision


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers for a response, plus ``retry-after`` when ``decision`` refused."""
    headers: dict[str, str] = {}
    for name, window in (("requests", decision.requests), ("tokens", decision.tokens)):
        if window is not None:
            headers[f"x-ratelimit-limit-{name}"] = str(window.limit)
            headers[f"x-ratelimit-remaining-{name}"] = str(window.remaining)
            headers[f"x-ratelimit-reset-{name}"] = go_duration(window.reset_s)
    if not decision.allowed and decision.retry_after_s is not None:
        ms = max(0, math.ceil(decision.retry_after_s * 1000))
        headers["retry-after"] = str(math.ceil(ms / 1000))
        headers["retry-after-ms"] = str(ms)
    return headers


def go_duration(seconds: float) -> str:
    """A duration as Go prints one (OpenAI's reset headers), to the millisecond, rounded up.

    >>> go_duration(0.0201), go_duration(1.5), go_duration(360), go_duration(3725.25)
    ('21ms', '1.5s', '6m0s', '1h2m5.25s')
    """
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))  # the epsilon keeps 0.02 s (0.0200000001 in binary) at 20ms
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return f"{out}{secs}s"
