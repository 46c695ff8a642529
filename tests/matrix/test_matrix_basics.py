"""The matrix's floor: a plain question from every client reaches every family in its own valid form and
the answer comes back whole and streamed (each feature family's module builds on this)."""

from __future__ import annotations

import pytest
from harness import Seen, ServedGateway, ask, matrix, plain, the_request

from llmswitch.testing import FakeUpstream, Reply

TEXT = "Sunny — 24 °C ✓"


@pytest.mark.parametrize(("client", "family", "stream"), list(matrix()))
def test_a_plain_question(gw: ServedGateway, up: FakeUpstream, client: str, family: str, stream: bool) -> None:
    up.script(Reply(text=TEXT, usage=(7, 5), chunk_size=4))
    seen: Seen = ask(client, f"m-{family}", plain("Weather?"), stream=stream, gw=gw, up=up)
    assert seen.status == 200, seen.error
    assert seen.text == TEXT
    rec = the_request(up, family)
    assert rec.text == "Weather?"
