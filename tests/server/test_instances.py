"""Several gateway instances on one PostgreSQL without Redis: each knows the others, warns, or refuses.

Real ``llmswitch serve`` processes on the real database; the heartbeat is shortened for the test.
"""

from __future__ import annotations

import json
from pathlib import Path

from multi_harness import GatewayProcess, poll, priced_config

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
            refusal = [line for line in c.output().splitlines() if "refusing to start" in line]
            assert code != 0 and refusal, c.output()
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
