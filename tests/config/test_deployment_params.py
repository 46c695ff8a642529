"""A deployment's provider parameters: a misspelled completion setting gets a positioned did-you-mean warning
(both config forms, ``llmswitch config check`` and serve start); every key LiteLLM documents stays silent."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from llmswitch.config import check_config, parse_config
from llmswitch.config.litellm_keys import DEPLOYMENT_PARAMS

DOCS = Path(__file__).parent / "litellm_docs"
LLMSWITCH = Path(sys.executable).with_name("llmswitch")

LITELLM_TYPOS = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: sk-1
      temprature: 0.2
      max_tokns: 100
      top_p: 0.9
      frobnicate: yes
"""

NATIVE_TYPOS = """\
models:
  gpt-4o:
    model: openai/gpt-4o
    api_key: sk-1
    temperature: 0.3
    params:
      temprature: 0.2
      max_tokens: 100
      max_tokns: 100
"""


def warning_lines(text: str, file: str = "config.yaml") -> list[str]:
    config, problems, warnings = parse_config(text, file, env={})
    assert problems == [] and config is not None
    return [str(w) for w in warnings]


def test_misspelled_completion_settings_in_litellm_params_warn_with_did_you_mean_and_line() -> None:
    assert warning_lines(LITELLM_TYPOS) == [
        "config.yaml:6: model_list[0].litellm_params.temprature: unknown key, passed to the provider as is; "
        "did you mean 'temperature'?",
        "config.yaml:7: model_list[0].litellm_params.max_tokns: unknown key, passed to the provider as is; "
        "did you mean 'max_tokens'?",
        "config.yaml:9: model_list[0].litellm_params.frobnicate: unknown key, passed to the provider as is",
    ]


def test_unknown_params_are_still_passed_on_as_litellm_does() -> None:
    config, _, _ = parse_config(LITELLM_TYPOS, "config.yaml", env={})
    assert config is not None
    assert dict(config.deployments[0].params) == {
        "temprature": 0.2,
        "max_tokns": 100,
        "top_p": 0.9,
        "frobnicate": True,
    }


def test_native_form_params_warn_the_same_way_and_flat_settings_are_pointed_to_params() -> None:
    assert warning_lines(NATIVE_TYPOS) == [
        "config.yaml:5: models.gpt-4o.temperature: a provider parameter: write it under 'params:' "
        "(params: {temperature: ...}); ignored",
        "config.yaml:7: models.gpt-4o.params.temprature: unknown key, passed to the provider as is; "
        "did you mean 'temperature'?",
        "config.yaml:9: models.gpt-4o.params.max_tokns: unknown key, passed to the provider as is; "
        "did you mean 'max_tokens'?",
    ]


def test_every_documented_litellm_param_is_silent() -> None:
    rows = "\n".join(f"      {key}: x" for key in sorted(DEPLOYMENT_PARAMS))
    text = f"model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n{rows}\n"
    assert warning_lines(text) == []
    native_rows = "\n".join(f"      {key}: x" for key in sorted(DEPLOYMENT_PARAMS))
    assert warning_lines(f"models:\n  m:\n    model: openai/gpt-4o\n    params:\n{native_rows}\n") == []


@pytest.mark.parametrize("key", ["drop_params", "additional_drop_params", "ssl_verify", "ssl_certificate"])
def test_keys_added_for_request_shaping_and_tls_are_known(key: str) -> None:
    text = f"model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n      {key}: true\n"
    assert warning_lines(text) == []


@pytest.mark.parametrize("sample", sorted(DOCS.glob("*.yaml")), ids=lambda p: p.stem)
def test_no_litellm_doc_config_warns_about_a_litellm_param(sample: Path) -> None:
    _, _, warnings = check_config(sample, env={"REDIS_PORT": "6379"})
    # (environment variables the samples read are not set here: those warnings are about the value)
    assert [str(w) for w in warnings if ".litellm_params." in w.key and "environment variable" not in w.message] == []


def test_config_check_prints_the_warning_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(LITELLM_TYPOS)
    done = subprocess.run(
        [str(LLMSWITCH), "config", "check", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (
        f"warning: {config}:6: model_list[0].litellm_params.temprature: unknown key, passed to the provider as is; "
        "did you mean 'temperature'?"
    ) in done.stderr.splitlines()


@pytest.mark.slow
def test_serve_start_logs_the_warning(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(LITELLM_TYPOS + f"general_settings:\n  store_path: {tmp_path / 'keys.db'}\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "serve.log"
    argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/liveliness", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    logged = [json.loads(line).get("msg") for line in log.read_text().splitlines() if line.startswith("{")]
    assert (
        f"config: {config}:7: model_list[0].litellm_params.max_tokns: unknown key, passed to the provider as is; "
        "did you mean 'max_tokens'?"
    ) in logged


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("tempreature", "temperature"),
        ("top-p", "top_p"),
        ("frequency_penality", "frequency_penalty"),
        ("reasoning_efort", "reasoning_effort"),
        ("extra_header", "extra_headers"),
        ("stream_timout", "stream_timeout"),
        ("drop_param", "drop_params"),
        ("ssl_verfy", "ssl_verify"),
    ],
)
def test_typos_of_settings_and_fields_get_the_right_suggestion(typo: str, meant: str) -> None:
    text = f"model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/gpt-4o\n      {typo}: 1\n"
    (line,) = warning_lines(text)
    assert line.endswith(f"{typo}: unknown key, passed to the provider as is; did you mean {meant!r}?")
