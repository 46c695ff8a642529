"""Stored responses shared by every worker and instance: a conversation continued through any gateway on the
same store (SQLite shared by the workers of one machine, PostgreSQL by instances), retrieved and deleted
there; a store that fails the write still answers; expired responses are gone."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from gateway_harness import MASTER_KEY, Closing, ServedGateway, gateway_config

from llmswitch.testing import FakeUpstream, Reply


@pytest.fixture(params=["sqlite", "postgres"])
def pair(
    request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path: Path
) -> Iterator[tuple[ServedGateway, ServedGateway]]:
    if request.param == "sqlite":
        store = str(tmp_path / "keys.db")
    else:
        store = request.getfixturevalue("postgres_url")
    config = gateway_config(upstream, store)
    with ServedGateway(config) as a, ServedGateway(config) as b:
        yield a, b


def client(closing: Closing, gw: ServedGateway, key: str = MASTER_KEY) -> openai.OpenAI:
    return closing(openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0))


def test_a_conversation_goes_on_through_another_gateway_on_the_same_store(
    pair: tuple[ServedGateway, ServedGateway], up: FakeUpstream, closing: Closing
) -> None:
    a, b = pair
    up.script(Reply(text="first answer"))
    first = client(closing, a).responses.create(model="m-openai", input="first question")
    # another process: the stored response is read from the store, not from a's memory
    up.script(Reply(text="second answer"))
    second = client(closing, b).responses.create(
        model="m-openai", input="second question", previous_response_id=first.id
    )
    sent = up.requests[-1].json["messages"]
    assert [m["content"] for m in sent] == ["first question", "first answer", "second question"]
    assert second.output_text == "second answer"
    # streamed, continued on a again: the stream's stored copy is written before its last event
    up.script(Reply(text="third answer"))
    with client(closing, a).responses.stream(
        model="m-openai", input="third question", previous_response_id=second.id
    ) as stream:
        third = stream.get_final_response()
    assert client(closing, b).responses.retrieve(third.id).output_text == "third answer"
    items = client(closing, b).responses.input_items.list(third.id, order="asc")
    texts = [_text(i.content) for i in items.data if i.type == "message"]
    assert texts[:2] == ["first question", "first answer"]
    # deleted through b: a no longer has it either
    client(closing, b).responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client(closing, a).responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError) as err:
        client(closing, a).responses.create(model="m-openai", input="x", previous_response_id=first.id)
    assert err.value.body["param"] == "previous_response_id"  # type: ignore[index]


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    assert isinstance(content, list)
    return str(content[0].text)


def test_another_key_cannot_read_it_through_any_gateway(
    pair: tuple[ServedGateway, ServedGateway], up: FakeUpstream, closing: Closing
) -> None:
    a, b = pair
    up.script(Reply(text="private"))
    r = client(closing, a).responses.create(model="m-openai", input="mine")
    other = b.new_key(key_alias="responses-other")
    with pytest.raises(openai.NotFoundError):
        client(closing, b, other).responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client(closing, b, other).responses.delete(r.id)
    assert client(closing, b).responses.retrieve(r.id).output_text == "private"


def test_a_store_that_fails_the_write_still_answers_and_keeps_it_in_memory(
    upstream: FakeUpstream, up: FakeUpstream, tmp_path: Path, closing: Closing, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.db"
    with ServedGateway(gateway_config(upstream, str(path))) as gw:
        up.script(Reply(text="warm"))
        client(closing, gw).responses.create(model="m-openai", input="warm up")  # the store is open
        with sqlite3.connect(path) as db:
            db.execute("DROP TABLE llmswitch_responses")  # every write fails from now on
        up.script(Reply(text="answered anyway"))
        r = client(closing, gw).responses.create(model="m-openai", input="hello")
        assert r.output_text == "answered anyway"
        assert "kept in this process only" in caplog.text
        up.script(Reply(text="continued"))
        more = client(closing, gw).responses.create(model="m-openai", input="more", previous_response_id=r.id)
        assert more.output_text == "continued"


def test_an_expired_response_is_gone(
    upstream: FakeUpstream, up: FakeUpstream, tmp_path: Path, closing: Closing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMSWITCH_RESPONSES_STORE_TTL", "0.3")
    import time

    with ServedGateway(gateway_config(upstream, str(tmp_path / "keys.db"))) as gw:
        up.script(Reply(text="brief"))
        r = client(closing, gw).responses.create(model="m-openai", input="short-lived")
        time.sleep(0.6)
        with pytest.raises(openai.NotFoundError):
            client(closing, gw).responses.retrieve(r.id)


def test_input_items_are_listed_as_openai_lists_them(
    pair: tuple[ServedGateway, ServedGateway], up: FakeUpstream, closing: Closing
) -> None:
    a, b = pair
    up.script(Reply(text="one"))
    first = client(closing, a).responses.create(model="m-openai", input="q1")
    up.script(Reply(text="two"))
    second = client(closing, a).responses.create(model="m-openai", input="q2", previous_response_id=first.id)
    c = client(closing, b)
    newest_first = c.responses.input_items.list(second.id)
    assert [_text(i.content) for i in newest_first.data] == ["q2", "one", "q1"]  # desc by default
    assert newest_first.data[0].content[0].type == "input_text"  # type: ignore[union-attr]
    assert newest_first.data[1].content[0].type == "output_text"  # type: ignore[union-attr]
    oldest_first = c.responses.input_items.list(second.id, order="asc")
    assert [_text(i.content) for i in oldest_first.data] == ["q1", "one", "q2"]
    assert [i.id for i in c.responses.input_items.list(second.id).data] == [i.id for i in newest_first.data]
    # pages of one, after a cursor: what the SDK's auto-pagination walks
    walked = [_text(i.content) for i in c.responses.input_items.list(second.id, order="asc", limit=1)]
    assert walked == ["q1", "one", "q2"]
    page = c.responses.input_items.list(second.id, order="asc", limit=1)
    assert page.has_more is True  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as err:
        c.responses.input_items.list(second.id, limit=101)
    assert err.value.body["param"] == "limit"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as err:
        c.responses.input_items.list(second.id, after="msg_nope")
    assert err.value.body["param"] == "after"  # type: ignore[index]
