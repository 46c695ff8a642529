"""The quickstart through `llmswitch serve` on a local model, with the official openai SDK as the client.

The gateway runs as a process, as a user starts it, from a config like ``examples/local.yaml``; nothing
leaves the machine.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from pydantic import BaseModel

LLMSWITCH = Path(sys.executable).with_name("llmswitch")
MASTER_KEY = "sk-local-test-3f9a"
QUICKSTART = [{"role": "user", "content": "What is 4200 + 42?"}]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health/readiness")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@pytest.fixture(scope="module")
def gateway(demo_model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("local-gateway")
    config = folder / "config.yaml"
    config.write_text(
        f"""model_list:
  - model_name: local
    litellm_params:
      model: llamacpp/smollm2-135m-instruct
      n_ctx: 2048
  - model_name: broken
    litellm_params:
      model: llamacpp/{folder / "missing.gguf"}
general_settings:
  master_key: {MASTER_KEY}
  store_path: {folder / "store.db"}
"""
    )
    port = free_port()
    log = folder / "serve.log"
    argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            if ready(port):
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base, api_key=MASTER_KEY, max_retries=0, timeout=120)


def test_the_openai_sdk_gets_the_quickstart_answered_whole_and_streamed(gateway: str) -> None:
    oc = client(gateway)
    r = oc.chat.completions.create(model="local", messages=QUICKSTART, temperature=0, max_tokens=40)
    answer = r.choices[0].message.content
    assert answer and answer.strip()
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.prompt_tokens > 12 and r.usage.completion_tokens > 0

    with oc.chat.completions.create(
        model="local",
        messages=QUICKSTART,
        temperature=0,
        max_tokens=40,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == r.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        r.choices[0].finish_reason
    ]


def test_an_anthropic_client_gets_the_same_answer_in_its_own_format(gateway: str) -> None:
    expected = client(gateway).chat.completions.create(model="local", messages=QUICKSTART, temperature=0, max_tokens=24)
    ac = anthropic.Anthropic(base_url=gateway.removesuffix("/v1"), api_key=MASTER_KEY, max_retries=0, timeout=120)
    # greedy, like the openai call (this anthropic SDK version has no temperature keyword)
    m = ac.messages.create(model="local", messages=QUICKSTART, max_tokens=24, extra_body={"temperature": 0})
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == expected.choices[0].message.content
    assert expected.usage is not None
    assert m.usage.output_tokens == expected.usage.completion_tokens
    assert m.stop_reason == {"stop": "end_turn", "length": "max_tokens"}[expected.choices[0].finish_reason]


class Sum(BaseModel):
    total: int
    explanation: str


def test_structured_output_through_the_gateway_fits_the_model_class(gateway: str) -> None:
    r = client(gateway).beta.chat.completions.parse(
        model="local", messages=QUICKSTART, response_format=Sum, temperature=0, max_tokens=80
    )
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, Sum)


def test_a_missing_model_file_is_a_404_naming_it(gateway: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(gateway).chat.completions.create(model="broken", messages=QUICKSTART)
    assert "missing.gguf" in str(caught.value)
