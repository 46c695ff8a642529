"""The lean Redis client of the cache's hot path, against the real Redis: replies split anywhere, large
values, pipelined concurrent commands, a caller that gave up, auth and db from the URL, errors."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from redis_servers import REDIS_URL

from llmswitch.cache.backends.resp import LeanRedis, RespError, encode_command, parse_reply


@pytest.mark.parametrize(
    ("wire", "value"),
    [(b"$5\r\nhello\r\n", b"hello"), (b"$-1\r\n", None), (b"+OK\r\n", "OK"), (b":42\r\n", 42), (b"$0\r\n\r\n", b"")],
)
def test_a_reply_is_read_only_once_it_has_all_arrived(wire: bytes, value: object) -> None:
    for cut in range(len(wire)):
        assert parse_reply(wire[:cut]) is None or cut == len(wire)
    assert parse_reply(wire + b"+NEXT\r\n") == (value, len(wire))


def test_an_error_reply_is_an_error() -> None:
    found = parse_reply(b"-ERR wrong\r\n")
    assert found is not None and isinstance(found[0], RespError)
    assert encode_command(b"GET", b"k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


def test_get_set_large_values_and_pipelined_commands(namespace: str) -> None:
    async def main() -> None:
        client = LeanRedis(REDIS_URL)
        big = bytes(range(256)) * 8192  # 2 MiB, binary, \r\n inside
        await client.set(f"{namespace}:big", big, px=60_000)
        assert await client.get(f"{namespace}:big") == big
        assert await client.get(f"{namespace}:missing") is None
        keys = [f"{namespace}:k{i}" for i in range(200)]
        await asyncio.gather(*(client.set(k, k.encode(), px=60_000) for k in keys))
        assert await asyncio.gather(*(client.get(k) for k in keys)) == [k.encode() for k in keys]
        # a caller that gives up does not shift the replies of the others
        slow = asyncio.ensure_future(client.get(f"{namespace}:big"))
        slow.cancel()
        assert await client.get(keys[7]) == keys[7].encode()
        await client.aclose()
        assert await client.get(keys[8]) == keys[8].encode()  # connects again
        await client.aclose()

    asyncio.run(main())


def test_the_url_s_db_and_password_are_used() -> None:
    admin = redis.Redis.from_url(REDIS_URL)
    key = f"resp-db-{uuid.uuid4().hex}"

    async def main() -> None:
        client = LeanRedis("redis://127.0.0.1:6379/5")
        await client.set(key, b"in five", px=10_000)
        await client.aclose()
        wrong = LeanRedis("redis://:not-the-password@127.0.0.1:6379/0")
        with pytest.raises(RespError):
            await wrong.get(key)
        await wrong.aclose()

    try:
        asyncio.run(main())
        assert redis.Redis(db=5).get(key) == b"in five" and admin.get(key) is None
    finally:
        redis.Redis(db=5).delete(key)
        admin.close()


@pytest.mark.parametrize("junk", [b"HTTP/1.1 400 Bad Request\r\n\r\n", b"?what\r\n", b"$abc\r\n", b"+OK\r\n+OK\r\n"])
def test_a_server_that_is_not_redis_fails_the_command_and_the_connection(junk: bytes) -> None:
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(junk)
            conn.recv(65536)  # until the client closes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    async def main() -> None:
        client = LeanRedis(f"redis://127.0.0.1:{port}/0")
        try:
            async with asyncio.timeout(5):
                value = await client.get("k")
        except (RespError, ConnectionError):
            value = None
        assert value is None  # nothing read from it is ever taken for an entry
        assert client._proto is None or client._proto.lost  # and the connection is not used again
        await client.aclose()

    try:
        asyncio.run(main())
    finally:
        thread.join(timeout=5)
        listener.close()
