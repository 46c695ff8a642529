"""HTTPS for ``llmswitch serve``: the server's TLS context from certificate files (as uvicorn's ``--ssl-*``).

    >>> Server(app, ssl=TLSFiles("cert.pem", "key.pem").context())

TLS 1.2 at least, ALPN ``http/1.1``; with ``ca_certs``, clients must present a certificate that CA signed
(mutual TLS). Terminating TLS in a proxy in front (docs/edge.md) works as well.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """PEM files: the certificate chain, its private key (when not in ``certfile``), the key's password,
    and a CA bundle to verify client certificates with."""

    certfile: str
    keyfile: str | None = None
    password: str | None = None
    ca_certs: str | None = None

    def context(self) -> ssl.SSLContext:
        """The server context; ``ssl.SSLError`` or ``OSError`` naming the file when one cannot be used."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.load_cert_chain(self.certfile, self.keyfile, self.password)
        if self.ca_certs:
            ctx.load_verify_locations(cafile=self.ca_certs)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx
