"""docs/params.md shows the table in providers/params.py: every provider, every parameter, every cell."""

from __future__ import annotations

import re
from pathlib import Path

from llmswitch.providers.params import ACCEPTS, PARAMS, caller_field

DOC = Path(__file__).resolve().parents[2] / "docs" / "params.md"
CLIENTS = {"Anthropic client": "anthropic_messages", "Gemini client": "gemini"}


def table() -> tuple[list[str], list[list[str]]]:
    """The header and rows of the table under "What each provider takes"."""
    text = DOC.read_text().split("## What each provider takes", 1)[1]
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    return cells[0], cells[1:]


def ir_name(label: str) -> str:
    name = re.match(r"`([^`]+)`", label)
    assert name is not None, label
    return {"thinking": "thinking_budget"}.get(name.group(1), name.group(1))


def test_the_docs_table_matches_the_code() -> None:
    header, rows = table()
    providers = header[3:]
    assert header[:3] == ["parameter", *CLIENTS]
    assert set(providers) == set(ACCEPTS)
    assert {ir_name(r[0]) for r in rows} == set(PARAMS)
    for row in rows:
        name = ir_name(row[0])
        for column, dialect in zip(header[1:3], CLIENTS.values(), strict=True):
            cell = row[header.index(column)]
            assert cell == "—" or cell == f"`{caller_field(name, dialect)}`", (name, column, cell)
        for provider, cell in zip(providers, row[3:], strict=True):
            accepts = ACCEPTS[provider]
            if name in accepts.params:
                rename = accepts.renames.get(name)
                assert cell == (f"✓ as `{rename}`" if rename else "✓"), (name, provider, cell)
            elif name == "thinking_budget" and "reasoning_effort" in accepts.params:
                assert cell == "→ effort", (name, provider, cell)
            else:
                assert cell == "✗", (name, provider, cell)
