"""How the gateway keeps files and runs batches; every setting from an environment variable.

>>> BatchSettings.from_env({"LLMSWITCH_BATCH_CONCURRENCY": "8"}).concurrency
8
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from llmswitch.errors import ConfigError

StorageMode = Literal["auto", "local", "store"]


@dataclass(frozen=True)
class BatchSettings:
    files_dir: str = "llmswitch-files"
    """Where file contents go when kept locally (``LLMSWITCH_BATCH_FILES_DIR``)."""
    storage: StorageMode = "auto"
    """``local`` (a directory), ``store`` (the database, for several instances), or ``auto``: the store on
    PostgreSQL, a directory on SQLite (``LLMSWITCH_BATCH_FILE_STORAGE``)."""
    max_file_bytes: int = 200 * 1024 * 1024
    """Largest upload (``LLMSWITCH_BATCH_MAX_FILE_BYTES``; OpenAI's limit is 200 MB)."""
    max_lines: int = 50_000
    """Most lines in one batch (``LLMSWITCH_BATCH_MAX_LINES``; OpenAI's limit)."""
    concurrency: int = 32
    """Lines one instance runs at once (``LLMSWITCH_BATCH_CONCURRENCY``)."""
    lease_s: float = 60.0
    """How long a claimed line stays an instance's without renewal (``LLMSWITCH_BATCH_LEASE_SECONDS``): a
    killed instance's lines are claimed again after this."""
    poll_s: float = 1.0
    """How often an instance looks for work and polls native jobs (``LLMSWITCH_BATCH_POLL_SECONDS``)."""
    native_poll_s: float = 30.0
    """How often a native batch's job is polled at the provider (``LLMSWITCH_BATCH_NATIVE_POLL_SECONDS``); a
    cancel is passed on at the next look whatever this is."""
    native: bool = True
    """Send batches to the provider's batch API where there is one (``LLMSWITCH_BATCH_NATIVE=off``: run
    every batch in the gateway; per deployment, ``model_info: {batch_mode: gateway}``)."""
    gateway_at_batch_rates: bool = True
    """Price lines the gateway runs at the provider's batch rates, as the issue asks (the provider bills
    them as normal requests: ``LLMSWITCH_BATCH_GATEWAY_PRICING=normal`` records what it bills)."""
    max_attempts: int = 5
    """Times a line is tried across rate limits and instance deaths before it is failed."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BatchSettings:
        env = os.environ if env is None else env
        storage = env.get("LLMSWITCH_BATCH_FILE_STORAGE", "auto").strip().lower()
        if storage not in ("auto", "local", "store"):
            raise ConfigError(f"LLMSWITCH_BATCH_FILE_STORAGE must be auto, local or store, not {storage!r}")
        return cls(
            files_dir=env.get("LLMSWITCH_BATCH_FILES_DIR", cls.files_dir),
            storage=storage,  # type: ignore[arg-type]
            max_file_bytes=_number(env, "LLMSWITCH_BATCH_MAX_FILE_BYTES", cls.max_file_bytes, int),
            max_lines=_number(env, "LLMSWITCH_BATCH_MAX_LINES", cls.max_lines, int),
            concurrency=_number(env, "LLMSWITCH_BATCH_CONCURRENCY", cls.concurrency, int),
            lease_s=_number(env, "LLMSWITCH_BATCH_LEASE_SECONDS", cls.lease_s, float),
            poll_s=_number(env, "LLMSWITCH_BATCH_POLL_SECONDS", cls.poll_s, float),
            native_poll_s=_number(env, "LLMSWITCH_BATCH_NATIVE_POLL_SECONDS", cls.native_poll_s, float),
            native=env.get("LLMSWITCH_BATCH_NATIVE", "on").strip().lower() not in ("off", "0", "false", "no"),
            gateway_at_batch_rates=env.get("LLMSWITCH_BATCH_GATEWAY_PRICING", "batch").strip().lower() != "normal",
            max_attempts=_number(env, "LLMSWITCH_BATCH_MAX_ATTEMPTS", cls.max_attempts, int),
        )


def _number(env: Mapping[str, str], name: str, default: float, kind: type[int] | type[float]) -> Any:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a {kind.__name__}, not {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {raw!r}")
    return value
