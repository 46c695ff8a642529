"""The examples in the config package's docstrings run, so the documentation cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "llmswitch.config",
    "llmswitch.config.build",
    "llmswitch.config.from_env",
    "llmswitch.config.loading",
    "llmswitch.config.model",
    "llmswitch.config.positioned_yaml",
    "llmswitch.config.problems",
    "llmswitch.config.reading",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
