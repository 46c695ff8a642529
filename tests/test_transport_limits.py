"""The client's limits, over real loopback sockets: response caps (a gzip bomb, 50,000 headers), Happy
Eyeballs and the connect timeout (a black-holed address on loopback), the DNS cache's lifetime and the
per-origin connection cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import zlib
from collections.abc import Iterator

import pytest
import uvloop

from llmswitch import _http1, _http1_pool, transport
from llmswitch.errors import APIConnectionError, APIResponseValidationError, APITimeoutError
from test_transport import Run, ServerConn, Wire, answer_each, call, response, within


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    return uvloop.run if request.param == "uvloop" else asyncio.run


# ---------------------------------------------------------------- response caps


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """320 MiB of zeros, gzip-compressed to about 320 KB (made in slices: never all in memory here either)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(4 * 1024 * 1024)
    parts = [z.compress(zeros) for _ in range(80)]
    parts.append(z.flush())
    return b"".join(parts)


def serve_bytes(data: bytes) -> Wire:
    async def handler(conn: ServerConn) -> None:
        while await conn.request() is not None:
            conn.write(data)
            await conn.writer.drain()

    return Wire(handler)


def test_a_gzip_bomb_fails_at_the_decompressed_cap(run: Run, gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 400 * 1024 and _http1.MAX_BODY_BYTES == 256 * 1024 * 1024
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(gzip_bomb)}\r\n\r\n".encode()

    async def main() -> None:
        async with serve_bytes(head + gzip_bomb) as wire:
            with pytest.raises(
                APIResponseValidationError,
                match=r"acme: 127\.0\.0\.1:\d+: the response body decompresses to more than 268435456 bytes",
            ):
                await within(transport.send(call(wire.url()), timeout=30, provider="acme"), 30)
            stream = await transport.open_stream(call(wire.url()), timeout=30)
            with pytest.raises(APIResponseValidationError, match="decompresses to more than"):
                async for _ in stream.iter_chunks():
                    pass

    run(main())


def test_the_decompressed_cap_is_configurable(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http1, "MAX_BODY_BYTES", _http1.MAX_BODY_BYTES)
    transport.configure(max_response_body=1000)
    body = zlib.compress(b"x" * 1001)
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    exact = zlib.compress(b"x" * 1000)
    exact_head = f"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: {len(exact)}\r\n\r\n".encode()

    async def main() -> None:
        async with serve_bytes(exact_head + exact) as wire:
            assert (await transport.send(call(wire.url()), timeout=5)).body == b"x" * 1000
        async with serve_bytes(head + body) as wire:
            with pytest.raises(APIResponseValidationError, match="decompresses to more than 1000 bytes"):
                await transport.send(call(wire.url()), timeout=5)

    run(main())


def test_an_uncompressed_body_over_the_cap_fails_but_a_stream_is_read_as_it_comes(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http1, "MAX_BODY_BYTES", 64 * 1024)
    big = b"y" * (256 * 1024)

    async def main() -> None:
        async with serve_bytes(response(big)) as wire:
            with pytest.raises(APIResponseValidationError, match="the response body is larger than 65536 bytes"):
                await transport.send(call(wire.url()), timeout=5)
            stream = await transport.open_stream(call(wire.url()), timeout=5)
            got = b"".join([c async for c in stream.iter_chunks()])
            assert got == big

    run(main())


def test_fifty_thousand_response_headers_are_refused(run: Run) -> None:
    many = "".join(f"X-H{i}: v\r\n" for i in range(50_000))

    async def main() -> None:
        async with serve_bytes(response(headers=many)) as wire:
            with pytest.raises(APIResponseValidationError, match=r"the response (head is larger than|has more than)"):
                await transport.send(call(wire.url()), timeout=5)
            with pytest.raises(APIResponseValidationError, match=r"the response (head is larger than|has more than)"):
                await transport.open_stream(call(wire.url()), timeout=5)

    run(main())


def test_more_headers_than_the_cap_are_refused_even_when_they_fit_the_head_limit(run: Run) -> None:
    fits = "".join(f"X-{i}: v\r\n" for i in range(_http1.MAX_HEADERS))  # with Content-Type/-Length: over

    async def main() -> None:
        async with serve_bytes(response(headers=fits)) as wire:
            with pytest.raises(APIResponseValidationError, match="the response has more than 256 header fields"):
                await transport.send(call(wire.url()), timeout=5)
        async with serve_bytes(response(headers=fits[fits.index("\n", fits.index("\n") + 1) + 1 :])) as wire:
            assert (await transport.send(call(wire.url()), timeout=5)).status == 200  # 256 exactly: fine

    run(main())


def test_one_huge_header_and_endless_interim_answers_hit_the_head_limit(run: Run) -> None:
    huge = f"X-Big: {'a' * (300 * 1024)}\r\n"
    interim = b"HTTP/1.1 100 Continue\r\nX-Pad: " + b"p" * 1000 + b"\r\n\r\n"

    async def endless(conn: ServerConn) -> None:
        assert await conn.request() is not None
        with contextlib.suppress(ConnectionError):
            for _ in range(10_000):
                conn.write(interim)
                await conn.writer.drain()

    async def main() -> None:
        async with serve_bytes(response(headers=huge)) as wire:
            with pytest.raises(APIResponseValidationError, match="the response head is larger than 262144 bytes"):
                await transport.send(call(wire.url()), timeout=5)
        async with Wire(endless) as wire:
            with pytest.raises(APIResponseValidationError, match="the response head is larger than"):
                await transport.send(call(wire.url()), timeout=5)

    run(main())


# ---------------------------------------------------------------- Happy Eyeballs and the connect timeout


