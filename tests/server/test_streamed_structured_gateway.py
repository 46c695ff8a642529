"""The openai SDK's streamed structured outputs through the gateway, on every provider: the
``client.beta.chat.completions.stream(..., response_format=Story)`` helper reads ``parsed`` snapshots
as content arrives and the validated ``Story`` at the end (Anthropic's forced-tool emulation is relayed
as content deltas, as OpenAI's native structured outputs are)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pydantic
import pytest
from gateway_harness import MASTER_KEY, ServedGateway, gateway_config

from llmswitch.testing import FakeUpstream, Reply


class Story(pydantic.BaseModel):
    title: str
    moral: str


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    with ServedGateway(gateway_config(upstream, str(tmp_path_factory.mktemp("so") / "k.db"))) as gateway:
        yield gateway


@pytest.mark.parametrize("group", ["m-openai", "m-anthropic", "m-gemini"])
def test_the_stream_helper_sees_the_story_grow_then_whole(gw: ServedGateway, up: FakeUpstream, group: str) -> None:
    up.script(Reply(text='{"title": "The Tortoise and the Hare", "moral": "Slow and steady"}', chunk_size=6))
    snapshots = []
    messages = [{"role": "user", "content": "A fable"}]
    with (
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0) as c,
        c.beta.chat.completions.stream(model=group, messages=messages, response_format=Story) as s,  # type: ignore[arg-type]
    ):
        for ev in s:
            if ev.type == "content.delta" and ev.parsed is not None:
                snapshots.append(dict(ev.parsed))
        final = s.get_final_completion()
    assert final.choices[0].message.parsed == Story(title="The Tortoise and the Hare", moral="Slow and steady")
    assert len(snapshots) > 3 and snapshots[-1] == {"title": "The Tortoise and the Hare", "moral": "Slow and steady"}
    assert any(snap.get("title", "").startswith("The Tort") and "moral" not in snap for snap in snapshots)
