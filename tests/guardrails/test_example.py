"""examples/guardrails.yaml, run as written: ``llmswitch serve`` with the environment it names, in front
of the fake upstream; a prompt's personal data and secrets reach the upstream masked, and an answer's
script is removed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import openai

from llmswitch.testing import FakeUpstream, Reply

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))  # the gateway harness of tests/server
from gateway_harness import served_example

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "guardrails.yaml"
MASTER = "sk-admin-example-5e1f"


def test_the_example_runs_as_written(tmp_path: Path) -> None:
    with FakeUpstream() as up:
        env = {
            "UPSTREAM_API_BASE": up.openai_base,
            "UPSTREAM_API_KEY": "sk-upstream-example",
            "LLMSWITCH_MASTER_KEY": MASTER,
        }
        with served_example(EXAMPLE, tmp_path, env, timeout=30) as port:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=MASTER, max_retries=0)
            prompt = "mail ann.lee@example.com, card 4111-1111-1111-1111, key AKIAIOSFODNN7EXAMPLE"
            up.script(Reply(text='<b onclick="steal()">Done</b><script>alert(1)</script>'))
            r = client.chat.completions.create(model="guarded", messages=[{"role": "user", "content": prompt}])
            assert r.choices[0].message.content == "<b>Done</b>"
            sent = json.loads(up.requests[-1].body)["messages"][0]["content"]
            assert sent == "mail <EMAIL_ADDRESS_1>, card <CREDIT_CARD_1>, key <AWS_ACCESS_KEY_1>"
            streamed = client.chat.completions.create(
                model="guarded", messages=[{"role": "user", "content": prompt}], stream=True
            )
            assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == sent
        out = (tmp_path / "out.log").read_text()
        for value in ("ann.lee@example.com", "4111-1111-1111-1111", "AKIAIOSFODNN7EXAMPLE"):
            assert value not in out
