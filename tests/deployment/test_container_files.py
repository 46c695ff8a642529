"""The container files agree with each other and with the gateway: the Dockerfile, compose.yaml and the
config compose mounts name the same port, path, health route and environment, and the image installs
through docker/install.sh (which scripts/container-check runs for real, since no engine is here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from llmswitch.config import check_config

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
CONFIG = ROOT / "examples" / "compose-config.yaml"


def instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(name + " ")]


def exec_form(name: str) -> list[str]:
    (args,) = instructions(name)
    value = json.loads(args)
    assert isinstance(value, list)
    return value


def test_entrypoint_cmd_port_and_health_check_agree() -> None:
    assert exec_form("ENTRYPOINT") == ["llmswitch"]
    cmd = exec_form("CMD")
    assert cmd[0] == "serve"
    port = cmd[cmd.index("--port") + 1]
    assert instructions("EXPOSE") == [port]
    (health,) = instructions("HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/health/liveliness" in health
    gateway = COMPOSE["services"]["llmswitch"]
    assert gateway["ports"] == [f"{port}:{port}"]
    config_path = cmd[cmd.index("--config") + 1]
    assert gateway["volumes"] == [f"./examples/compose-config.yaml:{config_path}:ro"]
    assert config_path.startswith(instructions("WORKDIR")[-1] + "/")


def test_the_image_runs_as_a_user_and_installs_through_the_shared_script() -> None:
    assert instructions("USER") == ["llmswitch"]
    runs = " ".join(instructions("RUN"))
    assert "sh docker/install.sh wheel" in runs and "sh /tmp/install/install.sh install" in runs
    assert "pip" not in runs  # every pip command lives in docker/install.sh
    check = (ROOT / "scripts" / "container-check").read_text()
    assert 'docker/install.sh wheel "$work/dist"' in check and 'docker/install.sh" install' in check


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for args in instructions("COPY"):
        if args.startswith("--from="):
            continue
        for source in args.split()[:-1]:
            top = source.rstrip("/").split("/")[0]
            assert top not in ignored, source
            assert (ROOT / source).exists(), source


def test_compose_waits_for_healthy_postgres_and_redis() -> None:
    services = COMPOSE["services"]
    assert services["llmswitch"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "postgres-data" in COMPOSE["volumes"]


def test_the_mounted_config_reads_only_what_compose_sets_and_is_valid() -> None:
    environment = COMPOSE["services"]["llmswitch"]["environment"]
    wanted = set(re.findall(r"os\.environ/([A-Z_]+)", CONFIG.read_text()))
    assert wanted <= set(environment), wanted - set(environment)
    env = dict.fromkeys(wanted, "x") | {"DATABASE_URL": "postgresql://u@postgres/db", "REDIS_PORT": "6379"}
    config, problems, warnings = check_config(CONFIG, env=env)
    assert problems == [] and warnings == [] and config is not None
    assert config.server.master_key == "x" and config.server.database_url == "postgresql://u@postgres/db"
    assert config.router.redis_host == "x"
    db_url = environment["DATABASE_URL"]
    assert db_url.startswith("postgresql://") and "@postgres:5432/" in db_url
    assert environment["REDIS_HOST"] == "redis"
