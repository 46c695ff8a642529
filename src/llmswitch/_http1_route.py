"""Where a request's connection goes: direct, through an http proxy, or through a CONNECT tunnel.

A :class:`Route` is worked out once per URL and deployment network settings and cached by the pool
(the proxy environment is read once per pool, never per request). Its ``key`` is what idle
connections are pooled by: the origin, the proxy and the TLS context, so two deployments that reach
one origin differently never share a connection.
"""

from __future__ import annotations

import ssl
from typing import NamedTuple

from llmswitch import _http1_tls
from llmswitch._http1 import RouteKey
from llmswitch._http1_proxy import Proxy, ProxyEnvironment, parse_proxy
from llmswitch._http1_request import Target, parse_url
from llmswitch.network import Network


class Route(NamedTuple):
    key: RouteKey
    target: Target  # what the request line and Host say (absolute form through an http proxy)
    host: str  # where the TCP connection goes: the proxy, or the origin
    port: int
    proxy: Proxy | None
    tunnel: bool  # CONNECT to the origin through the proxy before anything else
    tls: ssl.SSLContext | None  # TLS with the origin
    server_hostname: str | None


def make_route(url: str, network: Network | None, proxies: ProxyEnvironment) -> Route:
    target = parse_url(url)
    scheme, host, port = target.origin
    proxy: Proxy | None
    if network is None or network.outbound_proxy is None or network.outbound_proxy is True:
        proxy = proxies.proxy_for(scheme, host, port)
    elif network.outbound_proxy is False:
        proxy = None
    else:
        proxy = parse_proxy(network.outbound_proxy)
    tls: ssl.SSLContext | None = None
    if scheme == "https":
        tls = _http1_tls.context_for(*((network.ssl_verify, network.ssl_certificate) if network else (None, None)))
    # the credentials enter the key only as a hash: keys may end up in a debugger or a log
    via = "" if proxy is None else f" via {proxy.url}#{hash(proxy.authorization) & 0xFFFFFFFF:x}"
    key: RouteKey = f"{scheme}://{host}:{port}{via} tls#{id(tls) if tls is not None else 0}"
    if proxy is None:
        return Route(key, target, host, port, None, False, tls, host if tls is not None else None)
    if tls is not None:
        return Route(key, target, proxy.host, proxy.port, proxy, True, tls, host)
    # plain http through the proxy: the proxy reads the whole URL from the request line
    absolute = f"http://{target.authority}{target.path}"
    return Route(
        key,
        target._replace(path=absolute, proxy_auth=proxy.authorization),
        proxy.host,
        proxy.port,
        proxy,
        False,
        None,
        None,
    )
