"""Several gateway instances on one PostgreSQL without Redis: each knows the others, warns, or refuses.

Real ``llmswitch serve`` processes on the real database; the heartbeat is shortened for the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from multi_harness import GatewayProcess, poll, priced_config

from llmswitch.server.instances import InstanceWatch, SharedLimitsRequired
from llmswitch.store import InstanceRecord, open_store
from llmswitch.testing import FakeUpstream

BEAT = {"LLMSWITCH_INSTANCE_HEARTBEAT_S": "0.5"}


def _warnings(gw: GatewayProcess) -> list[str]:
    out = []
    for line in gw.output().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("level") == "warning" and "another llmswitch instance uses this database" in record["msg"]:
                out.append(record["msg"])
    return out


def test_a_second_instance_without_redis_warns_naming_the_first_and_one_requiring_shared_limits_refuses(
    up: FakeUpstream, postgres_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(priced_config(up, postgres_url))

    def gateway(name: str, **env: str) -> GatewayProcess:
        return GatewayProcess(
            config,
            tmp_path / f"{name}.log",
            {"LLMSWITCH_JOURNAL_DIR": str(tmp_path / f"journal-{name}"), **BEAT, **env},
        )

    # alone, an instance that requires shared limits starts: there is nobody to share them with
    a = gateway("a", LLMSWITCH_REQUIRE_SHARED_LIMITS="1").wait_ready()
    try:
        assert _warnings(a) == []
        b = gateway("b").wait_ready()
        try:
            said = poll(lambda: _warnings(b) or None, timeout=10, what=lambda: f"b's warning:\n{b.output()}")
            assert f"pid {a.proc.pid}" in said[0] and "2 times" in said[0], said
            # the first hears of the second within a few beats, without restarting
            heard = poll(lambda: _warnings(a) or None, timeout=10, what=lambda: f"a's warning:\n{a.output()}")
            assert f"pid {b.proc.pid}" in heard[0], heard

            c = gateway("c", LLMSWITCH_REQUIRE_SHARED_LIMITS="1")
            code = c.proc.wait(timeout=60)
            refusal = [line for line in c.output().splitlines() if "already use this database" in line]
            assert code == 3 and refusal, c.output()
            assert '"level":"error","msg":"not starting: ' in refusal[0], refusal
            assert f"pid {a.proc.pid}" in refusal[0] and f"pid {b.proc.pid}" in refusal[0], refusal
            assert "LLMSWITCH_REQUIRE_SHARED_LIMITS" in refusal[0]
        finally:
            b.stop()
    finally:
        a.stop()


def test_require_shared_limits_is_a_general_setting(tmp_path: Path) -> None:
    from llmswitch.config import parse_config
    from llmswitch.server.serve import build_gateway

    text = (
        "model_list: []\n"
        f"general_settings:\n  master_key: sk-test-master\n  store_path: {tmp_path / 'keys.db'}\n"
        "  require_shared_limits: true\n"
    )
    check = parse_config(text)
    assert check.problems == [] and check.config is not None
    assert not [w for w in check.warnings if "require_shared_limits" in str(w)]
    assert check.config.server.require_shared_limits is True
    watch = build_gateway(check.config)._on_startup[0].__self__  # type: ignore[attr-defined]
    assert watch.require_shared is True and watch.limits == "memory"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("predecessor", ["dead pid", "own pid"])
def test_a_dead_process_of_this_host_does_not_count_as_another_instance(tmp_path: Path, predecessor: str) -> None:
    # as a gateway killed and restarted at once leaves its row: live for three more beats by the clock
    pid = _dead_pid() if predecessor == "dead pid" else os.getpid()

    async def main() -> tuple[bool, list[tuple[str, ...]]]:
        async with open_store(f"sqlite:///{tmp_path / 'keys.db'}") as store:
            old = InstanceRecord(instance_id="old", host=socket.gethostname(), pid=pid, limits="memory")
            await store.beat_instance(old, dead_after_s=60)
            watch = InstanceWatch(store, limits="memory", require_shared=True, interval=20)
            await watch.start()  # refuses when it takes the old row for a live instance
            started = watch._task is not None
            await watch.stop()
            return started, await store.beat_instance(old, dead_after_s=60)  # type: ignore[return-value]

    started, left = asyncio.run(main())
    assert started
    assert left == []  # the dead row was deleted, and the watch's own on stop


def test_a_live_process_of_this_host_counts() -> None:
    async def main() -> None:
        async with open_store("sqlite://:memory:") as store:
            other = InstanceRecord(instance_id="other", host=socket.gethostname(), pid=os.getppid(), limits="memory")
            await store.beat_instance(other, dead_after_s=60)
            with pytest.raises(SharedLimitsRequired, match=f"pid {os.getppid()}"):
                await InstanceWatch(store, limits="memory", require_shared=True, interval=20).start()

    asyncio.run(main())


def test_a_store_that_cannot_record_the_beat_refuses_only_an_instance_asked_to_be_sure(tmp_path: Path) -> None:
    async def main() -> None:
        async with open_store(f"sqlite:///{tmp_path / 'keys.db'}") as store:
            # the instances table gone (a database restored from before it): every beat fails
            await store._call(lambda conn: conn.execute("DROP TABLE llmswitch_instances"))  # type: ignore[attr-defined]
            with pytest.raises(SharedLimitsRequired, match="cannot tell whether other instances"):
                await InstanceWatch(store, limits="memory", require_shared=True, interval=20).start()
            relaxed = InstanceWatch(store, limits="memory", interval=20)
            await relaxed.start()  # starts, says so, and keeps trying
            assert relaxed._task is not None
            await relaxed.stop()

    asyncio.run(main())
