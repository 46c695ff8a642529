"""Nothing answered is lost: ``kill -9`` a loaded gateway, start a fresh one on the same journal directory, and
every answer a client received whole is in the spend logs exactly once, its key charged exactly its cost.

The gateway (``llmswitch serve``, PostgreSQL store) is killed while client threads keep sending requests, whole
and streamed, through the fast path and the full one. Each thread records the request id (``x-request-id``) of
every 200 answer that arrived complete. The new process adopts the dead one's journal and ships what it had not.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from gateway_harness import chat_request
from multi_harness import GatewayProcess, key_info, price, priced_config, spend_logs

from llmswitch import ir
from llmswitch.testing import FakeUpstream, Reply

THREADS = 8
USAGE = ir.Usage(input_tokens=1200, output_tokens=80, cache_read_tokens=200)
# (client face, group, stream): whole and streamed answers, relayed (fast path) and re-encoded (full path)
MODES = [
    ("openai", "m-openai", False),
    ("openai", "m-openai", True),
    ("anthropic", "m-anthropic", True),
    ("gemini", "m-gemini", False),
]
# the last event of a whole stream, in each client dialect
LAST_EVENT = {"openai": b"data: [DONE]", "anthropic": b"event: message_stop\n"}


@dataclass
class Answered:
    request_id: str
    group: str
    stream: bool
    charged: float | None  # the x-llmswitch-cost header of a whole answer


def ask(port: int, key: str, face: str, group: str, stream: bool) -> Answered | None:
    """One request; the answer if it arrived whole with a 200, else None (the gateway died under it)."""
    path, body = chat_request(face, group, stream=stream)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, json.dumps(body), {"authorization": f"Bearer {key}"})
        resp = conn.getresponse()
        data = resp.read()  # a chunked body cut by the kill raises IncompleteRead
        if resp.status != 200:
            return None
        if stream:
            events = [e for e in data.replace(b"\r\n", b"\n").split(b"\n\n") if e.strip()]
            if not events[-1].startswith(LAST_EVENT[face]) or any(
                b'{"error"' in e or b"event: error" in e for e in events
            ):
                return None
            charged = None
        else:
            json.loads(data)
            charged = float(resp.headers["x-llmswitch-cost"])
        return Answered(resp.headers["x-request-id"], group, stream, charged)
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


@dataclass
class Killed:
    key: str
    answered: list[Answered]
    unshipped: int  # answered requests not in the store when the gateway died
    replayed: int | None  # what the new process says it shipped from the dead one's journal
    after: GatewayProcess
    journal: Path
    dead_pid: int


def stored_request_ids(postgres_url: str) -> set[str]:
    dsn, _, schema = postgres_url.partition("?schema=")

    async def read() -> set[str]:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            rows = await conn.fetch(f'SELECT request_id FROM "{schema}".llmswitch_spend_logs')
        finally:
            await conn.close()
        return {row[0] for row in rows}

    return asyncio.run(read())


@pytest.fixture(scope="module")
def killed(upstream: FakeUpstream, postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Killed]:
    d = tmp_path_factory.mktemp("kill9")
    config = d / "config.yaml"
    config.write_text(priced_config(upstream, postgres_url))
    journal = d / "journal"
    env = {"LLMSWITCH_JOURNAL_DIR": str(journal)}
    upstream.reset()
    upstream.responder = lambda _: Reply(usage=USAGE, chunk_size=3)  # streams of several chunks
    before = GatewayProcess(config, d / "before.log", env).wait_ready()
    try:
        key = before.new_key(key_alias="kill9")
        answered: list[Answered] = []
        stop = threading.Event()

        def client(mode: int) -> Callable[[], None]:
            def run() -> None:
                n = mode
                while not stop.is_set():
                    got = ask(before.port, key, *MODES[n % len(MODES)])
                    if got is not None:
                        answered.append(got)
                    n += 1

            return run

        threads = [threading.Thread(target=client(i), daemon=True) for i in range(THREADS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(answered) < 300 and time.monotonic() < deadline:
            time.sleep(0.02)
        before.kill()  # mid-load: requests in flight, records journaled and not yet shipped
        stop.set()
        for t in threads:
            t.join(timeout=15)
        assert not any(t.is_alive() for t in threads)
        dead_pid = before.proc.pid
    finally:
        before.stop()
        upstream.responder = None
    unshipped = len({a.request_id for a in answered} - stored_request_ids(postgres_url))
    after = GatewayProcess(config, d / "after.log", env).wait_ready()
    try:
        # the replay is logged by the logging thread: give it a moment to reach the file
        pattern = rf"replayed (\d+) spend records left by a stopped gateway process \(w-{dead_pid}-"
        said = re.search(pattern, after.output())
        for _ in range(100):
            if said is not None:
                break
            time.sleep(0.05)
            said = re.search(pattern, after.output())
        replayed = int(said.group(1)) if said is not None else None
        yield Killed(key, answered, unshipped, replayed, after, journal, dead_pid)
    finally:
        after.stop()


def test_every_answer_received_is_logged_exactly_once(killed: Killed) -> None:
    rows = spend_logs(killed.after.port, killed.key)
    ids = Counter(row["request_id"] for row in rows)
    answered = {a.request_id for a in killed.answered}
    extra = set(ids) - answered
    print(
        f"kill -9: {len(answered)} answers received whole, {killed.unshipped} of them not yet in the store at the "
        f"kill, {killed.replayed} records replayed from the dead gateway's journal, {len(rows)} logged "
        f"({len(extra)} answered but cut off by the kill)"
    )
    assert len(answered) == len(killed.answered) >= 300
    # the dead process had journaled answers it had not shipped: the replay is what this test is about
    assert killed.unshipped > 0
    assert answered <= set(ids), f"{len(answered - set(ids))} answers lost"
    assert killed.replayed is not None and killed.replayed >= killed.unshipped, killed.after.output()
    assert ids.most_common(1)[0][1] == 1
    # journaled before the last byte, the last byte never sent: at most one per client thread
    assert len(extra) <= THREADS
    assert all(row["status"] == 200 for row in rows)


def test_each_answer_is_logged_with_its_cost(killed: Killed) -> None:
    rows = {row["request_id"]: row for row in spend_logs(killed.after.port, killed.key)}
    modes = Counter((a.group, a.stream) for a in killed.answered)
    assert len(modes) == len({(g, s) for _, g, s in MODES}), modes  # every kind of answer was in the load
    for a in killed.answered:
        row = rows[a.request_id]
        assert (row["model_group"], row["stream"]) == (a.group, a.stream)
        assert row["spend"] == pytest.approx(price(a.group, USAGE), rel=1e-12)
        if a.charged is not None:
            assert row["spend"] == pytest.approx(a.charged, abs=1e-10)


def test_the_key_is_charged_exactly_what_was_logged(killed: Killed) -> None:
    rows = spend_logs(killed.after.port, killed.key)
    logged = sum(row["spend"] for row in rows)
    answered = sum(price(a.group, USAGE) for a in killed.answered)
    spend = key_info(killed.after.port, killed.key)["spend"]
    assert spend == pytest.approx(logged, rel=1e-9)
    # what the clients received, plus at most the answers the kill cut off
    assert answered <= spend * (1 + 1e-9)
    assert spend - answered <= THREADS * max(price(g, USAGE) for _, g, _ in MODES) * (1 + 1e-9)


def test_the_dead_gateways_journal_was_adopted_and_removed(killed: Killed) -> None:
    left = sorted(p.name for p in killed.journal.iterdir())
    assert not any(name.startswith(f"w-{killed.dead_pid}-") for name in left), left
    assert any(name.startswith(f"w-{killed.after.proc.pid}-") for name in left), left
