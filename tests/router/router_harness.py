"""Helpers for the router's behaviour tests: a fake clock with a sleep that advances it, deployment rows
pointing at a fake upstream, and requests.

The fake clock only moves when the router sleeps (backoff, a provider's wait) or when a test moves it, so
cooldowns and retry-after windows are stepped through without waiting, and every run is the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from llmswitch import ir, transport
from llmswitch.testing import FakeUpstream

T = TypeVar("T")


class FakeTime:
    """``clock()`` and ``await sleep(s)`` for a Router: sleeping advances the clock, instantly."""

    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def row(
    up: FakeUpstream,
    group: str,
    model: str,
    *,
    provider: str = "openai",
    key: str | None = "sk-test",
    info: dict[str, Any] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """A LiteLLM ``model_list`` row reaching ``up`` in ``provider``'s dialect."""
    base = {"openai": up.openai_base, "anthropic": up.anthropic_base, "gemini": up.gemini_base}[provider]
    lp: dict[str, Any] = {"model": f"{provider}/{model}", "api_base": base, **params}
    if key is not None:
        lp["api_key"] = key
    return {"model_name": group, "litellm_params": lp, "model_info": dict(info or {})}


def chat_request(group: str, text: str = "hello", *, stream: bool = False) -> ir.Request:
    return ir.Request(model=group, messages=[ir.Message(role="user", content=[ir.TextPart(text=text)])], stream=stream)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run on a fresh loop and close llmswitch's HTTP session of that loop afterwards."""

    async def main() -> T:
        try:
            return await coro
        finally:
            await transport.close_session()

    return asyncio.run(main())


def models_called(up: FakeUpstream) -> list[str | None]:
    return [r.model for r in up.requests]
