"""How one deployment reaches its upstream: its proxy and its TLS settings.

Set per deployment in ``litellm_params`` (``outbound_proxy``, ``ssl_verify``, ``ssl_certificate``) and
carried on each :class:`~llmswitch.providers.base.HTTPCall`; ``None`` fields mean "as the process
does" (the proxy environment variables; ``litellm_settings`` / ``SSL_VERIFY`` / ``SSL_CERTIFICATE``).

    >>> Network(outbound_proxy="http://proxy.internal:3128", ssl_verify="/etc/ssl/corp-ca.pem")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from llmswitch.errors import ConfigError


class Network(NamedTuple):
    # a proxy URL; False: always direct, whatever the environment says; None: from the environment
    outbound_proxy: str | bool | None = None
    # False: do not verify; a path: trust that CA bundle only; None: the process-wide setting
    ssl_verify: bool | str | None = None
    # a PEM file with a client certificate and its key, shown to upstreams that ask for one
    ssl_certificate: str | None = None


KEYS = ("outbound_proxy", "ssl_verify", "ssl_certificate")


def network_from_params(params: dict[str, Any], where: str) -> Network | None:
    """Take the network keys out of a deployment's ``litellm_params`` (they are not request fields)."""
    found = {key: params.pop(key) for key in KEYS if key in params}
    if not found:
        return None
    return network_from(found, where)


def network_from(values: Mapping[str, Any], where: str) -> Network | None:
    proxy, verify, cert = (values.get(key) for key in KEYS)
    if proxy is not None and not isinstance(proxy, str) and proxy is not False:
        raise ConfigError(f"{where}: outbound_proxy must be a proxy URL or false (direct), not {proxy!r}")
    if proxy == "":
        proxy = None
    if isinstance(verify, str) and verify.strip().lower() in ("true", "false"):
        verify = verify.strip().lower() == "true"
    if verify is not None and not isinstance(verify, bool | str):
        raise ConfigError(f"{where}: ssl_verify must be true, false or the path of a CA bundle, not {verify!r}")
    if cert is not None and not isinstance(cert, str):
        raise ConfigError(f"{where}: ssl_certificate must be the path of a PEM file, not {cert!r}")
    if isinstance(proxy, str):
        from llmswitch._http1_proxy import ProxyError, parse_proxy

        try:
            parse_proxy(proxy)
        except ProxyError as exc:
            raise ConfigError(f"{where}: outbound_proxy: {exc}") from exc
    network = Network(proxy, verify, cert or None)
    return None if network == Network() else network
