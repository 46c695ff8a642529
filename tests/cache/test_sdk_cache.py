"""``llmswitch.cache = llmswitch.Cache(...)``: the SDK's calls answered from the cache, whole and streamed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import llmswitch
from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def up(fake: FakeUpstream) -> Iterator[FakeUpstream]:
    fake.reset()
    yield fake
    cache = getattr(llmswitch, "cache", None)
    if isinstance(cache, llmswitch.Cache):
        cache.close()
    llmswitch.cache = None  # type: ignore[attr-defined]


def ask(up: FakeUpstream, text: str, **kwargs: object) -> object:
    return llmswitch.completion(
        "openai/gpt-4o-mini", [{"role": "user", "content": text}], api_base=up.openai_base, api_key="k", **kwargs
    )


@pytest.mark.parametrize("params", [{}, {"type": "disk"}, {"type": "redis", "url": "redis://127.0.0.1:6379/0"}])
def test_a_repeated_call_is_a_hit_whole_and_streamed(
    up: FakeUpstream, params: dict[str, str], tmp_path: object, namespace: str
) -> None:
    if params.get("type") == "disk":
        params = dict(params, disk_cache_dir=str(tmp_path))
    llmswitch.cache = llmswitch.Cache(namespace=namespace, **params)  # type: ignore[attr-defined]
    up.script(Reply(text="cached words", usage=(5, 2)))
    q = f"q {uuid.uuid4().hex}"
    first = ask(up, q)
    second = ask(up, q, user="someone-else", stream_options=None)
    assert first.choices[0].message.content == second.choices[0].message.content == "cached words"  # type: ignore[attr-defined]
    assert second._hidden_params["cache_hit"] is True and second.cost == 0.0  # type: ignore[attr-defined]
    assert "cache_hit" not in first._hidden_params  # type: ignore[attr-defined]
    chunks = list(ask(up, q, stream=True, stream_options={"include_usage": True}))  # type: ignore[call-overload]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "cached words"
    assert chunks[-1].usage.prompt_tokens == 5 and chunks[0]._hidden_params["cache_hit"] is True
    assert len(up.requests) == 1


def test_a_streamed_miss_is_stored_whole(up: FakeUpstream) -> None:
    llmswitch.cache = llmswitch.Cache()  # type: ignore[attr-defined]
    up.script(Reply(text="from a stream", chunk_size=3))
    q = f"q {uuid.uuid4().hex}"
    assert "".join(c.choices[0].delta.content or "" for c in ask(up, q, stream=True) if c.choices) == "from a stream"  # type: ignore[attr-defined]
    assert ask(up, q).choices[0].message.content == "from a stream"  # type: ignore[attr-defined]
    assert len(up.requests) == 1


def test_per_call_controls_and_no_cache_set(up: FakeUpstream) -> None:
    q = f"q {uuid.uuid4().hex}"
    ask(up, q)
    ask(up, q)
    assert len(up.requests) == 2  # llmswitch.cache unset: nothing cached
    llmswitch.cache = llmswitch.Cache()  # type: ignore[attr-defined]
    ask(up, q, cache={"no-store": True})
    ask(up, q)
    ask(up, q, caching=False)
    ask(up, q, cache={"no-cache": True})
    assert ask(up, q)._hidden_params.get("cache_hit") is True  # type: ignore[attr-defined]
    assert len(up.requests) == 6
    assert all("cache" not in r.json and "caching" not in r.json for r in up.requests)
