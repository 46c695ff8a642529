"""Every ```python block of the README runs, as a user would paste it, offline.

Each block runs in a process of its own, with the environment pointing it at a fake upstream
(``OPENAI_API_BASE``, ``ANTHROPIC_API_BASE``, ``GEMINI_API_BASE`` and their keys) and, for the
gateway's examples, at ``llmswitch serve --demo`` (``LLMSWITCH_URL``, ``LLMSWITCH_KEY``). A block
that truly cannot run offline is preceded by ``<!-- not run: reason -->``; it is reported as
skipped with that reason.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmswitch.server.demo import DEMO_MASTER_KEY
from llmswitch.testing import FakeUpstream

README = Path(__file__).resolve().parents[1] / "README.md"
LLMSWITCH = Path(sys.executable).with_name("llmswitch")
_FENCE = re.compile(r"^(?P<marker><!-- not run: (?P<reason>.+?) -->\n)?```python\n(?P<code>.*?)^```$", re.M | re.S)
_HEADING = re.compile(r"^#+ (.+)$", re.M)


@dataclass(frozen=True)
class Block:
    line: int
    heading: str
    code: str
    not_run: str | None

    @property
    def name(self) -> str:
        return f"line {self.line} ({self.heading})"


def readme_blocks(text: str) -> list[Block]:
    blocks = []
    for m in _FENCE.finditer(text):
        line = text.count("\n", 0, m.start("code"))
        headings = _HEADING.findall(text, 0, m.start())
        blocks.append(Block(line, headings[-1] if headings else "top", m.group("code"), m.group("reason")))
    return blocks


BLOCKS = readme_blocks(README.read_text())


def test_the_readme_has_python_blocks_and_the_marker_is_read() -> None:
    assert len(BLOCKS) >= 4
    sample = "text\n<!-- not run: needs a GPU -->\n```python\nimport torch\n```\n\n```python\nx = 1\n```\n"
    assert [(b.code, b.not_run) for b in readme_blocks(sample)] == [
        ("import torch\n", "needs a GPU"),
        ("x = 1\n", None),
    ]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def demo_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``llmswitch serve --demo`` on a free port, as the README's gateway examples expect it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("demo") / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(LLMSWITCH), "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_readme_block_runs(
    block: Block, upstream: FakeUpstream, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if block.not_run is not None:
        pytest.skip(f"README {block.name} is marked not run: {block.not_run}")
    env = {
        **os.environ,
        "OPENAI_API_BASE": upstream.openai_base,
        "OPENAI_API_KEY": "sk-readme-openai",
        "ANTHROPIC_API_BASE": upstream.anthropic_base,
        "ANTHROPIC_API_KEY": "sk-readme-anthropic",
        "GEMINI_API_BASE": upstream.gemini_base,
        "GEMINI_API_KEY": "sk-readme-gemini",
    }
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_API_KEY"):
        env.pop(name, None)
    uses_gateway = "LLMSWITCH_URL" in block.code
    if uses_gateway:
        env["LLMSWITCH_URL"] = request.getfixturevalue("demo_gateway")
        env["LLMSWITCH_KEY"] = DEMO_MASTER_KEY
    before = len(upstream.requests)
    done = subprocess.run(
        [sys.executable, "-c", block.code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"README {block.name} failed:\n{block.code}\n{done.stderr}"
    if not uses_gateway and "FakeUpstream()" not in block.code:
        assert len(upstream.requests) > before, "the block did not reach the fake upstream"
