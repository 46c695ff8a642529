"""`llmswitch serve` starting up as a process: what it checks before it says "serving on", where it listens
without a master key, LiteLLM's command line, and Python warnings in its JSON log.

Missing extras are made real with a ``sitecustomize`` on the child's PYTHONPATH that makes ``asyncpg`` or
``redis`` unimportable (as on an install without ``llmswitch[postgres]``/``[redis]``); databases and roles
are created in the real PostgreSQL and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from gateway_harness import MASTER_KEY, POSTGRES_URL, call, free_port, gateway_config, model_list

from llmswitch.testing import FakeUpstream

LLMSWITCH = Path(sys.executable).with_name("llmswitch")

BLOCKER = """\
import sys

BLOCKED = {blocked!r}


class _Uninstalled:
    # as if the package were not installed: the import system asks this finder first
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Uninstalled())
"""


def without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment in which ``modules`` cannot be imported."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=set(modules)))
    return {**os.environ, "PYTHONPATH": str(site)}


def serve(
    config: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    argv = [str(LLMSWITCH), "serve", "--config", str(config), "--port", str(free_port()), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a gateway's output, parsed (fails on one that is not JSON)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def on_postgres(up: FakeUpstream, url: str) -> str:
    return model_list(up) + f"general_settings:\n  master_key: {MASTER_KEY}\n  database_url: {url}\n"


def on_redis(up: FakeUpstream, tmp_path: Path) -> str:
    return (
        gateway_config(up, str(tmp_path / "keys.db"))
        + "router_settings:\n  redis_host: 127.0.0.1\n  redis_port: 6379\n"
    )


def database_url(name: str, role: str | None = None) -> str:
    parts = urlsplit(POSTGRES_URL)
    netloc = parts.netloc if role is None else f"{role}@{parts.netloc.rpartition('@')[2]}"
    return parts._replace(netloc=netloc, path=f"/{name}").geturl()


def pg(query: str, *args: Any) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


# ---------------------------------------------------------------- 1. extras that are not installed


def test_serve_without_asyncpg_names_the_postgres_extra_and_exits_2(up: FakeUpstream, tmp_path: Path) -> None:
    config = write(tmp_path, on_postgres(up, POSTGRES_URL))
    done = serve(config, "--host", "127.0.0.1", env=without(tmp_path, "asyncpg"))
    assert done.returncode == 2, done.stderr
    (line,) = json_lines(done.stderr)
    assert line["level"] == "error"
    assert "pip install 'llmswitch[postgres]'" in line["msg"] and "asyncpg" in line["msg"]
    assert "serving on" not in done.stderr and "Traceback" not in done.stderr


def test_serve_without_redis_names_the_redis_extra_and_exits_2(up: FakeUpstream, tmp_path: Path) -> None:
    config = write(tmp_path, on_redis(up, tmp_path))
    done = serve(config, "--host", "127.0.0.1", env=without(tmp_path, "redis"))
    assert done.returncode == 2, done.stderr
    (line,) = json_lines(done.stderr)
    assert "pip install 'llmswitch[redis]'" in line["msg"]
    assert "serving on" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("blocked", ["asyncpg", "redis"])
def test_config_check_reports_a_missing_extra_as_an_error(up: FakeUpstream, tmp_path: Path, blocked: str) -> None:
    text = on_postgres(up, POSTGRES_URL) if blocked == "asyncpg" else on_redis(up, tmp_path)
    config = write(tmp_path, text)
    argv = [str(LLMSWITCH), "config", "check", str(config)]
    fine = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert fine.returncode == 0, fine.stderr  # with the extras installed, the same config is ok
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=without(tmp_path, blocked))
    assert done.returncode == 1
    extra = "postgres" if blocked == "asyncpg" else "redis"
    assert "error: " in done.stderr and f"pip install 'llmswitch[{extra}]'" in done.stderr
    assert "ok" not in done.stdout


def test_an_extra_the_config_does_not_use_is_not_asked_for(up: FakeUpstream, tmp_path: Path) -> None:
    config = write(tmp_path, gateway_config(up, str(tmp_path / "keys.db")))  # SQLite, no Redis
    env = {k: v for k, v in without(tmp_path, "asyncpg", "redis").items() if not k.startswith("REDIS_")}
    done = subprocess.run(
        [str(LLMSWITCH), "config", "check", str(config)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- 2. the store before "serving on"


@pytest.fixture
def missing_database() -> Iterator[str]:
    name = f"llmswitch_startup_{uuid.uuid4().hex[:12]}"
    assert not pg("SELECT 1 FROM pg_database WHERE datname = $1", name)
    yield name
    pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_missing_database_is_created_before_serving_on_is_said(
    up: FakeUpstream, tmp_path: Path, missing_database: str
) -> None:
    config = write(tmp_path, on_postgres(up, database_url(missing_database)))
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen([*argv, "--workers", "2"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if call(port, "GET", "/health/readiness", key=None, timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        made = call(port, "POST", "/key/generate", {"key_alias": "in-the-new-database"})
        assert made.status == 200, made.body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert pg("SELECT 1 FROM pg_database WHERE datname = $1", missing_database) == 1
    messages = [r["msg"] for r in json_lines(log.read_text()) if "msg" in r]
    created = next(i for i, m in enumerate(messages) if f"created PostgreSQL database '{missing_database}'" in m)
    serving = next(i for i, m in enumerate(messages) if "llmswitch serving on" in m)
    assert created < serving
    assert "Traceback" not in log.read_text()


@pytest.fixture
def role_without_createdb() -> Iterator[str]:
    role = f"llmswitch_nocreate_{uuid.uuid4().hex[:12]}"
    pg(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    yield role
    pg(f'DROP ROLE IF EXISTS "{role}"')


def test_a_role_that_may_not_create_the_database_gets_one_line_naming_it(
    up: FakeUpstream, tmp_path: Path, missing_database: str, role_without_createdb: str
) -> None:
    config = write(tmp_path, on_postgres(up, database_url(missing_database, role_without_createdb)))
    done = serve(config, "--host", "127.0.0.1", "--workers", "2")
    assert done.returncode == 3, done.stderr
    (line,) = json_lines(done.stderr)
    assert line["level"] == "error"
    assert f"database '{missing_database}' does not exist" in line["msg"]
    assert f"role '{role_without_createdb}' may not create it" in line["msg"]
    assert f'CREATE DATABASE "{missing_database}"' in line["msg"]
    assert not pg("SELECT 1 FROM pg_database WHERE datname = $1", missing_database)


# ---------------------------------------------------------------- 6. no master key: loopback unless told


def listening_addresses(pid: int, port: int) -> set[str]:
    """The local IPv4 addresses ``pid``'s sockets listen on at ``port`` (from /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed since the listing
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = row.split()
        address, hex_port = cols[1].split(":")
        if int(hex_port, 16) == port and cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


