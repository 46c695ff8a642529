"""HTTPS from our own server (server/tls.py): a self-signed certificate made here, clients that trust it.

Raw ``ssl`` sockets against the test app of ``test_h1``; the official openai SDK against the gateway; and
``llmswitch serve --ssl-certfile/--ssl-keyfile`` (and their LLMSWITCH_* variables) as a process.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gateway_harness import GROUPS, MASTER_KEY, free_port, gateway_config
from test_h1 import App, Reader, request, serving

from llmswitch.config import parse_config
from llmswitch.server.h1serve import Server
from llmswitch.server.serve import build_gateway
from llmswitch.server.tls import TLSFiles
from llmswitch.testing import FakeUpstream

LLMSWITCH = Path(sys.executable).with_name("llmswitch")


@dataclass
class Certs:
    cert: Path
    key: Path
    encrypted_key: Path
    password: str


def _cert(name: str, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A self-signed certificate for localhost and 127.0.0.1, its key in clear and encrypted."""
    where = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    (where / "cert.pem").write_bytes(_cert("localhost", key).public_bytes(serialization.Encoding.PEM))
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    (where / "key.pem").write_bytes(key.private_bytes(pem, pkcs8, serialization.NoEncryption()))
    password = "s3cret-pass"
    encrypted = serialization.BestAvailableEncryption(password.encode())
    (where / "key-encrypted.pem").write_bytes(key.private_bytes(pem, pkcs8, encrypted))
    return Certs(where / "cert.pem", where / "key.pem", where / "key-encrypted.pem", password)


def client_context(certs: Certs) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.cert))


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_server_speaks_https_and_the_scope_says_so(certs: Certs, loop_kind: str) -> None:
    app = App()
    context = TLSFiles(str(certs.cert), str(certs.encrypted_key), certs.password).context()
    with serving(app, loop_kind, ssl=context) as server:
        assert server.address is not None
        raw = socket.create_connection(("127.0.0.1", server.address[1]), timeout=5)
        with client_context(certs).wrap_socket(raw, server_hostname="localhost") as s:
            assert s.selected_alpn_protocol() in (None, "http/1.1")
            s.sendall(request("POST", "/echo", b"over tls"))
            r = Reader(s)  # type: ignore[arg-type]  # an SSLSocket is a socket
            assert json.loads(r.answer().body)["body"] == "over tls"
            s.sendall(request("GET", "/fixed"))  # keep-alive over TLS
            assert r.answer().body == b"fixed"
        # a client that does not trust the certificate does not get in
        raw = socket.create_connection(("127.0.0.1", server.address[1]), timeout=5)
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")
        raw.close()
    assert app.seen.scopes[0]["scheme"] == "https"


def test_client_certificates_are_required_with_ca_certs(certs: Certs, loop_kind: str) -> None:
    context = TLSFiles(str(certs.cert), str(certs.key), ca_certs=str(certs.cert)).context()
    with serving(App(), loop_kind, ssl=context) as server:
        assert server.address is not None
        port = server.address[1]
        with_cert = client_context(certs)
        with_cert.load_cert_chain(str(certs.cert), str(certs.key))  # the same self-signed pair, which the CA file holds
        with with_cert.wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="localhost"
        ) as s:
            s.sendall(request("GET", "/fixed"))
            assert Reader(s).answer().body == b"fixed"  # type: ignore[arg-type]
        plain = client_context(certs).wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="localhost"
        )
        # TLS 1.3: the refusal of a client without a certificate arrives on its first read
        with plain as s, pytest.raises((ssl.SSLError, ConnectionError)):
            s.sendall(request("GET", "/fixed"))
            assert s.recv(100) == b""
            raise ConnectionError("closed without an answer")


def test_a_wrong_key_password_is_a_clear_error(certs: Certs) -> None:
    with pytest.raises(ssl.SSLError):
        TLSFiles(str(certs.cert), str(certs.encrypted_key), "wrong").context()
    with pytest.raises(FileNotFoundError):
        TLSFiles(str(certs.cert.with_name("missing.pem"))).context()


def test_the_openai_sdk_reaches_the_gateway_over_https(certs: Certs, up: FakeUpstream, tmp_path: Path) -> None:
    check = parse_config(gateway_config(up, str(tmp_path / "keys.db")))
    assert check.config is not None
    port = free_port()
    server = Server(
        build_gateway(check.config),
        host="127.0.0.1",
        port=port,
        ssl=TLSFiles(str(certs.cert), str(certs.key)).context(),
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    try:
        with httpx.Client(verify=client_context(certs)) as http_client:
            client = openai.OpenAI(base_url=f"https://localhost:{port}/v1", api_key=MASTER_KEY, http_client=http_client)
            answer = client.chat.completions.create(
                model=GROUPS["openai"], messages=[{"role": "user", "content": "hello over tls"}]
            )
            assert answer.choices[0].message.content
            chunks = client.chat.completions.create(
                model=GROUPS["openai"], messages=[{"role": "user", "content": "stream"}], stream=True
            )
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def serve_process(certs: Certs, upstream: FakeUpstream, tmp_path: Path) -> Iterator[int]:
    """``llmswitch serve`` with the certificate given by flag and the key's password by variable."""
    config = tmp_path / "config.yaml"
    config.write_text(gateway_config(upstream, str(tmp_path / "keys.db")))
    port = free_port()
    env = {**os.environ, "LLMSWITCH_SSL_KEYFILE_PASSWORD": certs.password, "LLMSWITCH_HEAD_TIMEOUT": "5"}
    argv = [str(LLMSWITCH), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(certs.encrypted_key)]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(15)


def test_llmswitch_serve_with_ssl_options_serves_https(serve_process: int, certs: Certs) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            r = httpx.get(f"https://localhost:{serve_process}/health/readiness", verify=client_context(certs))
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "llmswitch serve did not answer over https"
            time.sleep(0.1)
    assert r.status_code == 200


def test_llmswitch_serve_refuses_to_start_on_a_bad_certificate(tmp_path: Path) -> None:
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    argv = [str(LLMSWITCH), "serve", "--demo", "--port", str(free_port()), "--ssl-certfile", str(bad)]
    done = subprocess.run(argv, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert str(bad) in done.stderr.decode()
