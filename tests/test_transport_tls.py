"""llmswitch._http1_tls: which CAs the client trusts and which certificate it shows, set per deployment,
process-wide (``litellm_settings``), or by the environment; against loopback TLS servers whose certificates
come from a CA made in the test.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

from llmswitch import transport
from llmswitch.errors import APIConnectionError
from llmswitch.network import Network
from test_transport import Run, ServerConn, Wire, answer_each, call, response
from tls_ca import TestCA

TLS_VARIABLES = ("SSL_VERIFY", "SSL_CERTIFICATE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    return uvloop.run if request.param == "uvloop" else asyncio.run


@pytest.fixture(autouse=True)
def clean_tls(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No TLS variables from the machine, and the process-wide settings back to defaults afterwards."""
    for name in TLS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    transport.configure_tls()
    yield
    monkeypatch.undo()
    transport.configure_tls()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("tls-ca"))


@pytest.fixture(scope="module")
def server_cert(ca: TestCA) -> Path:
    return ca.issue("server.pem", dns=("localhost",), ips=("127.0.0.1",))


@pytest.fixture(scope="module")
def client_cert(ca: TestCA) -> Path:
    return ca.issue("client.pem", dns=("gateway.test",), client=True)


def test_a_deployment_ca_bundle_is_trusted_and_nothing_else(run: Run, ca: TestCA, server_cert: Path) -> None:
    async def main() -> None:
        async with Wire(answer_each, ssl_context=ca.server_context(server_cert)) as wire:
            with pytest.raises(APIConnectionError, match="SSLCertVerificationError"):
                await transport.send(call(wire.url()), timeout=5)
            own = call(wire.url())._replace(network=Network(ssl_verify=str(ca.pem)))
            assert (await transport.send(own, timeout=5)).status == 200
            assert (await transport.send(own, timeout=5)).status == 200
            # the trusting deployment kept its connection (a refused handshake never reaches the handler)
            assert wire.accepts == 1

    run(main())


def test_ssl_verify_false_skips_verification_for_that_deployment_only(run: Run, ca: TestCA, server_cert: Path) -> None:
    async def main() -> None:
        async with Wire(answer_each, ssl_context=ca.server_context(server_cert)) as wire:
            loose = call(wire.url())._replace(network=Network(ssl_verify=False))
            assert (await transport.send(loose, timeout=5)).status == 200
            with pytest.raises(APIConnectionError, match="SSLCertVerificationError"):
                await transport.send(call(wire.url()), timeout=5)

    run(main())


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_VERIFY"])
def test_the_environment_names_the_ca_bundle(
    run: Run, ca: TestCA, server_cert: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, str(ca.pem))
    transport.configure_tls()  # contexts are made once: a changed environment is read on reconfiguring

    async def main() -> None:
        async with Wire(answer_each, ssl_context=ca.server_context(server_cert)) as wire:
            assert (await transport.send(call(wire.url()), timeout=5)).status == 200

    run(main())


def test_ssl_verify_false_in_the_environment_and_process_wide_settings_under_deployment_ones(
    run: Run, ca: TestCA, server_cert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        async with Wire(answer_each, ssl_context=ca.server_context(server_cert)) as wire:
            monkeypatch.setenv("SSL_VERIFY", "False")
            transport.configure_tls()
            assert (await transport.send(call(wire.url()), timeout=5)).status == 200
            # litellm_settings win over the environment (and reach a pool already in use)
            transport.configure_tls(ssl_verify=str(ca.pem))
            assert (await transport.send(call(wire.url()), timeout=5)).status == 200
            strict = call(wire.url())._replace(network=Network(ssl_verify=True))
            monkeypatch.delenv("SSL_VERIFY")
            with pytest.raises(APIConnectionError, match="SSLCertVerificationError"):
                await transport.send(strict, timeout=5)  # a deployment's own setting wins over both
            transport.configure_tls()  # back to the (now empty) environment: verification with system CAs
            with pytest.raises(APIConnectionError, match="SSLCertVerificationError"):
                await transport.send(call(wire.url()), timeout=5)

    run(main())


def test_a_client_certificate_is_shown_to_an_upstream_that_demands_one(
    run: Run, ca: TestCA, server_cert: Path, client_cert: Path
) -> None:
    peers: list[object] = []

    async def handler(conn: ServerConn) -> None:
        ssl_object = conn.writer.get_extra_info("ssl_object")
        peers.append(ssl_object.getpeercert()["subject"] if ssl_object else None)
        while await conn.request() is not None:
            conn.write(response(json.dumps({"ok": True}).encode()))

    async def main() -> None:
        server = ca.server_context(server_cert, require_client_cert=True)
        async with Wire(handler, ssl_context=server) as wire:
            shown = call(wire.url())._replace(network=Network(ssl_verify=str(ca.pem), ssl_certificate=str(client_cert)))
            assert (await transport.send(shown, timeout=5)).status == 200
            assert peers == [((("commonName", "gateway.test"),),)]
            bare = call(wire.url())._replace(network=Network(ssl_verify=str(ca.pem)))
            with pytest.raises(APIConnectionError):
                await transport.send(bare, timeout=5)

    run(main())


def test_a_missing_ca_bundle_is_a_connection_error_naming_the_setting(run: Run, tmp_path: Path) -> None:
    async def main() -> None:
        bad = call("https://localhost:1/v1")._replace(network=Network(ssl_verify=str(tmp_path / "nope.pem")))
        with pytest.raises(APIConnectionError, match=r"cannot set up TLS \(ssl_verify='.*nope\.pem'"):
            await transport.send(bad, timeout=5)

    run(main())


def test_litellm_settings_ssl_verify_reaches_the_client_when_the_gateway_is_built(
    run: Run, ca: TestCA, server_cert: Path
) -> None:
    from llmswitch.config import parse_config
    from llmswitch.server.serve import build_gateway

    config = f'model_list: []\nlitellm_settings:\n  ssl_verify: "{ca.pem}"\n'
    check = parse_config(config, "config.yaml", env={})
    assert check.problems == [] and check.config is not None
    build_gateway(check.config)

    async def main() -> None:
        async with Wire(answer_each, ssl_context=ca.server_context(server_cert)) as wire:
            assert (await transport.send(call(wire.url()), timeout=5)).status == 200

    run(main())


def test_the_context_checks_hostnames(ca: TestCA) -> None:
    from llmswitch import _http1_tls

    context = _http1_tls.context_for(str(ca.pem))
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert _http1_tls.context_for(str(ca.pem)) is context  # made once


def test_ssl_verify_true_on_a_deployment_verifies_as_usual_with_the_environments_bundle(
    run: Run, ca: TestCA, server_cert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.pem))
    transport.configure_tls(ssl_verify=False)  # process-wide: no verification at all

    async def main() -> None:
        async with Wire(answer_each, ssl_context=ca.server_context(server_cert)) as wire:
            usual = call(wire.url("/a"))._replace(network=Network(ssl_verify=True))
            assert (await transport.send(usual, timeout=5)).status == 200
            monkeypatch.delenv("REQUESTS_CA_BUNDLE")
            transport.configure_tls(ssl_verify=False)
            with pytest.raises(APIConnectionError, match="SSLCertVerificationError"):
                await transport.send(call(wire.url("/b"))._replace(network=Network(ssl_verify=True)), timeout=5)

    run(main())
