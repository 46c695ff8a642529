"""``llmswitch serve --demo``: model groups served by the built-in fake upstream, fully offline."""

from __future__ import annotations

import os
import tempfile
from typing import Any

DEMO_MASTER_KEY = "sk-demo-master"


def demo_config(upstream_url: str) -> Any:
    """A LiteLLM-format config whose three groups reach the fake upstream in each provider's dialect."""
    from llmswitch.config import load_config

    text = f"""
model_list:
  - model_name: demo-openai
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{upstream_url}/v1", api_key: sk-fake}}
  - model_name: demo-anthropic
    litellm_params: {{model: anthropic/claude-sonnet-4-20250514, api_base: "{upstream_url}", api_key: sk-fake}}
  - model_name: demo-gemini
    litellm_params: {{model: gemini/gemini-2.5-flash, api_base: "{upstream_url}", api_key: sk-fake}}
general_settings:
  master_key: {DEMO_MASTER_KEY}
  store_path: {os.path.join(tempfile.gettempdir(), f"llmswitch-demo-{os.getpid()}.db")}
"""
    fd, path = tempfile.mkstemp(prefix="llmswitch-demo-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        return load_config(path)
    finally:
        os.unlink(path)
