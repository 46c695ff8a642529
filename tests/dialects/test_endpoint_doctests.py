"""The examples in the docstrings of Ollama's dialect and provider and of token counting run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "llmswitch.dialects.ollama_chat",
    "llmswitch.dialects.ollama_chat_stream",
    "llmswitch.dialects.ollama_chat_server",
    "llmswitch.dialects.anthropic_count_tokens",
    "llmswitch.dialects.gemini_count_tokens",
    "llmswitch.count_tokens",
    "llmswitch.providers.ollama",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
