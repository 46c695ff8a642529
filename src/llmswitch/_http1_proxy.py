"""Forward proxies for the HTTP/1.1 client: which proxy serves an origin, and the CONNECT tunnel.

The environment is read the way curl reads it: ``https_proxy`` for https URLs, ``http_proxy`` for
http ones, ``all_proxy`` for both (lower-case names first, then upper-case), and ``no_proxy`` for the
hosts that go direct: a comma list of names (``example.com`` and ``.example.com`` both match the
domain and every name under it), IP addresses and CIDR ranges, each optionally with ``:port``, or ``*``
for everything. A proxy URL without a scheme is ``http://``; its ``user:password@`` becomes a
``Proxy-Authorization: Basic`` header. https origins are reached through a ``CONNECT`` tunnel (TLS then
runs end to end with the origin); http origins get their requests in absolute form.

Plain exceptions, as in :mod:`llmswitch._http1`: :class:`ProxyError` is a ``ConnectionError``.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import socket
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

# a CONNECT answer's head larger than this is not a proxy talking
MAX_CONNECT_HEAD = 64 * 1024


class ProxyError(ConnectionError):
    """A proxy refused a tunnel, asked for credentials, or is not one this client can use."""


class Proxy(NamedTuple):
    url: str  # as configured, without credentials (for messages and pool keys)
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization header's value


def parse_proxy(url: str) -> Proxy:
    """A proxy URL (``http://user:pass@host:3128``; no scheme means ``http://``)."""
    text = url.strip()
    if "://" not in text:
        text = f"http://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ProxyError(f"the proxy URL {_hide(text)!r} is not valid: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme != "http":
        # https:// (TLS to the proxy) and socks would need other machinery; going direct instead would
        # bypass what the operator set up, so it is an error
        raise ProxyError(f"the proxy URL {_hide(text)!r} is not supported: only http:// proxies are")
    host = parts.hostname
    if not host:
        raise ProxyError(f"the proxy URL {_hide(text)!r} has no host")
    auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        auth = f"Basic {base64.b64encode(pair).decode('ascii')}"
    port = port or 80
    shown = f"[{host}]" if ":" in host else host
    return Proxy(f"http://{shown}:{port}", host, port, auth)


def _hide(url: str) -> str:
    """``url`` without its password (messages never show credentials)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{hostpart}"


# ---------------------------------------------------------------- no_proxy


class _Rule(NamedTuple):
    domain: str | None  # a name and its subdomains
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    port: int | None  # None: any port


def parse_no_proxy(text: str) -> tuple[bool, tuple[_Rule, ...]]:
    """``(everything, rules)`` from a ``no_proxy`` value."""
    rules: list[_Rule] = []
    for raw in text.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True, ()
        port: int | None = None
        host = entry
        if host.startswith("["):  # [v6]:port or [v6]
            inside, _, after = host[1:].partition("]")
            host = inside
            if after.startswith(":") and after[1:].isdigit():
                port = int(after[1:])
        elif host.count(":") == 1:  # name:port or v4:port (a bare v6 address has several colons)
            name, _, number = host.partition(":")
            if number.isdigit():
                host, port = name, int(number)
        try:
            rules.append(_Rule(None, ipaddress.ip_network(host, strict=False), port))
            continue
        except ValueError:
            pass
        host = host.lstrip(".").rstrip(".")
        if host:
            rules.append(_Rule(host, None, port))
    return False, tuple(rules)


def bypasses(host: str, port: int, everything: bool, rules: tuple[_Rule, ...]) -> bool:
    """Whether ``host:port`` goes direct under a parsed ``no_proxy``."""
    if everything:
        return True
    name = host.lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
    except ValueError:
        address = None
    for rule in rules:
        if rule.port is not None and rule.port != port:
            continue
        if rule.network is not None:
            if address is not None and address.version == rule.network.version and address in rule.network:
                return True
        elif rule.domain is not None and (name == rule.domain or name.endswith(f".{rule.domain}")):
            return True
    return False


# ---------------------------------------------------------------- the environment


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


class ProxyEnvironment:
    """The proxy variables, read once; :meth:`proxy_for` answers per origin (callers cache it)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        every = _first(env, "all_proxy", "ALL_PROXY")
        self.urls = {
            "https": _first(env, "https_proxy", "HTTPS_PROXY") or every,
            "http": _first(env, "http_proxy", "HTTP_PROXY") or every,
        }
        self.everything, self.rules = parse_no_proxy(_first(env, "no_proxy", "NO_PROXY") or "")

    def proxy_for(self, scheme: str, host: str, port: int) -> Proxy | None:
        url = self.urls.get(scheme)
        if not url or bypasses(host, port, self.everything, self.rules):
            return None
        return parse_proxy(url)


# ---------------------------------------------------------------- CONNECT


def auth_refused(proxy: Proxy, reason: str) -> ProxyError:
    """The error for a proxy's 407 (to a CONNECT, or to a request sent through it)."""
    said = (
        "rejected the credentials in its URL"
        if proxy.authorization
        else "requires credentials (user:password@ in its URL)"
    )
    return ProxyError(f"the proxy {proxy.url} {said}: 407 {reason}".rstrip())


async def open_tunnel(loop: asyncio.AbstractEventLoop, sock: socket.socket, proxy: Proxy, host: str, port: int) -> None:
    """Ask the proxy on ``sock`` for a tunnel to ``host:port``; return once it is open.

    Done on the bare socket, before any transport exists, so TLS to the origin then starts on it as on
    a direct connection (SNI and verification name the origin, not the proxy).
    """
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}\r\n")
    lines.append("\r\n")
    await loop.sock_sendall(sock, "".join(lines).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        data = await loop.sock_recv(sock, 4096)
        if not data:
            raise ProxyError(f"the proxy {proxy.url} closed the connection instead of answering CONNECT {authority}")
        head += data
        if len(head) > MAX_CONNECT_HEAD:
            raise ProxyError(f"the proxy {proxy.url} answered CONNECT {authority} with an oversized head")
    status_line, _, _ = head.partition(b"\r\n")
    parts = status_line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProxyError(f"the proxy {proxy.url} answered CONNECT {authority} with {status_line[:100]!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    if status == 407:
        said = (
            "rejected the credentials in its URL"
            if proxy.authorization
            else "requires credentials (user:password@ in its URL)"
        )
        raise ProxyError(f"the proxy {proxy.url} {said}: 407 {reason}".rstrip())
    if not 200 <= status < 300:
        raise ProxyError(f"the proxy {proxy.url} refused CONNECT {authority}: {status} {reason}".rstrip())
    if not head.endswith(b"\r\n\r\n"):
        # the origin cannot have spoken yet (the client speaks first in TLS): bytes here are the proxy's
        raise ProxyError(f"the proxy {proxy.url} sent bytes after accepting CONNECT {authority}")
