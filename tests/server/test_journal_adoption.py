"""A gateway that dies is adopted by one that runs, whatever pid its journal directory names.

Two ``llmswitch serve`` processes share a journal root and a PostgreSQL schema; gateway A reaches the
database through a TCP proxy that the test cuts, so the answers it gives stay in its journal. While A
lives, B never takes its directory. Then A is killed with SIGKILL and its directory made to look owned
by a live process (the pid in its name and owner file is this test's: a pid reused, as in a container
that restarts on the same journal volume). B, started long before, ships A's records within seconds,
without a restart, and removes the directory; the records A had set aside (refused by the store) are kept
under ``rejected/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gateway_harness import POSTGRES_URL, chat_request, gateway_config
from money_harness import TcpProxy, served
from multi_harness import GatewayProcess, key_info, poll, priced_config, spend_logs

from llmswitch.server.journals import OWNER, REJECTED_DIR, adopt_orphans, open_own_journal, remove_journal_dir
from llmswitch.spend import Journal
from llmswitch.spend.framing import decode_line, encode_line
from llmswitch.spend.segments import REJECTED, append_rejected
from llmswitch.store import open_store
from llmswitch.store.records import SpendRecord
from llmswitch.testing import FakeUpstream

PG_HOST_PORT = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0]
ANSWERS = 12


@dataclass
class Pair:
    a: GatewayProcess
    b: GatewayProcess
    key: str
    journal: Path
    a_dir: Path
    answered: list[str]  # request ids A answered 200 while its database was cut


@pytest.fixture(scope="module")
def pair(upstream: FakeUpstream, postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    d = tmp_path_factory.mktemp("adopt")
    journal = d / "journal"
    env = {"LLMSWITCH_JOURNAL_DIR": str(journal)}
    (d / "b.yaml").write_text(priced_config(upstream, postgres_url))
    host, port = PG_HOST_PORT.rsplit(":", 1)
    proxy = TcpProxy((host, int(port)))
    (d / "a.yaml").write_text(priced_config(upstream, postgres_url.replace(PG_HOST_PORT, f"127.0.0.1:{proxy.port}")))
    upstream.reset()
    upstream.responder = None
    b = GatewayProcess(d / "b.yaml", d / "b.log", env).wait_ready()
    a: GatewayProcess | None = None
    try:
        key = b.new_key(key_alias="adopted")
        a = GatewayProcess(d / "a.yaml", d / "a.log", env).wait_ready()  # loads the key at start
        (a_dir,) = journal.glob(f"w-{a.proc.pid}-*")
        proxy.cut()  # A answers, journals, and cannot ship
        answered = []
        for i in range(ANSWERS):
            path, body = chat_request("openai", "m-openai", f"answer {i}")
            r = a.call("POST", path, body, key=key)
            assert r.status == 200, r.body
            answered.append(r.headers["x-request-id"])
        yield Pair(a, b, key, journal, a_dir, answered)
    finally:
        proxy.cut()
        if a is not None:
            a.kill()
        b.stop()


def test_a_live_gateways_journal_is_never_adopted(pair: Pair) -> None:
    # more than one adoption round of B's (every 5 s) while A lives with records it cannot ship
    time.sleep(6.5)
    assert pair.a.proc.poll() is None
    assert pair.a_dir.is_dir()
    stored = {row["request_id"] for row in spend_logs(pair.b.port, pair.key)}
    assert not stored & set(pair.answered), "B shipped a live gateway's records"
    assert f"w-{pair.a.proc.pid}-" not in pair.b.output()


def test_a_killed_gateway_with_a_reused_pid_is_adopted_by_a_running_one(pair: Pair) -> None:
    a_pid = pair.a.proc.pid
    pair.a.kill()
    # what a restarted container looks like: the dead directory names a pid that runs (this test's)
    reused = pair.journal / pair.a_dir.name.replace(f"w-{a_pid}-", f"w-{os.getpid()}-", 1)
    pair.a_dir.rename(reused)
    owner = json.loads((reused / OWNER).read_bytes())
    assert owner["pid"] == a_pid and owner["boot_id"] and owner["instance"] in reused.name
    (reused / OWNER).write_text(json.dumps({**owner, "pid": os.getpid()}))
    refused = _set_aside(reused)
    started = time.monotonic()

    def all_shipped() -> set[str] | None:
        ids = {row["request_id"] for row in spend_logs(pair.b.port, pair.key)}
        return ids if set(pair.answered) <= ids else None

    ids = poll(all_shipped, timeout=20, what="B shipping the killed gateway's records")
    took = time.monotonic() - started
    print(f"adopted {len(pair.answered)} records of a killed gateway {took:.1f} s after its kill")
    assert took < 15
    assert len(ids) == ANSWERS
    rows = spend_logs(pair.b.port, pair.key)
    assert key_info(pair.b.port, pair.key)["spend"] == pytest.approx(sum(r["spend"] for r in rows), rel=1e-9)
    assert all(r["spend"] > 0 for r in rows)
    poll(lambda: not reused.exists(), timeout=5, what="the adopted directory removed")
    # the directory is moved aside before the replay is logged, and the log is written by its own thread
    said = poll(
        lambda: re.search(
            rf"replayed (\d+) spend records left by a stopped gateway process \({reused.name}", pair.b.output()
        ),
        timeout=5,
        what=lambda: f"B's log of the replay: {pair.b.output()[-2000:]}",
    )
    assert int(said.group(1)) == ANSWERS
    # the record the store refused survives the directory's removal
    kept = pair.journal / REJECTED_DIR / f"{reused.name}.journal"
    assert [decode_line(line).request_id for line in kept.read_bytes().splitlines()] == [refused]  # type: ignore[union-attr]
    # B's own directory is untouched
    assert list(pair.journal.glob(f"w-{pair.b.proc.pid}-*"))


def _set_aside(directory: Path) -> str:
    """A record the dead gateway's shipper had set aside (refused by the store), as it writes them."""
    rid = f"refused-{os.getpid()}"
    append_rejected(directory, encode_line(SpendRecord(request_id=rid, model_group="m-openai", cost=0.5)), sync=False)
    return rid


