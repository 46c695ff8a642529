"""When the pooled client writes a request: the requests of one event-loop pass go out together once the
pass has run (``Pool.send``), and a request that never went out may be sent on another connection, a
POST included. Over real loopback sockets, on asyncio and uvloop."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import uvloop

from llmswitch import _http1, transport
from llmswitch.errors import APIConnectionError
from test_transport import Run, ServerConn, Wire, answer_each, call, response, until, within


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    return uvloop.run if request.param == "uvloop" else asyncio.run


class Recording:
    """A connection's transport that notes every write (the bytes still go out)."""

    def __init__(self, inner: Any, writes: list[bytes]) -> None:
        self._inner = inner
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def idle_connections() -> list[_http1.Connection]:
    return [conn for conns in transport._pool().idle.values() for conn in conns]


async def pooled(wire: Wire, count: int) -> list[_http1.Connection]:
    """``count`` idle keep-alive connections to ``wire``, opened by as many requests at once."""
    go = asyncio.Event()
    handler = wire.handler

    async def held(conn: ServerConn) -> None:
        await go.wait()
        await handler(conn)

    wire.handler = held
    tasks = [asyncio.create_task(transport.send(call(wire.url()), timeout=5)) for _ in range(count)]
    await until(lambda: wire.accepts == count)
    go.set()
    await within(asyncio.gather(*tasks))
    wire.handler = handler
    conns = idle_connections()
    assert len(conns) == count
    return conns


def test_the_requests_of_one_loop_pass_are_written_together_once_it_has_run(run: Run) -> None:
    writes: list[bytes] = []

    async def main() -> None:
        async with Wire(answer_each) as wire:
            for conn in await pooled(wire, 3):
                conn.transport = Recording(conn.transport, writes)  # type: ignore[assignment]
            bodies = [b'{"n":%d}' % i for i in range(3)]
            tasks = [asyncio.create_task(transport.send(call(wire.url(), body), timeout=5)) for body in bodies]
            await asyncio.sleep(0)  # the three tasks ran to their waits, in this pass
            assert writes == []  # nothing went out while the pass ran
            await asyncio.sleep(0)  # the next pass
            assert len(writes) == 3 and [w.endswith(b) for w, b in zip(writes, bodies, strict=True)] == [True] * 3
            answers = await within(asyncio.gather(*tasks))
            assert sorted(json.loads(a.body)["n"] for a in answers) == [2, 2, 2]  # the pooled ones' second requests
            assert wire.accepts == 3

    run(main())


def test_a_post_whose_connection_closes_before_its_write_goes_out_is_sent_once_on_a_new_one(run: Run) -> None:
    """The pooled connection closes while its request waits for the pass to end: nothing was written,
    so the POST is sent on a fresh connection rather than failed, and the server sees it once."""
    seen: list[tuple[int, bytes]] = []

    async def handler(conn: ServerConn) -> None:
        while (req := await conn.request()) is not None:
            seen.append((conn.number, req.body))
            conn.write(response(json.dumps({"conn": conn.number}).encode()))

    async def main() -> None:
        async with Wire(handler) as wire:
            [first] = await pooled(wire, 1)
            task = asyncio.create_task(transport.send(call(wire.url(), b'{"gen":2}'), timeout=5))
            await asyncio.sleep(0)  # queued on the pooled connection
            assert first.busy and not first.sent
            assert first.transport is not None
            first.transport.abort()  # it closes before the pass ends
            raw = await within(task)
            assert json.loads(raw.body) == {"conn": 2}
            assert seen == [(1, b'{"q":1}'), (2, b'{"gen":2}')]

    run(main())


def test_a_post_written_before_its_connection_died_is_not_sent_again(run: Run) -> None:
    """The counterpart: once the queued POST went out, a connection that dies unanswered fails it."""
    seen: list[bytes] = []

    async def handler(conn: ServerConn) -> None:
        while (req := await conn.request()) is not None:
            seen.append(req.body)
            if req.body == b'{"gen":2}':
                conn.writer.transport.abort()
                return
            conn.write(response())

    async def main() -> None:
        async with Wire(handler) as wire:
            [first] = await pooled(wire, 1)
            with pytest.raises(APIConnectionError):
                await within(transport.send(call(wire.url(), b'{"gen":2}'), timeout=5))
            assert first.sent
            assert seen == [b'{"q":1}', b'{"gen":2}'] and wire.accepts == 1

    run(main())