@contextlib.contextmanager
def black_holed() -> Iterator[tuple[str, int]]:
    """A loopback address where connecting hangs: a listening socket whose accept queue (``listen(0)``)
    is already full of connections nobody accepts, so the kernel drops further SYNs unanswered."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(address)
            fillers.append(s)
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            with pytest.raises(TimeoutError):  # the precondition: this address really does not answer
                probe.connect(address)
        finally:
            probe.close()
        yield address
    finally:
        for s in fillers:
            s.close()
        listener.close()


def resolving_to(*addresses: tuple[str, int]) -> _http1_pool.Resolver:
    async def resolve(host: str, port: int) -> list[_http1_pool.AddrInfo]:
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", a) for a in addresses]

    return resolve


def test_a_black_holed_first_address_does_not_keep_the_live_second_one_from_being_tried(run: Run) -> None:
    """RFC 8305: the second address is tried 250 ms after the first, not after the first gives up."""

    async def main() -> None:
        async with Wire(answer_each) as wire:
            with black_holed() as hole:
                transport._pool().resolver = resolving_to(hole, ("127.0.0.1", wire.port))
                raw = await within(transport.send(call("http://upstream.test/v1/x"), timeout=600), 5)
                assert raw.status == 200 and wire.accepts == 1

    run(main())


def test_a_connect_that_never_completes_times_out_at_the_connect_timeout(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http1_pool, "CONNECT_TIMEOUT", 0.3)

    async def main() -> None:
        with black_holed() as hole:
            transport._pool().resolver = resolving_to(hole)
            with pytest.raises(APITimeoutError, match=r"acme: request to upstream\.test timed out"):
                await within(transport.send(call("http://upstream.test/v1"), timeout=600, provider="acme"), 5)

    run(main())


# ---------------------------------------------------------------- DNS lifetime and the per-origin cap


def test_dns_answers_are_kept_for_the_short_ttl_only(run: Run) -> None:
    assert _http1_pool.DNS_TTL == 10.0
    lookups: list[str] = []

    async def closing(conn: ServerConn) -> None:
        if await conn.request() is not None:
            conn.write(response(headers="Connection: close\r\n"))  # every request needs a new connection
            await conn.writer.drain()
            conn.close()

    async def main() -> None:
        async with Wire(closing) as wire:
            pool = transport._pool()
            now = [1000.0]
            pool.clock = lambda: now[0]

            async def resolve(host: str, port: int) -> list[_http1_pool.AddrInfo]:
                lookups.append(host)
                return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", wire.port))]

            pool.resolver = resolve
            for _ in range(3):
                await transport.send(call("http://upstream.test/v1"), timeout=5)
            assert lookups == ["upstream.test"] and wire.accepts == 3
            now[0] += 10.5
            await transport.send(call("http://upstream.test/v1"), timeout=5)
            assert lookups == ["upstream.test"] * 2

    run(main())


def test_the_per_origin_cap_queues_requests_for_a_free_connection(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http1_pool, "MAX_PER_ORIGIN", 2)
    most = [0]
    open_now = [0]

    async def counting(conn: ServerConn) -> None:
        open_now[0] += 1
        most[0] = max(most[0], open_now[0])
        try:
            while await conn.request() is not None:
                await asyncio.sleep(0.01)  # the answer takes a moment, so requests overlap
                conn.write(response())
        finally:
            open_now[0] -= 1

    async def main() -> None:
        async with Wire(counting) as wire:
            results = await within(asyncio.gather(*(transport.send(call(wire.url()), timeout=5) for _ in range(8))))
            assert [r.status for r in results] == [200] * 8
            assert wire.accepts == 2 and most[0] == 2

    run(main())


def test_a_request_waiting_for_a_connection_at_the_cap_times_out_within_its_own_timeout(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http1_pool, "MAX_PER_ORIGIN", 1)

    async def silent(conn: ServerConn) -> None:
        await conn.request()
        await conn.until_gone()

    async def main() -> None:
        async with Wire(silent) as wire:
            held = asyncio.create_task(transport.send(call(wire.url()), timeout=30))
            await asyncio.sleep(0)
            with pytest.raises(APITimeoutError):
                await within(transport.send(call(wire.url()), timeout=0.3), 5)
            assert wire.accepts == 1
            held.cancel()
            with pytest.raises(asyncio.CancelledError):
                await held
            # the slot came free with the cancelled request's connection: the next one connects
            with pytest.raises(APIConnectionError):
                await within(transport.send(call(wire.url()), timeout=0.3), 5)
            assert wire.accepts == 2

    run(main())


def test_the_limits_are_settable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmswitch.errors import ConfigError

    for module, name in [(_http1_pool, "CONNECT_TIMEOUT"), (_http1_pool, "DNS_TTL"), (_http1_pool, "MAX_PER_ORIGIN"),
                         (_http1, "MAX_BODY_BYTES"), (_http1, "MAX_HEAD_BYTES"), (_http1, "MAX_HEADERS")]:  # fmt: skip
        monkeypatch.setattr(module, name, getattr(module, name))  # restored afterwards
    transport.configure_from_environment(
        {
            "LLMSWITCH_CONNECT_TIMEOUT": "2.5",
            "LLMSWITCH_DNS_TTL": "30",
            "LLMSWITCH_MAX_CONNECTIONS_PER_ORIGIN": "50",
            "LLMSWITCH_MAX_RESPONSE_BODY": "1048576",
            "LLMSWITCH_MAX_RESPONSE_HEAD": "65536",
            "LLMSWITCH_MAX_RESPONSE_HEADERS": "100",
        }
    )
    assert (_http1_pool.CONNECT_TIMEOUT, _http1_pool.DNS_TTL, _http1_pool.MAX_PER_ORIGIN) == (2.5, 30.0, 50)
    assert (_http1.MAX_BODY_BYTES, _http1.MAX_HEAD_BYTES, _http1.MAX_HEADERS) == (1048576, 65536, 100)
    with pytest.raises(ConfigError, match=r"LLMSWITCH_MAX_CONNECTIONS_PER_ORIGIN='lots': expected an integer"):
        transport.configure_from_environment({"LLMSWITCH_MAX_CONNECTIONS_PER_ORIGIN": "lots"})
    with pytest.raises(ConfigError, match=r"LLMSWITCH_CONNECT_TIMEOUT='0': expected a positive value"):
        transport.configure_from_environment({"LLMSWITCH_CONNECT_TIMEOUT": "0"})
