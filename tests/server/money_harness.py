"""Gateways for the money tests: one on a thread with its own journal directory, and the groups they serve.

``served(config, journal)`` runs a gateway whose spend journal is ``journal``; ``embed_config`` is the priced
chat groups of :mod:`multi_harness` plus an embeddings group, all on the fake upstream.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from gateway_harness import ServedGateway
from multi_harness import priced_config

from llmswitch.testing import FakeUpstream

EMBED_GROUP = "m-embed"
EMBED_MODEL = "text-embedding-3-small"


@contextlib.contextmanager
def served(config: str, journal: Path) -> Iterator[ServedGateway]:
    """A gateway on a thread, journaling spend in ``journal`` (the variable is read while it is built)."""
    with journal_env(journal):
        gateway = ServedGateway(config)
    with gateway:
        yield gateway


@contextlib.contextmanager
def journal_env(journal: Path) -> Iterator[None]:
    old = os.environ.get("LLMSWITCH_JOURNAL_DIR")
    os.environ["LLMSWITCH_JOURNAL_DIR"] = str(journal)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LLMSWITCH_JOURNAL_DIR", None)
        else:
            os.environ["LLMSWITCH_JOURNAL_DIR"] = old


def embed_config(up: FakeUpstream, store: str, *, redis: bool = False) -> str:
    """The priced chat groups and an embeddings group on the fake upstream's OpenAI route."""
    row = f"""  - model_name: {EMBED_GROUP}
    litellm_params:
      model: openai/{EMBED_MODEL}
      api_base: "{up.openai_base}"
      api_key: sk-up-openai-2c91
"""
    return priced_config(up, store, redis=redis).replace("model_list:\n", "model_list:\n" + row, 1)
