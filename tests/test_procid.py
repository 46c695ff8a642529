"""Per-process identity: a gateway built before fork() gives every forked child ids of its own.

The fork happens in a helper process (never in pytest's own): it builds the gateway app and a Redis
limiter, as ``gunicorn --preload`` would, then forks two children that each answer requests through
the app and hold parallel-request leases in Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REDIS_URL = os.environ.get("LLMSWITCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PER_CHILD = 50

_HELPER = """
import asyncio, json, os, sys

from llmswitch.limits import SubjectLimits, open_limiter
from llmswitch.router.router import Router
from llmswitch.server.app import Gateway

redis_url, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
gateway = Gateway(router=Router([]))  # made before the fork, as a pre-forking server's --preload does
limiter = open_limiter(redis_url=redis_url, prefix=prefix, fallback=False)


async def request_id() -> str:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "path": "/health/liveliness", "raw_path": b"/health/liveliness", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"test")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 4000), "scheme": "http",
    }
    await gateway(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 200, start
    return dict(start["headers"])[b"x-llmswitch-request-id"].decode()


async def child() -> dict:
    ids = [await request_id() for _ in range(count)]
    for _ in range(count):  # held, never settled: each is one member of the subject's slots in Redis
        await limiter.admit([SubjectLimits("key:shared", max_parallel_requests=10_000)])
    await limiter.aclose()
    return {"pid": os.getpid(), "request_ids": ids}


reads = []
for _ in range(2):
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        os.write(w, json.dumps(asyncio.run(child())).encode())
        os._exit(0)
    os.close(w)
    reads.append(r)
out = []
for r in reads:
    with os.fdopen(r, "rb") as f:
        out.append(json.loads(f.read()))
for _ in reads:
    _, status = os.wait()
    assert status == 0, status
print(json.dumps(out))
"""


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    prefix = f"llmswitch-test-procid-{uuid.uuid4().hex[:8]}"
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc})", pytrace=False)
    yield prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_children_forked_after_the_app_was_made_never_share_an_id(tmp_path: Path, redis_prefix: str) -> None:
    helper = tmp_path / "fork_helper.py"
    helper.write_text(_HELPER)
    done = subprocess.run(
        [sys.executable, str(helper), REDIS_URL, redis_prefix, str(PER_CHILD)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    children = json.loads(done.stdout)
    assert len({c["pid"] for c in children}) == 2
    request_ids = [i for c in children for i in c["request_ids"]]
    # each id names one spend record: a repeat would be dropped by the store as already written
    assert len(set(request_ids)) == 2 * PER_CHILD, request_ids
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        # one slot per lease id: two children's leases with one id would be one member
        assert client.zcard(f"{redis_prefix}:slots:key:shared") == 2 * PER_CHILD
    finally:
        client.close()
