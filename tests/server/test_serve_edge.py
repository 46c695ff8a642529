"""``llmswitch serve``'s limits, timeouts and TLS options (server/serve_edge.py): flags, variables, defaults."""

from __future__ import annotations

import pytest

from llmswitch import cli
from llmswitch.server import serve_edge
from llmswitch.server.h1limits import ServerLimits
from llmswitch.server.tls import TLSFiles


def parse(argv: list[str]) -> dict[str, object]:
    return serve_edge.settings(cli._parser().parse_args(["serve", *argv]))


def test_the_defaults_are_the_servers() -> None:
    assert parse([]) == {"limits": ServerLimits(), "tls": None}


def test_flags_and_variables_set_each_limit_and_a_flag_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_BODY_TIMEOUT", "7.5")
    monkeypatch.setenv("LLMSWITCH_MAX_CONNECTIONS", "900")
    monkeypatch.setenv("LLMSWITCH_HEAD_TIMEOUT", "99")
    got = parse(["--head-timeout", "5", "--max-headers", "50", "--write-timeout", "3", "--keep-alive-timeout", "9"])
    assert got["limits"] == ServerLimits(
        head_timeout=5, body_timeout=7.5, write_timeout=3, keep_alive_timeout=9, max_connections=900, max_headers=50
    )


def test_tls_files_from_flags_and_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_SSL_KEYFILE_PASSWORD", "pw")
    monkeypatch.setenv("LLMSWITCH_SSL_CA_CERTS", "ca.pem")
    got = parse(["--ssl-certfile", "c.pem", "--ssl-keyfile", "k.pem"])
    assert got["tls"] == TLSFiles("c.pem", "k.pem", "pw", "ca.pem")


def test_a_key_without_a_certificate_is_refused() -> None:
    with pytest.raises(ValueError, match="need --ssl-certfile"):
        parse(["--ssl-keyfile", "k.pem"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--head-timeout", "0"], "head_timeout must be a positive number of seconds"),
        (["--max-connections", "0"], "max_connections must be at least 1"),
    ],
)
def test_values_out_of_range_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(argv)


def test_a_bad_variable_is_reported_like_a_bad_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMSWITCH_WRITE_TIMEOUT", "soon")
    with pytest.raises(SystemExit) as info:
        parse([])
    assert info.value.code == 2
    assert "--write-timeout: invalid float value: 'soon'" in capsys.readouterr().err


def test_serve_stops_with_exit_2_on_a_bad_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--demo", "--body-timeout", "-1"]) == 2
    assert "body_timeout must be a positive number" in capsys.readouterr().err