# ---------------------------------------------------------------- in one process, on real files


def test_a_locked_directory_is_skipped_and_a_free_one_adopted_whatever_its_pid(
    tmp_path: Path, postgres_url: str
) -> None:
    async def main() -> None:
        async with open_store(postgres_url) as store:
            live = await open_own_journal(tmp_path, "os")
            try:
                await live.append(SpendRecord(request_id="live-1", cost=0.25))
                # a dead directory whose name and owner file name this (live) process
                dead = tmp_path / f"w-{os.getpid()}-deadbeef"
                async with Journal(dead) as journal:
                    await journal.append(SpendRecord(request_id="dead-1", cost=0.5))
                assert await adopt_orphans(tmp_path, store, "os", timeout=10) == 1
                assert not dead.exists() and live.directory.is_dir()
                stored = {r.request_id for r in await store.list_spend_logs()}
                assert "dead-1" in stored and "live-1" not in stored
            finally:
                await live.close()

    asyncio.run(main())


def test_a_directory_waits_out_a_store_outage_whole(tmp_path: Path, postgres_url: str) -> None:
    host, port = PG_HOST_PORT.rsplit(":", 1)
    proxy = TcpProxy((host, int(port)))

    async def main() -> None:
        async with open_store(postgres_url.replace(PG_HOST_PORT, f"127.0.0.1:{proxy.port}")) as store:
            dead = tmp_path / "w-1-0utage"
            async with Journal(dead) as journal:
                await journal.append(SpendRecord(request_id="outage-1", cost=0.5))
            before = sorted(os.listdir(dead))
            proxy.cut()
            for _ in range(3):  # three rounds of a gateway's adopter
                assert await adopt_orphans(tmp_path, store, "os", timeout=0.3) == 0
            # the record is still there, and no round left a file behind
            assert sorted(os.listdir(dead)) == before

    try:
        asyncio.run(main())
    finally:
        proxy.cut()


def test_a_clean_shutdown_keeps_the_records_its_store_refused(
    up: FakeUpstream, postgres_url: str, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    with served(gateway_config(up, postgres_url), journal):
        (own,) = journal.glob("w-*")
        refused = _set_aside(own)  # as the gateway's shipper does with a record the store refuses
    assert not own.exists()  # everything shipped: the directory is gone at a clean stop...
    kept = journal / REJECTED_DIR / f"{own.name}.journal"
    # ...but not what the store refused
    assert [decode_line(line).request_id for line in kept.read_bytes().splitlines()] == [refused]  # type: ignore[union-attr]


def test_a_clean_removal_keeps_the_rejected_records(tmp_path: Path) -> None:
    directory = tmp_path / "w-1-abc"
    directory.mkdir()
    (directory / REJECTED).write_bytes(b"a refused line\n")
    (directory / "00000000000000000001.journal").write_bytes(b"")
    remove_journal_dir(directory)
    assert not directory.exists()
    assert (tmp_path / REJECTED_DIR / "w-1-abc.journal").read_bytes() == b"a refused line\n"
