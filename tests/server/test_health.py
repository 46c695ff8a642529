"""Health routes (server/health.py): the probes are open and name no deployment; ``/health`` needs a key."""

from __future__ import annotations

from gateway_harness import ServedGateway, dialect_error


def test_health_needs_a_key(gw: ServedGateway) -> None:
    for key in (None, "sk-not-a-key"):
        r = gw.call("GET", "/health", key=key)
        assert r.status == 401
        kind, _ = dialect_error("openai", r)
        assert kind == "authentication_error"
        assert b"api_base" not in r.body and b"deployments" not in r.body


def test_health_with_a_key_lists_the_deployments(gw: ServedGateway) -> None:
    for key in (None, gw.new_key()):
        r = gw.call("GET", "/health") if key is None else gw.call("GET", "/health", key=key)
        assert r.status == 200
        assert len(r.json()["deployments"]) == 3


def test_the_probes_stay_open_and_say_nothing_about_deployments(gw: ServedGateway) -> None:
    for path in ("/health/liveliness", "/health/liveness", "/health/readiness"):
        r = gw.call("GET", path, key=None)
        assert r.status == 200
        assert b"api_base" not in r.body and b"deployment" not in r.body and b"127.0.0.1" not in r.body
