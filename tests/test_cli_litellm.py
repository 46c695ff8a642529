"""LiteLLM's proxy command line translated to ``llmswitch serve`` arguments (the process itself: tests/server/test_startup.py)."""

from __future__ import annotations

import pytest

from llmswitch.cli_litellm import LiteLLMArgsError, is_litellm_style, serve_args


@pytest.mark.parametrize(
    ("argv", "serve", "ignored"),
    [
        (["--config", "c.yaml", "--port", "4000"], ["--config", "c.yaml", "--port", "4000"], []),
        (["-c", "c.yaml", "--host=0.0.0.0"], ["--config", "c.yaml", "--host", "0.0.0.0"], []),
        (["--num_workers", "8"], ["--workers", "8"], []),
        (
            ["--ssl_keyfile_path", "k.pem", "--ssl_certfile_path", "c.pem"],
            ["--ssl-keyfile", "k.pem", "--ssl-certfile", "c.pem"],
            [],
        ),
        (["--detailed_debug"], ["--log-level", "debug"], []),
        (["--debug", "--port", "1"], ["--log-level", "debug", "--port", "1"], []),
        # serve's own options mean the same without `serve`
        (
            ["--demo", "--workers", "2", "--graceful-seconds=5"],
            ["--demo", "--workers", "2", "--graceful-seconds", "5"],
            [],
        ),
        # an ignored option's value is left out with it; a known flag takes none
        (["--model", "gpt-4o", "--port", "1"], ["--port", "1"], ["--model"]),
        (["--drop_params", "--port", "1"], ["--port", "1"], ["--drop_params"]),
        (
            ["--telemetry", "False", "--run_gunicorn", "--max_budget=5"],
            [],
            ["--telemetry", "--run_gunicorn", "--max_budget"],
        ),
    ],
)
def test_serve_args(argv: list[str], serve: list[str], ignored: list[str]) -> None:
    got = serve_args(argv)
    assert (got.argv, got.ignored, got.version) == (serve, ignored, False)


def test_version() -> None:
    assert serve_args(["-v"]).version and serve_args(["--version"]).version


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--ciphers", "ECDHE"], "TLS"),
        (["--health"], "/health"),
        (["--port"], "--port needs a value"),
        (["--port", "1", "stray"], "unexpected argument 'stray'"),
    ],
)
def test_refused(argv: list[str], says: str) -> None:
    with pytest.raises(LiteLLMArgsError, match=says):
        serve_args(argv)


@pytest.mark.parametrize(
    ("argv", "litellm"),
    [
        (["--config", "c"], True),
        (["--port", "1"], True),
        (["serve", "--port", "1"], False),
        (["--help"], False),
        ([], False),
    ],
)
def test_is_litellm_style(argv: list[str], litellm: bool) -> None:
    assert is_litellm_style(argv) is litellm
