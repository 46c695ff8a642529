"""The matrix's fixtures: the gateway tests' fake upstream (one per session, ``up`` reset for each test), and
one gateway per module with the matrix's deployments (see harness)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ServedGateway, gateway_config

from llmswitch.testing import FakeUpstream

# the same fixtures as the gateway's own tests (tests/server/conftest.py), not a copy of them
_where = Path(__file__).resolve().parents[1] / "server" / "conftest.py"
_spec = importlib.util.spec_from_file_location("server_conftest", _where)
assert _spec is not None and _spec.loader is not None
_server = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_server)
upstream = _server.upstream
up = _server.up


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    """The module's gateway: ``m-<family>`` (refuse) and ``d-<family>`` (drop_params) deployments."""
    db = tmp_path_factory.mktemp("matrix") / "keys.db"
    with ServedGateway(gateway_config(upstream, str(db))) as served:
        yield served