def started(config: Path, *extra: str, env: dict[str, str]) -> tuple[set[str], list[dict[str, Any]]]:
    """Start a gateway, wait until it answers on loopback, and return where it listens and its log."""
    port = free_port()
    argv = [str(LLMSWITCH), "serve", "--config", str(config), "--port", str(port), *extra]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if call(port, "GET", "/health/liveliness", key=None, timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        addresses = listening_addresses(proc.pid, port)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    return addresses, json_lines(out.decode())


@pytest.fixture
def no_host_env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if k not in ("LLMSWITCH_HOST", "LLMSWITCH_MASTER_KEY", "LITELLM_MASTER_KEY")
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_without_a_master_key_it_listens_on_loopback_only_and_says_so(
    up: FakeUpstream, tmp_path: Path, no_host_env: dict[str, str]
) -> None:
    config = write(tmp_path, model_list(up))
    addresses, records = started(config, env=no_host_env)
    assert addresses == {"127.0.0.1"}
    warning = next(r for r in records if r.get("level") == "warning" and "no master key" in r["msg"])
    assert "127.0.0.1 only" in warning["msg"] and "--host" in warning["msg"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["--host", "LLMSWITCH_HOST", "server.host"])
def test_without_a_master_key_a_host_given_is_used_with_a_warning(
    up: FakeUpstream, tmp_path: Path, no_host_env: dict[str, str], how: str
) -> None:
    config = write(tmp_path, model_list(up))
    if how == "--host":
        addresses, records = started(config, "--host", "0.0.0.0", env=no_host_env)
    elif how == "LLMSWITCH_HOST":
        addresses, records = started(config, env={**no_host_env, "LLMSWITCH_HOST": "0.0.0.0"})
    else:  # the native form's server.host
        native = f"models:\n  m-openai:\n    model: openai/gpt-4o-mini\n    api_base: {up.openai_base}\n"
        config = write(tmp_path, native + "    api_key: sk-x\nserver:\n  host: 0.0.0.0\n")
        addresses, records = started(config, env=no_host_env)
    assert addresses == {"0.0.0.0"}
    assert any(r.get("level") == "warning" and "not authenticated" in r["msg"] for r in records), records


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_with_a_master_key_it_listens_everywhere_by_default(
    up: FakeUpstream, tmp_path: Path, no_host_env: dict[str, str]
) -> None:
    config = write(tmp_path, gateway_config(up, str(tmp_path / "keys.db")))
    addresses, records = started(config, env=no_host_env)
    assert addresses == {"0.0.0.0"}
    assert not any("master key" in r.get("msg", "") for r in records)


# ---------------------------------------------------------------- 8. LiteLLM's command line


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_litellm_command_line_serves(up: FakeUpstream, tmp_path: Path, no_host_env: dict[str, str]) -> None:
    config = write(tmp_path, gateway_config(up, str(tmp_path / "keys.db")))
    port = free_port()
    argv = [str(LLMSWITCH), "--config", str(config), "--port", str(port), "--host", "127.0.0.1", "--num_workers", "2"]
    proc = subprocess.Popen(
        [*argv, "--drop_params", "--telemetry", "False", "--detailed_debug"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=no_host_env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if call(port, "GET", "/health/readiness", key=None, timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert call(port, "GET", "/v1/models", key=MASTER_KEY, timeout=5).status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    records = json_lines(out.decode())
    msgs = [r.get("msg", "") for r in records]
    assert f"llmswitch serving on http://127.0.0.1:{port} (2 workers)" in msgs
    assert "ignoring LiteLLM option(s) that have no meaning here: --drop_params, --telemetry" in msgs
    assert any(r.get("level") == "debug" for r in records)  # --detailed_debug: the debug level


def test_litellm_command_line_tls_options_reach_serve(tmp_path: Path) -> None:
    config = write(tmp_path, "model_list: []\n")
    missing = tmp_path / "missing-cert.pem"
    argv = [
        str(LLMSWITCH),
        "--config",
        str(config),
        "--ssl_keyfile_path",
        str(missing),
        "--ssl_certfile_path",
        str(missing),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "missing-cert.pem" in done.stderr


def test_litellm_command_line_refuses_cipher_selection(tmp_path: Path) -> None:
    config = write(tmp_path, "model_list: []\n")
    done = subprocess.run(
        [str(LLMSWITCH), "--config", str(config), "--ciphers", "ECDHE"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--ciphers" in done.stderr and "TLS" in done.stderr


# ---------------------------------------------------------------- Python warnings in the JSON log

PROBE = """\
import itertools
import os
import sys
import warnings

_count = itertools.count()


def _warn_on_sqlite_connect(event, args):
    # a warning raised inside the gateway's start-up (its store opening), as a library's would be
    if event == "sqlite3.connect":
        warnings.warn(f"probe {os.getpid()} {next(_count)}: sqlite3.connect", UserWarning, stacklevel=2)


sys.addaudithook(_warn_on_sqlite_connect)
"""


def test_python_warnings_are_json_lines_of_the_log(up: FakeUpstream, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(PROBE)
    config = write(tmp_path, gateway_config(up, str(tmp_path / "keys.db")))
    port = free_port()
    argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if call(port, "GET", "/health/readiness", key=None, timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    records = json_lines(out.decode())  # fails on a raw warning line
    probes = [r for r in records if "sqlite3.connect" in r.get("msg", "")]
    assert probes, records
    assert all(r["level"] == "warning" and "UserWarning" in r["msg"] for r in probes)
    pids = {int(r["msg"].split("probe ")[1].split()[0]) for r in probes}
    assert proc.pid in pids  # the pre-flight, in the supervising process
    assert pids - {proc.pid}, "no warning from a worker"  # and the workers' start-up


# ---------------------------------------------------------------- 2. Redis before "serving on"


def test_redis_that_does_not_answer_is_a_warning_and_limits_stay_local(up: FakeUpstream, tmp_path: Path) -> None:
    text = gateway_config(up, str(tmp_path / "keys.db"))
    config = write(tmp_path, text + f"router_settings:\n  redis_host: 127.0.0.1\n  redis_port: {free_port()}\n")
    _, records = started(config, "--host", "127.0.0.1", env=dict(os.environ))
    warning = next(r for r in records if "does not answer" in r.get("msg", ""))
    assert warning["level"] == "warning" and "limits counted in each process" in warning["msg"]
    msgs = [r.get("msg", "") for r in records]
    assert msgs.index(warning["msg"]) < next(i for i, m in enumerate(msgs) if "serving on" in m)


@pytest.fixture
def redis_user() -> Iterator[str]:
    """A Redis ACL user of its own (password "right-password"), deleted afterwards."""
    import redis

    user = f"llmswitch-startup-{uuid.uuid4().hex[:12]}"
    client = redis.Redis(host="127.0.0.1", port=6379)
    client.acl_setuser(user, enabled=True, passwords=["+right-password"], commands=["+@all"], keys=["*"])
    try:
        yield user
    finally:
        client.acl_deluser(user)
        client.close()


def test_redis_that_refuses_the_password_stops_the_start(up: FakeUpstream, tmp_path: Path, redis_user: str) -> None:
    text = gateway_config(up, str(tmp_path / "keys.db"))
    url = f"redis://{redis_user}:not-the-password@127.0.0.1:6379/0"
    config = write(tmp_path, text + f"router_settings:\n  redis_url: {url}\n")
    done = serve(config, "--host", "127.0.0.1")
    assert done.returncode == 3, done.stderr
    (line,) = json_lines(done.stderr)
    assert "not starting: Redis at" in line["msg"] and "refused" in line["msg"]
    assert "not-the-password" not in done.stderr


def test_every_line_of_a_demo_gateway_is_json(tmp_path: Path) -> None:
    port = free_port()
    argv = [str(LLMSWITCH), "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if call(port, "GET", "/health/readiness", key=None, timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    msgs = [r.get("msg", "") for r in json_lines(out.decode())]  # fails on a line that is not JSON
    assert f"llmswitch demo: models demo-openai, demo-anthropic, demo-gemini on http://127.0.0.1:{port}" in msgs[0]
