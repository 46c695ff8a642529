"""A cascade reads a weak stream only as far as its checks need: the opening words when only a refusal
is checked, the whole answer otherwise; what was read is replayed to the client, then the rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from llmswitch import ir
from llmswitch.router.auto.group import REFUSAL_WINDOW, AutoGroup
from llmswitch.router.auto.replay import ReplayStream
from llmswitch.router.auto.scorer import Scorer, ScorerModel
from llmswitch.router.auto.settings import parse_settings


class Upstream:
    """An open stream of ``n`` ten-character text events and a finish, counting what was read."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.read = 0
        self.closed = False
        self.meta = ir.StreamMeta(id="s")
        self.usage = None
        self.context = None

    async def events(self) -> AsyncIterator[ir.StreamEvent]:
        for _ in range(self.n):
            self.read += 1
            yield ir.StreamEvent(text="0123456789")
        self.read += 1
        yield ir.StreamEvent(finish_reason="stop")

    def close(self) -> None:
        self.closed = True


def _group(checks: list[str]) -> AutoGroup:
    settings = parse_settings({"strong_share": 0, "cascade": {"checks": checks}})
    return AutoGroup("auto", settings, Scorer(ScorerModel.load(), "rules"))


async def _replayed(stream: ReplayStream) -> str:
    return "".join([ev.text or "" async for ev in stream.events()])


def test_a_refusal_check_holds_only_the_opening_words() -> None:
    up = Upstream(100)

    async def main() -> str:
        events, rest, answer = await _group(["refusal"])._read_stream(up, ["refusal"])
        assert up.read == REFUSAL_WINDOW // 10  # 1,000 characters upstream; 160 read before the check
        assert rest is not None and len(answer.text) == REFUSAL_WINDOW
        return await _replayed(ReplayStream(up, events, rest))

    assert asyncio.run(main()) == "0123456789" * 100  # the rest follows the held part
    assert up.closed


def test_other_checks_read_to_the_end() -> None:
    up = Upstream(100)
    _, rest, answer = asyncio.run(_group(["refusal", "length"])._read_stream(up, ["refusal", "length"]))
    assert up.read == 101 and rest is None and answer.finish_reason == "stop"
