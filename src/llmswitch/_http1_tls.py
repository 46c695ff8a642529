"""TLS contexts for the HTTP/1.1 client: which CAs to trust and which client certificate to show.

LiteLLM's settings, with its names: ``ssl_verify`` (``False``, or the path of a CA bundle) and
``ssl_certificate`` (a PEM file with the client certificate and its key), per deployment or process-wide
(``SSL_VERIFY`` / ``SSL_CERTIFICATE`` in the environment). Without ``ssl_verify`` the CA bundle is
``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` when set, else the system's. A context is made once per
combination and shared (making one reads the CA files: far too slow per request).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

Verify = bool | str | None  # None: the process default; False: no verification; str: a CA bundle path

_contexts: dict[tuple[Verify, str | None], ssl.SSLContext] = {}
_override: ssl.SSLContext | None = None
# process-wide settings (litellm_settings / set_defaults); None: from the environment
_verify: Verify = None
_certificate: str | None = None


def _env_verify(env: Mapping[str, str]) -> Verify:
    value = env.get("SSL_VERIFY")
    if value is not None and value.strip():
        low = value.strip().lower()
        if low in ("false", "0", "no", "off"):
            return False
        if low not in ("true", "1", "yes", "on"):
            return value.strip()
    return _env_bundle(env)


def _env_bundle(env: Mapping[str, str]) -> Verify:
    """What verifying "as usual" trusts: the environment's CA bundle, else the system's CAs (True)."""
    return env.get("REQUESTS_CA_BUNDLE") or env.get("SSL_CERT_FILE") or True


def set_defaults(*, ssl_verify: Verify = None, ssl_certificate: str | None = None) -> None:
    """The process-wide ``ssl_verify`` / ``ssl_certificate`` (``None``: from the environment)."""
    global _verify, _certificate
    _verify, _certificate = ssl_verify, ssl_certificate
    _contexts.clear()


def context_for(verify: Verify = None, certificate: str | None = None) -> ssl.SSLContext:
    """The context for a deployment's settings (``None`` fields fall back to the process-wide ones)."""
    if _override is not None and verify is None and certificate is None:
        return _override
    key = (verify, certificate)
    context = _contexts.get(key)
    if context is None:
        context = _contexts[key] = _make(verify, certificate)
    return context


def _make(verify: Verify, certificate: str | None) -> ssl.SSLContext:
    if verify is None:
        verify = _verify if _verify is not None else _env_verify(os.environ)
    if verify is True:
        verify = _env_bundle(os.environ)
    if certificate is None:
        certificate = _certificate or os.environ.get("SSL_CERTIFICATE") or None
    try:
        if verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif isinstance(verify, str):
            context = ssl.create_default_context(cafile=verify)
        else:
            context = ssl.create_default_context()
        if certificate:
            context.load_cert_chain(certificate)
    except (OSError, ssl.SSLError) as exc:
        raise ssl.SSLError(
            f"cannot set up TLS (ssl_verify={verify!r}, ssl_certificate={certificate!r}): {exc}"
        ) from exc
    return context


def set_override(context: ssl.SSLContext | None) -> None:
    """Use ``context`` for every connection without settings of its own (``None``: back to the default)."""
    global _override
    _override = context
