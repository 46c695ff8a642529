"""Guardrails tests reuse the gateway harness of tests/server (the gateway on loopback, the fake upstream)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
