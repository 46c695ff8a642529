"""Fixtures for the telemetry tests: a fake upstream per test, the gateway harness of tests/server, and
no tracing left installed between tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from llmswitch.telemetry import traces
from llmswitch.testing import FakeUpstream


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(autouse=True)
def no_tracing_left() -> Iterator[None]:
    yield
    traces.install(None)


@pytest.fixture(autouse=True)
def journal_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_JOURNAL_DIR", str(tmp_path / "journal"))
