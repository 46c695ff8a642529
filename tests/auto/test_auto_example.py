"""examples/auto-router.yaml, served as written: ``llmswitch serve`` with the environment it names, two
fake upstreams as the weak and strong tiers; the tier that answered is in ``x-llmswitch-model-group``."""

from __future__ import annotations

import json
from pathlib import Path

import openai
from gateway_harness import served_example

from llmswitch.testing import FakeUpstream, Reply

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "auto-router.yaml"
MASTER = "sk-admin-auto-example-2d4b"
PROMPTS = (
    "hi",
    "What is the capital of France?",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Prove that the square root of 2 is irrational, step by step, and explain why each step holds.",
)


def test_the_example_runs_as_written(tmp_path: Path) -> None:
    with FakeUpstream() as weak, FakeUpstream() as strong:
        weak.default = Reply(text="from the weak tier")
        strong.default = Reply(text="from the strong tier")
        env = {
            "WEAK_API_BASE": weak.openai_base,
            "WEAK_API_KEY": "sk-weak-example",
            "STRONG_API_BASE": strong.openai_base,
            "STRONG_API_KEY": "sk-strong-example",
            "LLMSWITCH_MASTER_KEY": MASTER,
        }
        with served_example(EXAMPLE, tmp_path, env) as port:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=MASTER, max_retries=0)
            with client:
                seen = set()
                for prompt in PROMPTS:
                    before = (len(weak.requests), len(strong.requests))
                    raw = client.chat.completions.with_raw_response.create(
                        model="auto", messages=[{"role": "user", "content": prompt}]
                    )
                    tier = raw.headers["x-llmswitch-model-group"]
                    assert tier in ("weak", "strong")
                    seen.add(tier)
                    assert raw.parse().choices[0].message.content == f"from the {tier} tier"
                    assert raw.headers["x-llmswitch-route"] == tier
                    after = (len(weak.requests), len(strong.requests))
                    assert after == ((before[0] + 1, before[1]) if tier == "weak" else (before[0], before[1] + 1))
                    upstream = weak if tier == "weak" else strong
                    assert json.loads(upstream.requests[-1].body)["model"] == f"{tier}-model"
                    assert upstream.requests[-1].headers["authorization"] == f"Bearer sk-{tier}-example"
                for wanted in ("strong", "weak"):
                    raw = client.chat.completions.with_raw_response.create(
                        model="auto",
                        messages=[{"role": "user", "content": "hi"}],
                        extra_headers={"x-llmswitch-route": wanted},
                    )
                    assert raw.headers["x-llmswitch-model-group"] == wanted
                streamed = client.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
                )
                assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices).startswith("from the")
