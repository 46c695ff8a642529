"""One fake upstream per session and one gateway per module for the matrix (see harness)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import ServedGateway, gateway_config

from llmswitch.testing import FakeUpstream


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def up(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """The shared fake upstream, with nothing scripted or recorded before the test."""
    upstream.reset()
    upstream.responder = None
    yield upstream
    upstream.reset()


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    """The module's gateway: ``m-<family>`` (refuse) and ``d-<family>`` (drop_params) deployments."""
    db = tmp_path_factory.mktemp("matrix") / "keys.db"
    with ServedGateway(gateway_config(upstream, str(db))) as served:
        yield served
